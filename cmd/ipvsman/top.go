package main

import (
	"fmt"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	"github.com/ipvsman/ipvsman/cmd/ipvsman/top"
)

// topCmd is the live console. Its actions are the CLI's own ops through
// the same API client, so it honours --api, --token and --token-file.
func topCmd(g *globals) *cobra.Command {
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "top [--node NODE] [--interval 1s]",
		Short: "Live console: services, real servers, kernel counters and the cluster, with keys to act",
		Long: `top shows the services and their real servers (weight, health, operator
state, the kernel's active and inactive connections, connections/s and
bytes/s), refreshed every --interval, and the cluster (leader, VIP owner,
members, applied index, fingerprints). Keys:

  j/k or arrows  move          +/-  weight up/down   s/r  suspend/resume
  a  assign a real server of the topology to the service
  d  remove the real server (asks y/n)   n  next node's kernel view
  c  cluster pane                        q  quit

Every action is the op the CLI would send (ipvsman -e/-a/-d, ipvsman
server suspend/resume), validated by the leader the same way.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if interval < 100*time.Millisecond {
				return fmt.Errorf("--interval %s: want 100ms or more", interval)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			m := top.New(top.Options{Source: &top.APISource{Client: c}, Node: g.node, Interval: interval})
			if _, err := tea.NewProgram(m, tea.WithAltScreen()).Run(); err != nil {
				return fmt.Errorf("top: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&g.node, "node", "", "show this node's kernel view first (default: the node at --api)")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "refresh period")
	return cmd
}

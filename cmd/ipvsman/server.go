package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// serverCmd sets a real server's operator state. The server is named as
// ipvsadm's -d names it (-t/-u/-f SERVICE -r ADDR[:PORT]), so the same
// parser reads it.
func serverCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Suspend, resume or drain a real server cluster-wide (operator state, distinct from health)",
	}
	for _, v := range []struct {
		name  string
		state fsm.ServerState
		short string
	}{
		{"suspend", fsm.Suspended, "no new connections (weight 0, or removed with on_failure: remove)"},
		{"resume", fsm.Active, "back to its configured weight"},
		{"drain", fsm.Draining, "no new connections, established ones finish (always weight 0)"},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:                v.name + " -t|-u ADDR:PORT | -f MARK -r ADDR[:PORT]",
			Short:              v.short,
			DisableFlagParsing: true,
			RunE: func(cc *cobra.Command, args []string) error {
				// Flag parsing is off (ipvsadm's parser reads the rest), so
				// help and the global flags are taken out here.
				if slices.Contains(args, "-h") || slices.Contains(args, "--help") {
					return cc.Help()
				}
				_, args, err := g.split(args)
				if err != nil {
					return err
				}
				parsed, err := ipvsadm.Parse(append([]string{"-d"}, args...))
				if err != nil {
					return fmt.Errorf("server %s: %w", v.name, err)
				}
				op := parsed.Ops[0]
				op.Kind, op.Server.State = fsm.OpSetState, v.state
				return g.withClient(func(ctx context.Context, c *api.Client) error {
					r, err := c.Ops(ctx, []fsm.Op{op})
					if err != nil {
						return err
					}
					printSummary(cc.OutOrStdout(), r.Result.Summary)
					fmt.Fprintf(cc.OutOrStdout(), "committed as version %d\n", r.Result.Version)
					return nil
				})
			},
		})
	}
	return cmd
}

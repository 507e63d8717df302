package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipvsman/ipvsman/cluster/api"
)

// printMembers is the second table of `cluster status`: every member's
// suffrage, version and health as the answering node's Raft and gossip
// see them, with its own last contact with a leader. Its words are
// lowercase so that they never read as the first table's roles.
func printMembers(w io.Writer, st api.ClusterStatus) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tSUFFRAGE\tVERSION\tPROTOCOL\tGOSSIP\tLAST CONTACT\tRAFT ADDRESS\tGOSSIP ADDRESS\tREADY")
	for _, m := range st.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(m.ID), cell(m.Suffrage), cell(dash(m.Version)), protocolColumn(m.Protocol),
			cell(gossipColumn(m)), cell(contactColumn(m)), cell(dash(m.RaftAddr)), cell(dash(m.GossipAddr)), cell(readyColumn(m)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "cluster protocol: %d\n", st.MinProtocol)
	if st.Note != "" {
		fmt.Fprintf(w, "note: %s\n", cell(st.Note))
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func protocolColumn(p int) string {
	if p == 0 {
		return "-"
	}
	return fmt.Sprint(p)
}

// gossipColumn is "alive", or a state with its age: "dead 12s".
func gossipColumn(m api.MemberView) string {
	if m.Gossip == "alive" || m.Gossip == "unknown" || m.Gossip == "" {
		return dash(m.Gossip)
	}
	return fmt.Sprintf("%s %s", m.Gossip, (time.Duration(m.GossipSinceMS) * time.Millisecond).Round(100*time.Millisecond))
}

// contactColumn is the member's own Raft last contact with a leader:
// "leader" for the leader itself, "-" when it could not be asked.
func contactColumn(m api.MemberView) string {
	switch {
	case m.Leader:
		return "leader"
	case m.LastContact == "":
		return "-"
	}
	if d, err := time.ParseDuration(m.LastContact); err == nil {
		if d < time.Millisecond {
			return "<1ms ago"
		}
		return d.Round(time.Millisecond).String() + " ago"
	}
	return m.LastContact
}

func nodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "One node's life cycle"}
	drain := &cobra.Command{
		Use:   "drain NODE",
		Short: "Take NODE out of the cluster cleanly: leadership and VIPs handed over, removed from Raft and gossip",
		Long: `drain asks NODE itself to leave: it stops taking the VIPs, hands leadership
over if it leads (the VIPs move once, to the new leader), has the leader
remove it from the Raft configuration, leaves gossip and stops Raft. The
daemon then idles until it is stopped. Started again, it refuses to run on
its old log unless given --join, with which it joins as a new member.

A node that cannot be reached cannot drain itself: remove it with
'ipvsman cluster leave NODE'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(ctx context.Context, c *api.Client) error {
				nc, err := nodeClient(ctx, c, args[0])
				if err != nil {
					return fmt.Errorf("drain: %w", err)
				}
				r, err := nc.Drain(ctx)
				if err != nil {
					var e *api.Error
					if !errors.As(err, &e) {
						return fmt.Errorf("drain %s: %w (if the node is down, remove it with: ipvsman cluster leave %s)", args[0], err, args[0])
					}
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "node %s drained; removed by leader %s\n", r.Node, r.Leader)
				return nil
			})
		},
	}
	cmd.AddCommand(drain)
	return cmd
}

// refusedByOldNode explains a 404 for a command of a newer protocol: the
// node asked runs a build that does not know it (one with the commands
// endpoint says so itself; an older one has no such endpoint). Either way
// the operator reads the same sentence, naming the node and its release.
func refusedByOldNode(ctx context.Context, c *api.Client, what string, err error) error {
	var e *api.Error
	if !errors.As(err, &e) || e.Status != 404 {
		return err
	}
	st, serr := c.Status(ctx)
	if serr != nil {
		if e.Kind == "unknown-command" {
			return fmt.Errorf("%s: %s: upgrade every node first", what, e.Msg)
		}
		return fmt.Errorf("%s: the node does not know this command (%v): upgrade every node first", what, err)
	}
	version := st.Version
	if version == "" {
		version = "older than 0.8.0"
	}
	return fmt.Errorf("%s: node %s runs ipvsmand %s (protocol %d), which does not know %q: upgrade every node first", what, st.ID, version, max(st.Protocol, 1), what)
}

// readyColumn is the last column, so that the reason may hold spaces:
// "yes", "no: link eth0: no carrier", or "-" when gossip has not told.
func readyColumn(m api.MemberView) string {
	switch m.Ready {
	case "yes":
		return "yes"
	case "no":
		return "no: " + m.Unready
	}
	return "-"
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm/escape"
)

func clusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Cluster membership and leadership"}
	cmd.AddCommand(clusterStatusCmd(g), clusterJoinCmd(g), clusterLeaveCmd(g), clusterTransferCmd(g))
	for _, extra := range clusterExtras {
		cmd.AddCommand(extra(g))
	}
	return cmd
}

func clusterStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Every member's role, term and applied index, as each reports it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			return g.withClient(func(ctx context.Context, c *api.Client) error {
				st, err := c.ClusterStatus(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					e := json.NewEncoder(out)
					e.SetIndent("", "  ")
					return e.Encode(st)
				}
				return printClusterStatus(out, st)
			})
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return status
}

// printClusterStatus prints the nodes' table, the members and the notes,
// and returns the first alarm as the command's error, so that scripts and
// monitoring see it in the exit status.
func printClusterStatus(out io.Writer, st api.ClusterStatus) error {
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tTERM\tAPPLIED\tCOMMIT\tVERSION\tSERVICES\tREAL SERVERS\tIPVS\tKERNEL TABLE\tVIPS\tSYNC\tBGP\tRAFT ADDRESS\tAPI ADDRESS")
	for _, n := range st.Nodes {
		if n.Status == nil {
			fmt.Fprintf(tw, "%s\tunreachable\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t%s\n", cell(n.ID), cell(n.APIAddr))
			continue
		}
		s := n.Status
		var raftAddr string
		for _, srv := range s.Servers {
			if srv.ID == s.ID {
				raftAddr = srv.RaftAddr
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(s.ID), cell(s.State), s.Term, s.AppliedIndex, s.CommitIndex, s.ConfigVersion, s.Services, s.RealServers, cell(s.IPVS), cell(kernelTable(s)), cell(vipColumn(s)), cell(syncColumn(s)), cell(api.BGPColumn(s.BGP)), cell(raftAddr), cell(n.APIAddr))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	if err := printMembers(out, st); err != nil {
		return err
	}
	for _, n := range forwardingNotes(st) {
		fmt.Fprintln(out, cell(n))
	}
	for _, alarm := range []string{api.TableAlarm(st), vipAlarm(st), api.BGPAlarm(st)} {
		if alarm != "" {
			return errors.New(alarm)
		}
	}
	return nil
}

func clusterJoinCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "join MEMBER_API",
		Short: "Make the node at --api join the cluster through any member's API address",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(ctx context.Context, c *api.Client) error {
				if err := c.JoinVia(ctx, args[0]); err != nil {
					return err
				}
				st, err := c.Status(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "node %s joined the cluster through %s\n", st.ID, args[0])
				return nil
			})
		},
	}
}

func clusterLeaveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "leave [NODE]",
		Short: "Remove a node from the cluster (default: the node at --api); a leader hands over first",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(ctx context.Context, c *api.Client) error {
				id := ""
				if len(args) == 1 {
					id = args[0]
				} else {
					st, err := c.Status(ctx)
					if err != nil {
						return err
					}
					id = st.ID
				}
				if err := c.Leave(ctx, id); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "node %s left the cluster\n", id)
				return nil
			})
		},
	}
}

func clusterTransferCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "transfer [NODE]",
		Short: "Move leadership to NODE (default: the most up-to-date follower)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(func(ctx context.Context, c *api.Client) error {
				id := ""
				if len(args) == 1 {
					id = args[0]
				}
				to, err := c.Transfer(ctx, id)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "leadership transferred; leader is now %s\n", to)
				return nil
			})
		},
	}
}

// clusterExtras are subcommands of later protocols that a build tag adds.
var clusterExtras []func(*globals) *cobra.Command

// kernelTable summarizes a node's kernel table: the fingerprint read back
// by the last drift-repair round or full pass and the applied index it was checked against,
// the target's when it differs, the config version, and failures.
func kernelTable(s *api.NodeStatus) string {
	d := s.Director
	if d == nil {
		return "-"
	}
	out := fmt.Sprintf("%s@%d", dash(d.Fingerprint), d.KernelIndex)
	if d.TargetFingerprint != "" && d.TargetFingerprint != d.Fingerprint {
		out += " (target " + d.TargetFingerprint + ")"
	}
	out += fmt.Sprintf(" v%d", d.Version)
	if d.Failed > 0 {
		out += fmt.Sprintf(" (%d failed)", d.Failed)
	}
	return out
}

// vipColumn lists the VIPs a node holds, an ecmp VIP as "ADDR (ecmp)":
// "off" when it does not manage them (--vips=off), "-" when it holds none.
func vipColumn(s *api.NodeStatus) string {
	if s.VIPs == nil {
		return "off"
	}
	if len(s.VIPs.Held) == 0 {
		return "-"
	}
	var p []string
	for _, h := range s.VIPs.Held {
		addr, _, _ := strings.Cut(h, " on ")
		if slices.Contains(s.VIPs.ECMP, h) {
			addr += " (ecmp)"
		}
		p = append(p, addr)
	}
	return strings.Join(p, ",")
}

// syncColumn is the node's sync threads and its connections: "master+backup
// id 1, 12 conns (3 synced)"; "off" without threads, "-" without a kernel.
func syncColumn(s *api.NodeStatus) string {
	y := s.Sync
	if y == nil {
		return "-"
	}
	var roles []string
	var id uint32
	for _, t := range y.Threads {
		roles = append(roles, t.State)
		id = t.SyncID
	}
	out := "off"
	if y.Why != "" {
		out = "off (" + y.Why + ")"
	}
	if len(roles) > 0 {
		out = fmt.Sprintf("%s id %d", strings.Join(roles, "+"), id)
	}
	out += fmt.Sprintf(", %d conns (%d synced)", y.Conns, y.Synced)
	if y.Err != "" {
		out += " (error)"
	}
	return out
}

// vipAlarm reports a VIP held by more than one node: two directors
// answering ARP for one address, the split brain ipvsman exists to rule
// out. An ecmp VIP is held by every node by design and is left out.
func vipAlarm(st api.ClusterStatus) string {
	holders := map[string][]string{}
	for _, n := range st.Nodes {
		if n.Status == nil || n.Status.VIPs == nil {
			continue
		}
		for _, h := range n.Status.VIPs.Held {
			if slices.Contains(n.Status.VIPs.ECMP, h) {
				continue
			}
			addr, _, _ := strings.Cut(h, " on ")
			holders[addr] = append(holders[addr], n.ID)
		}
	}
	var out []string
	for _, addr := range slices.Sorted(maps.Keys(holders)) {
		if len(holders[addr]) > 1 {
			out = append(out, fmt.Sprintf("%s held by %s", addr, strings.Join(holders[addr], " and ")))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "ALARM: VIP held by more than one node: " + strings.Join(out, "; ")
}

// cell escapes one cell of a table (escape.String): its text comes from
// the nodes or the log, and a newline in it must not forge a row.
func cell(s string) string { return escape.String(s) }

// forwardingNotes says, per node, which forwarding switch masquerading
// services need but find off there: a note, not an alarm, since the
// cluster itself is sound and the fix is the host's (docs/realservers.md).
func forwardingNotes(st api.ClusterStatus) []string {
	var out []string
	for _, n := range st.Nodes {
		if n.Status == nil {
			continue
		}
		for _, f := range n.Status.ForwardingOff {
			state := f.Sysctl + "=" + f.Value
			if f.Error != "" {
				state = f.Sysctl + " unreadable (" + f.Error + ")"
				if f.Value != "" {
					state = f.Sysctl + "=" + f.Value + " (" + f.Error + ")"
				}
			}
			svcs := "1 masquerading service needs it (" + f.Example + ")"
			if f.Services > 1 {
				svcs = fmt.Sprintf("%d masquerading services need it (%s, ...)", f.Services, f.Example)
			}
			out = append(out, fmt.Sprintf("note: %s: %s but %s: their replies are not forwarded to the clients; on %s: sysctl -w %s=1", n.ID, state, svcs, n.ID, f.Sysctl))
		}
	}
	return out
}

package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
)

// groupCmd manages service groups (fsm/group.go), keepalived's
// virtual_server_group: one service served on several virtual addresses.
// ipvsadm has no groups, so these are ipvsman's own; services are named by
// their keys, as `ipvsman pool list` and `ipvsman health` print them.
func groupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Serve one service on several virtual addresses: add, remove, list",
		Long: `A service's group lists further virtual services (tcp/udp/sctp ADDRESS:PORT or
fwmark MARK, of the service's address family) that every director's kernel
serves as the service: one kernel service per key, each with the service's
scheduler, persistence and real servers. The real servers are checked once
each, however many addresses the group has, and one verdict takes a server
out of every member. This is keepalived's virtual_server_group.

Services are named by key: tcp:10.0.0.1:80, udp:[2001:db8::1]:53, sctp:...,
fwmark:7, fwmark6:7. A member is never a service of its own: ipvsadm commands
naming it (-A -E -D -a -e -d) are refused, naming its group's service, which
is the one to edit. ipvsman -L lists every member as ipvsadm lists the
kernel; ipvsman -S writes them so, and ends with a line per group,
"#ipvsman group add SERVICE MEMBER...", which ipvsman -R reads back.`,
	}
	for _, v := range []struct {
		name, short string
		kind        fsm.OpKind
	}{
		{"add", "serve SERVICE on the VIRTUAL services too (each a kernel service with SERVICE's real servers)", fsm.OpGroupAdd},
		{"remove", "stop serving SERVICE on the VIRTUAL services (their kernel services go; SERVICE stays)", fsm.OpGroupRemove},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:   v.name + " SERVICE VIRTUAL...",
			Short: v.short,
			Args:  cobra.MinimumNArgs(2),
			RunE: func(cc *cobra.Command, args []string) error {
				keys := make([]fsm.ServiceKey, len(args))
				for i, a := range args {
					k, err := fsm.ParseServiceKey(a)
					if err != nil {
						return fmt.Errorf("group %s: %w", v.name, err)
					}
					keys[i] = k
				}
				return g.submit(cc.OutOrStdout(), fsm.Op{Kind: v.kind, ServiceKey: keys[0], Group: keys[1:]})
			},
		})
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List every service's group: one line per member",
		Args:  cobra.NoArgs,
		RunE: func(cc *cobra.Command, _ []string) error {
			return g.withClient(func(ctx context.Context, c *api.Client) error {
				resp, err := c.Config(ctx)
				if err != nil {
					return err
				}
				if resp.Stale != "" {
					fmt.Fprintf(cc.ErrOrStderr(), "ipvsman: warning: node %s may be behind the cluster (%s)\n", resp.Node, resp.Stale)
				}
				return writeGroups(cc.OutOrStdout(), resp.Config)
			})
		},
	})
	return cmd
}

// writeGroups prints one line per group member, services in key order.
func writeGroups(out io.Writer, cfg *fsm.Config) error {
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE\tMEMBER\tREAL SERVERS")
	for _, sk := range cfg.SortedServiceKeys() {
		svc := cfg.Services[sk]
		for _, m := range svc.Group {
			fmt.Fprintf(w, "%s\t%s\t%d\n", sk, m, len(svc.Servers))
		}
	}
	return w.Flush()
}

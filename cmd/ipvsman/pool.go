package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/escape"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// poolCmd manages the services' pools: real servers defined for a service
// but not assigned to it (fsm/pool.go). ipvsadm has no pool, so its
// commands keep their meaning (-a adds to the kernel table, -d deletes for
// good); these are ipvsman's own. Servers are named as ipvsadm names them,
// and the same parser reads the rest of the line: `pool add` takes -a's
// options, the others -d's.
func poolCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pool",
		Short: "Real servers defined for a service but not assigned: add, assign, unassign, forget, list",
		Long: `A service's pool holds real servers defined for it (address, port, forwarding,
weight, thresholds, name, state, check) that are not assigned: no kernel table
holds them and they are not checked. Assigning one puts it, as defined, into
every director's table; unassigning takes it out again and keeps its
definition; forgetting drops the definition. ipvsman -L and -S, like
ipvsadm's, show what the kernels hold, so they never list the pool: use
ipvsman pool list, ipvsman top, or ipvsman export.`,
	}
	cmd.AddCommand(poolListCmd(g))
	for _, v := range []struct {
		name, args, short string
		kind              fsm.OpKind
		as                string // the ipvsadm command whose options it takes
	}{
		{"add", "-t|-u ADDR:PORT | -f MARK -r ADDR[:PORT] [-g|-i|-m] [-w WEIGHT] [-x UPPER] [-y LOWER]",
			"define a real server in the service's pool, with ipvsadm -a's options (no kernel table gets it)", fsm.OpPoolServer, "-a"},
		{"assign", "-t|-u ADDR:PORT | -f MARK -r ADDR[:PORT]",
			"assign a pool server to its service, as defined: into every director's kernel table", fsm.OpAssignServer, "-d"},
		{"unassign", "-t|-u ADDR:PORT | -f MARK -r ADDR[:PORT]",
			"take a real server out of the kernel tables into the service's pool, keeping its definition", fsm.OpUnassignServer, "-d"},
		{"forget", "-t|-u ADDR:PORT | -f MARK -r ADDR[:PORT]",
			"drop a pool server's definition (an assigned one is refused: ipvsman -d deletes it)", fsm.OpForgetServer, "-d"},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:                v.name + " " + v.args,
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
				parsed, err := ipvsadm.Parse(append([]string{v.as}, args...))
				if err != nil {
					return fmt.Errorf("pool %s: %w", v.name, err)
				}
				if len(parsed.Ops) != 1 || parsed.Ops[0].Server == nil {
					return fmt.Errorf("pool %s: want -t|-u ADDR:PORT or -f MARK, and -r ADDR[:PORT]", v.name)
				}
				op := parsed.Ops[0]
				op.Kind = v.kind
				return g.submit(cc.OutOrStdout(), op)
			},
		})
	}
	return cmd
}

func poolListCmd(g *globals) *cobra.Command {
	var service string
	cmd := &cobra.Command{
		Use:   "list [SERVICE]",
		Short: "List the pool servers of every service, or of one (tcp:10.0.0.1:80, udp:..., fwmark:7)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cc *cobra.Command, args []string) error {
			if len(args) == 1 {
				k, err := fsm.ParseServiceKey(args[0])
				if err != nil {
					return err
				}
				service = k.String()
			}
			return g.withClient(func(ctx context.Context, c *api.Client) error {
				resp, err := c.Config(ctx)
				if err != nil {
					return err
				}
				if resp.Stale != "" {
					fmt.Fprintf(cc.ErrOrStderr(), "ipvsman: warning: node %s may be behind the cluster (%s)\n", resp.Node, resp.Stale)
				}
				return writePool(cc.OutOrStdout(), resp.Config, service)
			})
		},
	}
	return cmd
}

// writePool prints one line per pool server, services in canonical order;
// service "" lists every service's pool.
func writePool(out io.Writer, cfg *fsm.Config, service string) error {
	if service != "" && cfg.Services[service] == nil {
		return fmt.Errorf("service %s: no such service", service)
	}
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE\tPOOL SERVER\tFORWARD\tWEIGHT\tSTATE\tNAME")
	for _, sk := range cfg.SortedServiceKeys() {
		if service != "" && sk != service {
			continue
		}
		svc := cfg.Services[sk]
		for _, rk := range svc.SortedPoolKeys() {
			r := svc.Pool[rk]
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", sk, rk, ipvsadm.ForwardName(r.Forward), r.Weight, r.State, escape.String(r.Name))
		}
	}
	return w.Flush()
}

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

// quorumCmd sets and lists the services' quorums (fsm/quorum.go).
// ipvsadm has no quorum, so -A and -E keep their meaning (and -E keeps a
// quorum it cannot say); these are ipvsman's own, named after
// keepalived's quorum and hysteresis.
func quorumCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quorum",
		Short: "A service's quorum: the least live weight it runs on, with hysteresis (keepalived's quorum)",
		Long: `A service's quorum is the least total weight of usable real servers (active,
not down; an exec check's weight counts instead of the configured one) it
runs on. Below quorum - hysteresis (or at 0) the service loses its quorum: if
it has a sorry server, every director's kernel table then holds the sorry
server and takes the live servers out (weight 0, or removed with on_failure
remove). At quorum + hysteresis it gains it again. Between the two it stays
as it was. Without a sorry server a lost quorum changes no table, as in
keepalived; it shows here, in the metrics and in the quorum-down hook.`,
	}
	cmd.AddCommand(quorumSetCmd(g), quorumListCmd(g))
	return cmd
}

func quorumSetCmd(g *globals) *cobra.Command {
	var t checkTarget
	var quorum, hysteresis int
	cmd := &cobra.Command{
		Use:   "set (-t|-u ADDR:PORT | -f MARK [-6] | SERVICE) --quorum N [--hysteresis M]",
		Short: "Set a service's quorum and hysteresis (--quorum 0 removes it)",
		Long: `Set a service's quorum and hysteresis, cluster-wide. The service is named as
ipvsadm names it (-t|-u ADDR:PORT, -f MARK [-6]) or by its key as ipvsman
prints it (tcp:10.0.0.1:80, fwmark:7). The hysteresis must be below the
quorum. A quorum set on a service starts as keepalived starts one: held only
if the live weight is at least quorum + hysteresis.`,
		Example: `  ipvsman quorum set -t 10.0.0.1:80 --quorum 3 --hysteresis 1
  ipvsman quorum set tcp:10.0.0.1:80 --quorum 0`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if !c.Flags().Changed("quorum") {
				return fmt.Errorf("quorum set: --quorum: missing (0 removes the quorum)")
			}
			op, err := t.op(fsm.OpSetQuorum, args)
			if err != nil {
				return fmt.Errorf("quorum set: %w", err)
			}
			op.Quorum = &fsm.QuorumSetting{Quorum: quorum, Hysteresis: hysteresis}
			return g.submit(c.OutOrStdout(), op)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&t.tcp, "tcp-service", "t", "", "TCP service `ADDR:PORT`")
	fs.StringVarP(&t.udp, "udp-service", "u", "", "UDP service `ADDR:PORT`")
	fs.StringVarP(&t.mark, "fwmark-service", "f", "", "firewall-mark service `MARK`")
	fs.BoolVarP(&t.ipv6, "ipv6", "6", false, "with -f: the IPv6 firewall-mark service")
	fs.IntVar(&quorum, "quorum", 0, "the least live weight the service runs on; 0 removes the quorum")
	fs.IntVar(&hysteresis, "hysteresis", 0, "lost below quorum-`M`, gained again at quorum+M")
	return cmd
}

func quorumListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the services that have a quorum: quorum, hysteresis, live weight, held or lost",
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
				return writeQuorums(cc.OutOrStdout(), resp)
			})
		},
	}
}

// writeQuorums prints one line per service with a quorum, in canonical
// order.
func writeQuorums(out io.Writer, resp api.ConfigResponse) error {
	st := &fsm.State{Config: resp.Config, Verdicts: resp.Verdicts, QuorumUp: resp.QuorumUp}
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE\tQUORUM\tHYSTERESIS\tLIVE\tSTATE\tSORRY SERVER")
	for _, sk := range resp.Config.SortedServiceKeys() {
		svc := resp.Config.Services[sk]
		if svc.Quorum == 0 {
			continue
		}
		state, sorry := "held", "-"
		if st.QuorumLost(sk) {
			state = "lost"
		}
		if svc.Sorry != nil {
			sorry = svc.Sorry.Key()
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%s\n", sk, svc.Quorum, svc.Hysteresis, fsm.LiveWeight(sk, svc, resp.Verdicts), state, sorry)
	}
	return w.Flush()
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipvsman/ipvsman/cluster/api"
)

// healthCmd shows the leader's checks: the replicated verdict with the
// last result and its latency, which only the leader has.
func healthCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Every real server's health verdict, last check result and latency (from the leader)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			return g.withClient(func(ctx context.Context, c *api.Client) error {
				h, err := c.Health(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					e := json.NewEncoder(out)
					e.SetIndent("", "  ")
					return e.Encode(h)
				}
				if err := printHealth(out, h.Checks, time.Now()); err != nil {
					return err
				}
				if h.InFlightLimit < h.InFlightMax {
					fmt.Fprintf(out, "checks throttled: at most %d of %d in flight, the leader or its network is short of capacity (intervals stretch)\n", h.InFlightLimit, h.InFlightMax)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printHealth(w io.Writer, checks []api.CheckStatus, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tREAL SERVER\tCHECK\tTARGET\tHEALTH\tLAST\tLATENCY\tCHECKS\tAGE")
	for _, s := range checks {
		last, lat, age := "-", "-", "-"
		if !s.At.IsZero() {
			last = "fail"
			if s.OK {
				last = "ok"
			}
			if s.Detail != "" {
				last += " (" + s.Detail + ")"
			}
			lat = fmt.Sprintf("%.1fms", float64(s.Latency.Microseconds())/1000)
			age = now.Sub(s.At).Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", cell(s.Service), cell(s.Server), cell(s.Type), cell(s.Target), cell(string(s.Health)), cell(last), lat, s.Checks, age)
	}
	return tw.Flush()
}

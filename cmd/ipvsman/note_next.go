//go:build next

package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
)

// The simulated next release (build tag next) adds `cluster note`, a
// command of the next protocol (3), for the rolling-upgrade test.
func init() {
	clusterExtras = append(clusterExtras, func(g *globals) *cobra.Command {
		return &cobra.Command{
			Use:   "note TEXT",
			Short: "Set the cluster's note, shown by cluster status (\"\" clears it; protocol 8)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return g.withClient(func(ctx context.Context, c *api.Client) error {
					if _, err := c.Command(ctx, "note", fsm.NotePayload{Text: args[0]}); err != nil {
						return refusedByOldNode(ctx, c, "cluster note", err)
					}
					fmt.Fprintln(cmd.OutOrStdout(), "note set")
					return nil
				})
			},
		}
	})
}

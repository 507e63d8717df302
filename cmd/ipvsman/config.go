package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
	"github.com/ipvsman/ipvsman/fsm/topology"
)

func historyCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "history [VERSION]",
		Short: "List configuration versions, or print one version as ipvsadm -S lines",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return g.withClient(func(ctx context.Context, c *api.Client) error {
				if len(args) == 1 {
					v, err := strconv.ParseUint(args[0], 10, 64)
					if err != nil {
						return fmt.Errorf("version %q: want a number", args[0])
					}
					e, err := c.HistoryEntry(ctx, v)
					if err != nil {
						return err
					}
					return ipvsadm.FormatSave(os.Stdout, e.Config, true, nil)
				}
				items, err := c.History(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(os.Stdout).Encode(items)
				}
				tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "VERSION\tTIME\tACTOR\tREQUEST\tCHANGE")
				for _, h := range items {
					lines := strings.Split(h.Summary, "\n")
					when := time.Unix(0, h.Time).UTC().Format(time.RFC3339)
					req := h.Request
					if req == "" {
						req = "-"
					}
					for i, l := range lines {
						if i == 0 {
							fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", h.Version, when, h.Actor, req, l)
						} else {
							fmt.Fprintf(tw, "\t\t\t\t%s\n", l)
						}
					}
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printDiff(r api.ApplyResponse) { fprintDiff(os.Stdout, r) }

// fprintDiff prints a whole-topology write's diff, the counts of what it
// removes and adds, and its outcome.
func fprintDiff(w io.Writer, r api.ApplyResponse) {
	for _, l := range r.Diff {
		fmt.Fprintln(w, l)
	}
	if r.Counts != nil {
		fmt.Fprintln(w, "summary: "+r.Counts.String())
	}
	switch {
	case r.Result.Duplicate:
		fmt.Fprintf(w, "already committed by an earlier try of request %s (version %d)\n", r.Result.Request, r.Result.Version)
	case len(r.Diff) == 0:
		fmt.Fprintln(w, "no changes")
	case r.DryRun:
		fmt.Fprintf(w, "dry run: %d changes, nothing committed\n", len(r.Diff))
	case r.Result.Changed:
		fmt.Fprintf(w, "committed as version %d\n", r.Result.Version)
	}
}

func rollbackCmd(g *globals) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "rollback VERSION",
		Short: "Make a new configuration version equal to an old one",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			v, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("version %q: want a number", args[0])
			}
			return g.withClient(func(ctx context.Context, c *api.Client) error {
				r, err := c.Rollback(ctx, v, dryRun)
				if err != nil {
					return err
				}
				printDiff(r)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the changes without committing them")
	return cmd
}

func applyCmd(g *globals) *cobra.Command {
	var file string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Replace the whole topology with a file (one-line form, or YAML for .yaml/.yml)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if file == "" {
				return fmt.Errorf("-f FILE: missing")
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("-f %q: %w", file, err)
			}
			cfg, err := topology.Parse(file, data)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			return g.withClient(func(ctx context.Context, c *api.Client) error {
				r, err := c.ApplyRequest(ctx, api.ApplyRequest{Config: cfg, Reason: "apply " + filepath.Base(file), DryRun: dryRun, AllowEmpty: g.allowEmpty})
				if err != nil {
					return err
				}
				printDiff(r)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "topology file")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the changes without committing them")
	return cmd
}

func exportCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "export",
		Short: "Print the current topology as a YAML topology file",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return g.withClient(func(ctx context.Context, c *api.Client) error {
				resp, err := c.Config(ctx)
				if err != nil {
					return err
				}
				b, err := topology.MarshalYAML(resp.Config)
				if err != nil {
					return err
				}
				_, err = os.Stdout.Write(b)
				return err
			})
		},
	}
}

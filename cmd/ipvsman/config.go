package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
	"github.com/ipvsman/ipvsman/fsm/topology"
)

func historyCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "history [VERSION]",
		Short: "List configuration versions, or print one version as ipvsadm -S lines",
		Long: `history lists the configuration versions the cluster keeps: when, who, the
client's request ID and what changed. ACTOR is the principal the API
authenticated (admin-token, read-token, node-cert:NODE, node-key) and,
beside it, marked as claimed, who the client said it was:
"admin-token (claimed alice@host)". Changes the leader made itself
(health verdicts, a node's own addresses) read ipvsmand@NODE.

Text from clients and the log is printed with control characters, bidi
overrides and bytes that are not UTF-8 escaped (\x1b, \u202e, \xff); --json
gives the exact values.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
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
					return ipvsadm.FormatSave(out, e.Config, true, nil)
				}
				items, err := c.History(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(out).Encode(items)
				}
				return printHistory(out, items)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printHistory is the history table, a version per row and a summary
// line per line below it. Every field is escaped (escape.String): the
// actor and the summary are a client's text.
func printHistory(w io.Writer, items []api.HistoryItem) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
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
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", h.Version, when, cell(h.Actor), cell(req), cell(l))
			} else {
				fmt.Fprintf(tw, "\t\t\t\t%s\n", cell(l))
			}
		}
	}
	return tw.Flush()
}

// fprintDiff prints a whole-topology write's diff, the counts of what it
// removes and adds, and its outcome.
func fprintDiff(w io.Writer, r api.ApplyResponse) {
	for _, l := range r.Diff {
		fmt.Fprintln(w, cell(l))
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

// printSummary prints a result's summary, a change per line, each line
// escaped (escape.String).
func printSummary(w io.Writer, summary string) {
	for _, l := range strings.Split(summary, "\n") {
		fmt.Fprintln(w, cell(l))
	}
}

func rollbackCmd(g *globals) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "rollback VERSION",
		Short: "Make a new configuration version equal to an old one",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("version %q: want a number", args[0])
			}
			return g.withClient(func(ctx context.Context, c *api.Client) error {
				r, err := c.Rollback(ctx, v, dryRun)
				if err != nil {
					return err
				}
				fprintDiff(cmd.OutOrStdout(), r)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the changes without committing them")
	return cmd
}

func applyCmd(g *globals) *cobra.Command {
	var file string
	var dryRun, asYAML bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE|-",
		Short: "Replace the whole topology with a file (one-line form, or YAML for .yaml/.yml); - reads standard input",
		Long: `apply replaces the whole topology with the one a file describes, validated
whole before anything is committed, and prints the diff and a summary of
what it removes and adds. The file's name chooses its form: .yaml or .yml
is the YAML form, anything else the one-line form. -f - reads standard
input, in the one-line form unless --yaml is given:

    ipvsman export | sed 's/weight: 3/weight: 5/' | ipvsman apply --yaml -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, cfg, err := readTopology(cmd.InOrStdin(), file, asYAML)
			if err != nil {
				return err
			}
			return g.withClient(func(ctx context.Context, c *api.Client) error {
				r, err := c.ApplyRequest(ctx, api.ApplyRequest{Config: cfg, Reason: "apply " + name, DryRun: dryRun, AllowEmpty: g.allowEmpty})
				if err != nil {
					return err
				}
				fprintDiff(cmd.OutOrStdout(), r)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "topology file; - for standard input")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the changes without committing them")
	cmd.Flags().BoolVar(&asYAML, "yaml", false, "read the YAML form whatever the file's name (for standard input)")
	return cmd
}

// readTopology reads and parses apply's -f: a file, or standard input for
// "-". It returns the name the history records (the file's base name, or
// "standard input"). Every problem names its line, prefixed once with the
// file's path or "standard input".
func readTopology(stdin io.Reader, file string, asYAML bool) (string, *fsm.Config, error) {
	if file == "" {
		return "", nil, errors.New("-f FILE: missing (give a topology file, or - for standard input)")
	}
	var data []byte
	var err error
	name, label := filepath.Base(file), file
	if file == "-" {
		name, label = "standard input", "standard input"
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return "", nil, fmt.Errorf("-f %q: %w", label, err)
	}
	var cfg *fsm.Config
	if asYAML {
		cfg, err = topology.ParseYAML(bytes.NewReader(data))
	} else {
		// By name: "-" and any name but .yaml/.yml are the line form.
		// Parse prefixes a file's problems with its name itself.
		cfg, err = topology.Parse(file, data)
		if err != nil && file != "-" {
			return "", nil, err
		}
	}
	if err != nil {
		return "", nil, &inputError{label: label, err: err}
	}
	return name, cfg, nil
}

// inputError prefixes each of a topology's problems (one a line) with the
// input's name, as topology.Parse does for the files it names.
type inputError struct {
	label string
	err   error
}

func (e *inputError) Error() string {
	lines := strings.Split(e.err.Error(), "\n")
	for i, l := range lines {
		lines[i] = e.label + ": " + l
	}
	return strings.Join(lines, "\n")
}

func (e *inputError) Unwrap() error { return e.err }

func exportCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "export",
		Short: "Print the current topology as a YAML topology file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(func(ctx context.Context, c *api.Client) error {
				resp, err := c.Config(ctx)
				if err != nil {
					return err
				}
				b, err := topology.MarshalYAML(resp.Config)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(b)
				return err
			})
		},
	}
}

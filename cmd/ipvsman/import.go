package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
	"github.com/ipvsman/ipvsman/fsm/migrate"
	"github.com/ipvsman/ipvsman/fsm/topology"
)

// importCmd converts another IPVS manager's configuration and, like
// `apply -f`, replaces the whole topology with it.
func importCmd(g *globals) *cobra.Command {
	var from, output, reason string
	var dryRun, strict bool
	cmd := &cobra.Command{
		Use:   "import [--from ipvsadm|keepalived|ldirectord] FILE|-",
		Short: "Replace the topology with one converted from ipvsadm -S, keepalived.conf or ldirectord.cf",
		Long: `import converts an existing load-balancer configuration into ipvsman's
topology: ipvsadm -S (ipvsadm-save) output, a keepalived.conf (with its
include files) or an ldirectord.cf. Without --from the format is told from
the file name (keepalived*, ldirectord*), then from the content.

Everything that cannot be carried over exactly is listed on standard error
as "# not imported: FILE:LINE: KEYWORD VALUE: why"; it never stops the
import unless --strict is given.

Like apply -f, import REPLACES the whole topology: services and VIPs not in
the file are removed. It prints the changes the cluster made. --dry-run
prints the converted topology instead and needs no cluster.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			file := args[0]
			if output != "yaml" && output != "ipvsadm" {
				if output == "topo" {
					return fmt.Errorf("--output topo: the one-line form cannot hold health checks, sorry servers or on_failure; use yaml or ipvsadm")
				}
				return fmt.Errorf("--output %q: want yaml or ipvsadm", output)
			}
			res, err := runImport(c.InOrStdin(), file, from)
			if err != nil {
				return err
			}
			stderr := c.ErrOrStderr()
			for _, it := range res.Unmapped {
				fmt.Fprintln(stderr, "# not imported: "+it.String())
			}
			for _, it := range res.Notes {
				fmt.Fprintln(stderr, "# note: "+it.String())
			}
			if len(res.Config.Services) == 0 && len(res.Config.VIPs) == 0 {
				return fmt.Errorf("%s: nothing converted (%d items not imported, listed above): nothing applied", file, len(res.Unmapped))
			}
			if strict && len(res.Unmapped) > 0 {
				return fmt.Errorf("--strict: %d items of %s not imported (listed above); nothing applied", len(res.Unmapped), file)
			}
			out := c.OutOrStdout()
			if dryRun {
				if output == "ipvsadm" {
					return ipvsadm.FormatSave(out, res.Config, true, nil)
				}
				b, err := topology.MarshalYAML(res.Config)
				if err != nil {
					return err
				}
				_, err = out.Write(b)
				return err
			}
			if reason == "" {
				reason = "import " + filepath.Base(file)
			}
			return g.withClient(func(ctx context.Context, cl *api.Client) error {
				r, err := cl.ApplyRequest(ctx, api.ApplyRequest{Config: res.Config, Reason: reason, AllowEmpty: g.allowEmpty})
				if err != nil {
					return err
				}
				fprintDiff(out, r)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "source format: ipvsadm, keepalived or ldirectord (default: detect)")
	f.StringVarP(&output, "output", "o", "yaml", "--dry-run output: yaml (topology file) or ipvsadm (-S lines)")
	f.StringVar(&reason, "reason", "", `history summary of the change (default "import FILE")`)
	f.BoolVar(&dryRun, "dry-run", false, "print the converted topology; change nothing (needs no cluster)")
	f.BoolVar(&strict, "strict", false, "fail, applying nothing, if anything could not be imported")
	return cmd
}

// runImport reads FILE (or standard input for "-") and converts it.
// keepalived's includes are read from the real file system: relative to
// the file's directory, or to the current directory for standard input.
func runImport(stdin io.Reader, file, from string) (*migrate.Result, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, 16<<20+1))
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var format migrate.Format
	if from != "" {
		format, err = migrate.ParseFormat(from)
	} else {
		format, err = migrate.Detect(file, data)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	opts := migrate.Options{FS: os.DirFS("/"), Path: strings.TrimPrefix(filepath.ToSlash(abs), "/")}
	res, err := migrate.Import(format, file, data, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return res, nil
}

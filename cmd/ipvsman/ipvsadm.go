package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/cluster/release"
	"github.com/ipvsman/ipvsman/director/table"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// runIpvsadm executes one ipvsadm command line against the cluster,
// printing to out and errOut.
func runIpvsadm(g *globals, args []string, out, errOut io.Writer) error {
	args, withHealth := takeHealthFlag(args)
	cmd, err := ipvsadm.Parse(args)
	if err != nil {
		return err
	}
	if withHealth && (cmd.Action != ipvsadm.ActionList || !cmd.List.Numeric || g.node != "") {
		return fmt.Errorf("%s: only with -L -n (the cluster's table)", healthFlag)
	}
	switch cmd.Action {
	case ipvsadm.ActionHelp:
		fmt.Fprint(out, ipvsadm.Usage("ipvsman")+globalUsage+subcommandsUsage)
		return nil
	case ipvsadm.ActionVersion:
		fmt.Fprintf(out, "ipvsman %s (ipvsadm command language, applied cluster-wide)\n", release.Version)
		return nil
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := g.ctx()
	defer cancel()
	switch cmd.Action {
	case ipvsadm.ActionOps:
		_, err = c.Ops(ctx, cmd.Ops)
		return err
	case ipvsadm.ActionRestore:
		ops, err := ipvsadm.ParseRestore(bufio.NewReader(os.Stdin))
		if err != nil {
			return err
		}
		if len(ops) == 0 {
			return nil
		}
		_, err = c.OpsRequest(ctx, api.OpsRequest{Ops: ops, AllowEmpty: g.allowEmpty})
		return err
	case ipvsadm.ActionZero:
		svc := ""
		if cmd.Zero != nil {
			svc = cmd.Zero.String()
		}
		return c.Zero(ctx, svc)
	case ipvsadm.ActionList, ipvsadm.ActionSave:
		if cmd.Action == ipvsadm.ActionList && cmd.List.Connections {
			return listConns(ctx, out, c, g.node)
		}
		return listTable(ctx, g, c, cmd, withHealth, out, errOut)
	}
	return fmt.Errorf("%s: not supported", cmd.Action)
}

// listTable is -L and -S of the cluster's table, or with --node of one
// node's kernel.
func listTable(ctx context.Context, g *globals, c *api.Client, cmd ipvsadm.Command, withHealth bool, out, errOut io.Writer) error {
	var cfg *fsm.Config
	var stats ipvsadm.Stats
	if g.node != "" {
		k, err := nodeKernel(ctx, c, g.node)
		if err != nil {
			return err
		}
		cfg, stats = k.Config, k.Stats
	} else {
		resp, err := c.Config(ctx)
		if err != nil {
			return err
		}
		if resp.Stale != "" {
			fmt.Fprintf(errOut, "ipvsman: warning: node %s may be behind the cluster (%s)\n", resp.Node, resp.Stale)
		}
		cfg = resp.Config
		if cmd.Action == ipvsadm.ActionList {
			// -L shows what every kernel holds: suspended, draining and
			// unhealthy servers at weight 0 (or gone), the sorry server
			// when nothing is usable or the quorum is lost. -S keeps the configured table, so
			// that -S | -R restores it.
			cfg = table.Desired(&fsm.State{Config: resp.Config, Verdicts: resp.Verdicts, QuorumUp: resp.QuorumUp}).Config()
			cfg.Timeouts = resp.Config.Timeouts
		}
	}
	var res ipvsadm.Resolver
	if !cmd.List.Numeric {
		res = &resolver{}
	}
	w := bufio.NewWriter(out)
	var err error
	if cmd.Action == ipvsadm.ActionSave {
		err = ipvsadm.FormatSave(w, cfg, cmd.List.Numeric, res)
	} else {
		// The header shows what every kernel since 2.6 reports by default.
		var b strings.Builder
		err = ipvsadm.FormatList(&b, ipvsadm.Header{Version: "1.2.1", Size: 4096}, cfg, stats, cmd.List, res)
		text := b.String()
		if err == nil && withHealth {
			h, herr := c.Health(ctx)
			if herr != nil {
				return herr
			}
			text = annotateHealth(text, h.Checks)
		}
		w.WriteString(text)
	}
	if err != nil {
		return err
	}
	return w.Flush()
}

// nodeKernel fetches one node's own kernel table.
func nodeKernel(ctx context.Context, c *api.Client, name string) (api.KernelResponse, error) {
	nc, err := nodeClient(ctx, c, name)
	if err != nil {
		return api.KernelResponse{}, err
	}
	return nc.Kernel(ctx)
}

// nodeClient is a client of one node, found by name among the members the
// node at --api knows: its own status, not the cluster's, which asks every
// node and is slow on a loaded cluster.
func nodeClient(ctx context.Context, c *api.Client, name string) (*api.Client, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	var known []string
	for _, n := range st.Servers {
		known = append(known, n.ID)
		if n.ID != name {
			continue
		}
		if n.APIAddr == "" {
			return nil, fmt.Errorf("--node %s: its API address is not known yet", name)
		}
		nc := *c
		nc.Base = n.APIAddr
		return &nc, nil
	}
	return nil, fmt.Errorf("--node %q: not a member (members: %s)", name, strings.Join(known, ", "))
}

// listConns is -L -c: one node's connection table (the node at --api, or
// --node), as ipvsadm -L -c -n prints it, the entries its sync backup
// learnt from the leader included. Addresses are always numeric.
func listConns(ctx context.Context, out io.Writer, c *api.Client, node string) error {
	if node != "" {
		nc, err := nodeClient(ctx, c, node)
		if err != nil {
			return err
		}
		c = nc
	}
	r, err := c.Connections(ctx)
	if err != nil {
		return err
	}
	conns := make([]table.Conn, len(r.Conns))
	for i, c := range r.Conns {
		conns[i] = table.Conn(c)
	}
	w := bufio.NewWriter(out)
	if err := table.FormatConns(w, conns); err != nil {
		return err
	}
	return w.Flush()
}

// resolver gives names for -L without -n, as ipvsadm does: reverse DNS for
// addresses (bounded in time) and /etc/services for ports.
type resolver struct {
	services map[string]string
}

func (r *resolver) Host(a netip.Addr) string {
	ch := make(chan string, 1)
	go func() {
		names, err := net.LookupAddr(a.String())
		if err != nil || len(names) == 0 {
			ch <- ""
			return
		}
		ch <- strings.TrimSuffix(names[0], ".")
	}()
	select {
	case n := <-ch:
		if n != "" {
			return n
		}
	case <-time.After(time.Second):
	}
	return a.String()
}

func (r *resolver) Port(port uint16, proto string) string {
	if r.services == nil {
		r.services = readServices("/etc/services")
	}
	if n, ok := r.services[strconv.Itoa(int(port))+"/"+proto]; ok {
		return n
	}
	return strconv.Itoa(int(port))
}

func readServices(path string) map[string]string {
	m := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		if _, seen := m[fields[1]]; !seen {
			m[fields[1]] = fields[0]
		}
	}
	return m
}

// globalUsage follows ipvsadm's usage in both helps (ipvsman -h, and -h
// after ipvsadm's arguments): what ipvsman adds to the language.
const globalUsage = `
Every change applies to the whole cluster, through the node at --api.
Global flags: --api ADDRESS (IPVSMAN_API), --token TOKEN (IPVSMAN_TOKEN), --token-file FILE (IPVSMAN_TOKEN_FILE), --ca FILE (IPVSMAN_CA),
  --insecure-http, --timeout DURATION (how long to wait for the cluster), --allow-empty (-R may leave no service).
-L -n --health: the cluster's table with each checked real server's verdict.
-L/-S --node NAME: that node's own kernel table, with the kernel's connection counters.
-L -c [--node NAME]: that node's (or the --api node's) connection table, synced entries included.
`

// subcommandsUsage ends the help of ipvsadm's language, which lists no
// subcommand itself.
const subcommandsUsage = "Other commands: ipvsman --help lists them; ipvsman COMMAND --help\n"

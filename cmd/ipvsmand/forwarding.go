package main

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
)

// forwardingSysctlDir is where the kernel keeps the forwarding switches,
// per network namespace.
const forwardingSysctlDir = "/proc/sys/net"

// A masquerading real server answers its clients through the director,
// which routes the replies back (and rewrites their source): without IP
// forwarding on the director the kernel drops them before IPVS sees them,
// so every masquerading service accepts connections that never complete.
// ipvsman does not turn forwarding on itself: it is a host decision
// (routing between every interface, not only for IPVS), so it is reported.
var forwardingSysctls = [2]struct{ name, file string }{
	{"net.ipv4.ip_forward", "ipv4/ip_forward"},
	{"net.ipv6.conf.all.forwarding", "ipv6/conf/all/forwarding"},
}

// masqUse counts the masquerading services of one address family.
type masqUse struct {
	services int
	example  string // the first by key, for the message
}

// masquerading counts the services with a masquerading real server (or
// sorry server), by the family of their real servers: [0] IPv4, [1] IPv6.
// It reads only the config, so that callers may run it under the state's
// lock and read the kernel after.
func masquerading(cfg *fsm.Config) [2]masqUse {
	var use [2]masqUse
	if cfg == nil {
		return use
	}
	for key, svc := range cfg.Services {
		var fam [2]bool
		for _, rs := range svc.Servers {
			if rs.Forward == fsm.Masquerade {
				fam[family(rs.Address)] = true
			}
		}
		if s := svc.Sorry; s != nil && s.Forward == fsm.Masquerade {
			fam[family(s.Address)] = true
		}
		for i, yes := range fam {
			if !yes {
				continue
			}
			use[i].services++
			if use[i].example == "" || key < use[i].example {
				use[i].example = key
			}
		}
	}
	return use
}

func family(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// forwardingOff reads the forwarding sysctl of each family that
// masquerading services use, under sysctlDir (forwardingSysctlDir; tests:
// a directory of their own), and returns those that are off or could not
// be read, in family order. A family without masquerading services is not
// read at all: a host without IPv6 has no IPv6 switch to read.
func forwardingOff(use [2]masqUse, sysctlDir string) []api.ForwardingOff {
	var out []api.ForwardingOff
	for i, s := range forwardingSysctls {
		if use[i].services == 0 {
			continue
		}
		f := api.ForwardingOff{Sysctl: s.name, Services: use[i].services, Example: use[i].example}
		b, err := os.ReadFile(filepath.Join(sysctlDir, s.file))
		switch v := strings.TrimSpace(string(b)); {
		case err != nil:
			f.Error = err.Error()
		case v == "1":
			continue
		case v == "0":
			f.Value = v
		default:
			f.Value, f.Error = v, "want 0 or 1"
		}
		out = append(out, f)
	}
	return out
}

// forwardWatch logs the forwarding problems of the masquerading services
// when they change: at start-up, once the log has been applied, and again
// whenever a change of the configuration makes a family's switch matter
// (the first masquerading service of a family added while it is off) or
// makes it stop mattering. It reads the switches only on configuration
// changes; cluster status reads them each time it is asked.
type forwardWatch struct {
	log  *slog.Logger
	node string
	dir  string
	last string // what was last logged; "": nothing wrong
}

// step checks once, logging only what differs from the last step: one
// line naming every switch that is off, how many masquerading services
// need it, one of them, and the command that fixes it.
func (w *forwardWatch) step(use [2]masqUse) {
	off := forwardingOff(use, w.dir)
	var states, fixes []string
	services, example := 0, ""
	for _, f := range off {
		state := f.Sysctl + "=" + f.Value
		if f.Error != "" {
			state = f.Sysctl + " " + f.Error
		}
		states = append(states, state)
		fixes = append(fixes, "sysctl -w "+f.Sysctl+"=1")
		services += f.Services
		if example == "" {
			example = f.Example
		}
	}
	key := strings.Join(states, ", ")
	if key == w.last {
		return
	}
	w.last = key
	if key == "" {
		w.log.Info("ip forwarding warning cleared", "node", w.node, "reason", "forwarding on, or no masquerading service of that family left")
		return
	}
	w.log.Warn("ip forwarding off: masquerading services will not answer their clients", "node", w.node, "sysctls", key,
		"masq_services", services, "example", example, "fix", strings.Join(fixes, "; ")+" (and a file in /etc/sysctl.d to keep it)")
}

// watchForwarding runs forwardWatch on every change of the replicated
// state until ctx ends.
func (d *daemon) watchForwarding(ctx context.Context, changes <-chan struct{}) {
	w := &forwardWatch{log: d.log, node: d.o.nodeID, dir: forwardingSysctlDir}
	var cfg *fsm.Config
	var use [2]masqUse
	for {
		// Walked once per configuration: most changes are verdicts.
		d.node.View(func(s *fsm.State, _ uint64) {
			if s.Config != cfg {
				cfg, use = s.Config, masquerading(s.Config)
			}
		})
		w.step(use)
		select {
		case <-ctx.Done():
			return
		case <-changes:
		}
	}
}

// forwardingStatus is cluster status's view: the switches read now.
func (d *daemon) forwardingStatus() []api.ForwardingOff {
	var use [2]masqUse
	d.node.View(func(s *fsm.State, _ uint64) { use = masquerading(s.Config) })
	return forwardingOff(use, forwardingSysctlDir)
}

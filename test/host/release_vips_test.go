package host

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
)

// foreignAddr is an address the killed node's eth0 holds that no daemon
// recorded: the cleanup must leave it.
const foreignAddr = "198.51.100.7/32"

// TestReleaseVIPsAfterSIGKILL: a leader killed with SIGKILL leaves its
// VIPs configured; the packaged unit's ExecStopPost command (ipvsmand
// with the daemon's options and --release-vips), run in the dead node's
// namespace as systemd would run it there, removes every one of them at
// once, leaves an address the daemon never recorded, and takes nothing
// from the new leader. A second run, as after a later clean stop, changes
// nothing and succeeds.
func TestReleaseVIPsAfterSIGKILL(t *testing.T) {
	l := newVIPLab(t)
	c, nodes := l.c, l.nodes
	lead := c.Leader(t, nodes[0], nodes)
	l.waitOwner(t, lead, others(nodes, lead)...)
	l.tp.MustExec(lead.ID, "ip", "addr", "add", foreignAddr, "dev", "eth0")

	lead.Kill()
	if h := l.holds(t, lead.ID); len(h) != len(l.vips) {
		t.Fatalf("the killed leader's namespace holds %v, want all of %v: nothing left for the cleanup to prove", h, l.vips)
	}
	rest := others(nodes, lead)
	next := c.Leader(t, rest[0], rest)
	harness.Eventually(t, 20*time.Second, "VIPs on "+next.ID, func() (bool, string) {
		h := l.holds(t, next.ID)
		return len(h) == len(l.vips), fmt.Sprintf("%s holds %v", next.ID, h)
	})

	for pass := 1; pass <= 2; pass++ {
		out, err := lead.ReleaseVIPs()
		if err != nil {
			t.Fatalf("pass %d: %v", pass, err)
		}
		if h := l.holds(t, lead.ID); len(h) != 0 {
			t.Fatalf("pass %d: after ipvsmand --release-vips the killed leader still holds %v\n%s", pass, h, out)
		}
		if pass == 1 && strings.Count(out, "address removed") != len(l.vips) {
			t.Errorf("pass 1: want one \"address removed\" line per VIP (%d):\n%s", len(l.vips), out)
		}
	}
	if out := l.tp.MustExec(lead.ID, "ip", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, " "+foreignAddr+" ") {
		t.Errorf("ipvsmand --release-vips removed %s, which it never recorded:\n%s", foreignAddr, out)
	}
	l.waitOwner(t, next, others(rest, next)...)
}

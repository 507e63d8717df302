package host

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/failover"
	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// stallFor is how long the new leader must leave the VIP to a stalled
// former leader in the test: the fault injected, not a wait for a
// condition. Long enough that a new leader that does not probe has long
// added the address (it does so within a few milliseconds of the fence).
const stallFor = 500 * time.Millisecond

// TestAStalledLeaderKeepsItsVIPsUntilItLetsGo: a leader that is not
// scheduled (SIGSTOP: no Raft timing can make it step down) still answers
// ARP for its VIP from its kernel. The new leader must not add the
// address while it does: it probes, leaves it, and takes it once the
// former leader, running again, has let go; two holders are never seen.
// A former leader that stays stalled past --vip-probe-limit loses the
// address anyway, so a crashed daemon nobody cleans up after delays a
// failover by the limit and no more.
func TestAStalledLeaderKeepsItsVIPsUntilItLetsGo(t *testing.T) {
	const limit = 5 * time.Second
	l := newVIPLab(t, "--vip-probe-limit="+limit.String())
	c, nodes := l.c, l.nodes
	lead := c.Leader(t, nodes[0], nodes)
	l.waitOwner(t, lead, others(nodes, lead)...)
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.ID)
	}
	obs := failover.NewObserver(t, l.tp, topo.VIP+"/32", ids...)

	lead.Pause()
	t.Cleanup(lead.Resume)
	// The logs, not the CLI, tell who won: the test must act well within
	// the limit.
	rest := others(nodes, lead)
	var next *harness.Node
	harness.Eventually(t, 10*time.Second, "a new leader while "+lead.ID+" is stalled", func() (bool, string) {
		for _, n := range rest {
			if strings.Contains(n.Log(), `"msg":"leadership gained"`) {
				next = n
				return true, ""
			}
		}
		return false, "no leadership gained in the logs of " + rest[0].ID + " or " + rest[1].ID
	})
	time.Sleep(stallFor)
	if h := obs.Current(); len(h) != 1 || h[0] != lead.ID {
		t.Errorf("with %s stalled for %s after %s won, the VIP is on %v, want %s alone", lead.ID, stallFor, next.ID, h, lead.ID)
	}
	if h := l.holds(t, next.ID); len(h) != 0 {
		t.Errorf("with %s stalled, %s added %v (IPv4 and IPv6 are both probed)", lead.ID, next.ID, h)
	}
	if !strings.Contains(next.Log(), `"msg":"vip still answered by another node; leaving it until it lets go"`) {
		t.Errorf("%s did not find the VIP still answered by %s", next.ID, lead.ID)
	}
	lead.Resume()
	l.waitOwner(t, next, others(nodes, next)...)
	if !strings.Contains(next.Log(), `"msg":"vip let go by the other node"`) {
		t.Errorf("%s took the VIP without seeing %s let go", next.ID, lead.ID)
	}
	if total, worst := obs.Overlap(); total > 0 {
		t.Errorf("two nodes held %s at once for %s (longest %s)", topo.VIP, total, worst)
	}

	// Stalled past the limit: taken anyway, after the limit.
	next.Pause()
	t.Cleanup(next.Resume)
	rest = others(nodes, next)
	third := c.Leader(t, rest[0], rest)
	harness.Eventually(t, 10*time.Second+limit, third.ID+" takes the VIP after the limit", func() (bool, string) {
		return strings.Contains(third.Log(), `"msg":"vip still answered by another node after the limit; taking it"`) && len(l.holds(t, third.ID)) == len(l.vips),
			fmt.Sprintf("%s holds %v", third.ID, l.holds(t, third.ID))
	})
	next.Resume()
	l.waitOwner(t, third, others(nodes, third)...)
}

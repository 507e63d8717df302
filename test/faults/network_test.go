package faults

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// runs is how many times each scenario runs: FAULTS_RUNS, default 1
// (make faults RUNS=N).
func runs() int {
	if n, err := strconv.Atoi(os.Getenv("FAULTS_RUNS")); err == nil && n > 0 {
		return n
	}
	return 1
}

// hold lets a fault last: a schedule, not a wait for a condition.
func hold(d time.Duration) { <-time.After(d) }

// progress waits until the cluster acknowledged more writes after a fault
// than before it: the majority serves while the fault lasts.
func (r *rig) progress(w *Writer, more int, what string) {
	r.t.Helper()
	base := w.Count()
	harness.Eventually(r.t, 30*time.Second, fmt.Sprintf("%d more writes acknowledged %s", more, what), func() (bool, string) {
		n := w.Count()
		st := w.Stats()
		return n >= base+more, fmt.Sprintf("%d acknowledged since; last refusal %q, last unanswered %q", n-base, st.LastNo, st.LastErr)
	})
}

// TestLeaderIsolated cuts the leader off while writes flow through every
// node: silently (its bridge port drops every frame, the link stays up)
// and by link loss, two scenarios of RUNS runs each. The rest elect a
// leader and go on acknowledging writes; after the heal every node agrees.
func TestLeaderIsolated(t *testing.T) {
	r := newRig(t, 3)
	for i := 0; i < 2*runs(); i++ {
		kind := []string{"silent", "link cut"}[i%2]
		w := r.begin("the cut")
		lead := r.leader()
		if kind == "silent" {
			r.tp.SilentCut(lead.ID)
		} else {
			r.tp.CutLink(lead.ID)
		}
		rest := others(r.nodes, lead)
		next := r.c.Leader(t, rest[0], rest)
		r.progress(w, 10, "by "+next.ID+" while "+lead.ID+" is cut off")
		if kind == "silent" {
			r.tp.SilentRestore(lead.ID)
		} else {
			r.tp.RestoreLink(lead.ID)
		}
		r.finish("leader isolated ("+kind+")", w, time.Now())
	}
}

// TestSymmetricSplit splits five nodes into two groups that cannot reach
// each other in either direction, the leader in the group of two, while
// the client reaches all five and writes through each.
func TestSymmetricSplit(t *testing.T) {
	r := newRig(t, 5)
	for range runs() {
		w := r.begin("the split")
		lead := r.leader()
		minority := []*harness.Node{lead, others(r.nodes, lead)[0]}
		majority := others(r.nodes, minority...)
		r.split(minority, majority, "add")
		next := r.c.Leader(t, majority[0], majority)
		r.progress(w, 10, "by "+next.ID+" in the majority")
		// The minority gets election rounds of its own to misbehave in.
		hold(2 * time.Second)
		r.split(minority, majority, "del")
		r.finish("symmetric split", w, time.Now())
	}
}

// split adds (or deletes) blackhole routes, in each node of a, to each
// node of b and back: both directions drop, nothing else changes.
func (r *rig) split(a, b []*harness.Node, op string) {
	r.t.Helper()
	for _, x := range a {
		for _, y := range b {
			r.tp.MustExec(x.ID, "ip", "route", op, "blackhole", host(y)+"/32")
			r.tp.MustExec(y.ID, "ip", "route", op, "blackhole", host(x)+"/32")
		}
	}
}

func host(n *harness.Node) string {
	for i := 1; i <= topo.MaxDirectors; i++ {
		if topo.Director(i) == n.ID {
			return topo.DirectorAddr(i)
		}
	}
	panic("not a director: " + n.ID)
}

// TestFlappingLink takes the leader's link down and up six times, each
// time the node leading then: short outages, each shorter than some
// election rounds and longer than others.
func TestFlappingLink(t *testing.T) {
	r := newRig(t, 3)
	for range runs() {
		w := r.begin("the flapping")
		for i, down := range []time.Duration{300, 800, 150, 1200, 500, 2000} {
			lead := r.leader()
			r.tp.CutLink(lead.ID)
			hold(down * time.Millisecond)
			r.tp.RestoreLink(lead.ID)
			r.t.Logf("flap %d: %s down for %d ms", i+1, lead.ID, down)
			hold(time.Second)
		}
		r.finish("flapping link", w, time.Now())
	}
}

// TestKillNineLoop kills a node with SIGKILL five times while writes
// flow, the leader every other time, and restarts it at once. It means a
// crashed process on a live machine: the killed node's VIP answers until
// the packaged unit's ExecStopPost removes it (rig.crash runs it at once,
// as systemd would), and the observer counts that window.
func TestKillNineLoop(t *testing.T) {
	r := newRig(t, 3)
	for range runs() {
		w := r.begin("the first kill")
		for i := 0; i < 5; i++ {
			lead := r.leader()
			victim := lead
			if i%2 == 1 {
				victim = others(r.nodes, lead)[(i/2)%2]
			}
			r.crash(victim)
			r.progress(w, 5, "with "+victim.ID+" killed")
			victim.Start()
			r.t.Logf("kill %d: %s (leader: %v)", i+1, victim.ID, victim == lead)
		}
		r.finish("kill -9 loop", w, time.Now())
	}
}

// others is nodes without the given ones.
func others(nodes []*harness.Node, not ...*harness.Node) []*harness.Node {
	var out []*harness.Node
	for _, n := range nodes {
		if !slices.Contains(not, n) {
			out = append(out, n)
		}
	}
	return out
}

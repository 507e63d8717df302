package host

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/failover"
	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// partitionHold is how long a partition lasts: many election rounds of
// the minority (each one election timeout long, cluster.DefaultTiming),
// each a chance to grab the VIP wrongly.
const partitionHold = 3 * time.Second

// TestPartitionedLeaderDropsTheVIPFirst isolates the leader in both ways a
// network fails: (a) its link cut, so it sees carrier loss, and (b) a
// silent partition, its bridge port disabled, so it keeps carrier and sees
// only silence. In both, an observer sampling every node's addresses every
// 2 ms finds no instant where two nodes held the VIP: the isolated leader's
// lease runs out and it drops the VIP before the majority can elect a new
// leader. The minority never takes it back while cut off, and after the
// heal the client keeps its service: no node holds an address the client's
// neighbour table does not point to.
//
// IPVSMAND_TIMING (e.g. "--heartbeat-timeout=300ms ...") runs it with other
// Raft timings, to compare their margins.
func TestPartitionedLeaderDropsTheVIPFirst(t *testing.T) {
	l := newVIPLab(t, strings.Fields(os.Getenv("IPVSMAND_TIMING"))...)
	c, nodes := l.c, l.nodes
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.ID)
	}
	obs := failover.NewObserver(t, l.tp, topo.VIP+"/32", ids...)
	poll := failover.StartPoller(t, l.tp, l.tool, topo.Client, "http://"+topo.VIP+"/", 0, 0)

	for _, kind := range []string{"link cut", "silent"} {
		lead := c.Leader(t, nodes[0], nodes)
		l.waitOwner(t, lead, others(nodes, lead)...)
		if _, ok := poll.WaitStreak(time.Now(), 10, lead.ID, time.Now().Add(20*time.Second)); !ok {
			t.Fatalf("%s: the client is not answered by %s: %s", kind, lead.ID, poll.Health())
		}
		cut := time.Now()
		if kind == "silent" {
			l.tp.SilentCut(lead.ID)
		} else {
			l.tp.CutLink(lead.ID)
		}
		rest := others(nodes, lead)
		next := c.Leader(t, rest[0], rest)
		if err := obs.WaitFor(func(h []string) bool { return slices.Equal(h, []string{next.ID}) }, 10*time.Second); err != nil {
			t.Fatalf("%s: VIP not on %s alone: %v", kind, next.ID, err)
		}
		end, _, ok := poll.FirstOKFromOther(cut, time.Now().Add(10*time.Second), lead.ID)
		if !ok {
			t.Fatalf("%s: the client never reached %s: %s", kind, next.ID, poll.Health())
		}
		// Not a wait for a condition: the minority gets a few seconds of
		// election rounds to grab the VIP wrongly; the observer's
		// intervals, checked below, say whether it did.
		time.Sleep(partitionHold)
		total, worst := obs.OverlapBetween(cut, time.Now())
		res := obs.Resolution(cut, time.Now())
		if err := res.Err(); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
		dropped := lastRelease(obs.Intervals(lead.ID), cut)
		gained, _ := obs.FirstHeld(next.ID, cut)
		t.Logf("%s: %s dropped the VIP %d ms after the cut, %s added it %d ms after; client answered by %s after %d ms; overlap %s (worst %s; %s)",
			kind, lead.ID, dropped.Sub(cut).Milliseconds(), next.ID, gained.Sub(cut).Milliseconds(), next.ID, end.Sub(cut).Milliseconds(), total, worst, res)
		if total != 0 {
			t.Errorf("%s: two nodes held the VIP at once for %s (worst stretch %s)", kind, total, worst)
		}
		if dropped.IsZero() || !dropped.Before(gained) {
			t.Errorf("%s: old leader released at %v, new one added at %v: not drop-first", kind, dropped, gained)
		}
		for _, iv := range obs.Intervals(lead.ID) {
			if iv.From.After(cut) {
				t.Errorf("%s: the isolated %s held the VIP again from %v", kind, lead.ID, iv.From)
			}
		}

		heal := time.Now()
		if kind == "silent" {
			l.tp.SilentRestore(lead.ID)
		} else {
			l.tp.RestoreLink(lead.ID)
		}
		harness.Eventually(t, 30*time.Second, "three members after the heal", func() (bool, string) {
			r := c.CLI(next, "", "cluster", "status")
			return r.Err == nil && strings.Count(r.Stdout, "Follower") == 2, r.Stdout + r.Stderr
		})
		// Five seconds of service after the heal: at most 1 s without answers.
		if _, ok := poll.WaitStreak(heal.Add(5*time.Second), 10, "", time.Now().Add(20*time.Second)); !ok {
			t.Fatalf("%s: no service after the heal: %s", kind, poll.Health())
		}
		if gap := failover.LongestOutage(poll.Results(heal, heal.Add(5*time.Second))); gap > time.Second {
			t.Errorf("%s: after the heal the client went %s without an answer", kind, gap)
		}
		now := c.Leader(t, next, nodes)
		if h := obs.Current(); !slices.Equal(h, []string{now.ID}) {
			t.Errorf("%s: after the heal the VIP is on %v, the leader is %s", kind, h, now.ID)
		}
		if got, want := l.neighMAC(t, topo.VIP), l.mac(t, now.ID); got != want {
			t.Errorf("%s: after the heal the client's entry for the VIP is %s, the holder %s has %s", kind, got, now.ID, want)
		}
	}
}

// lastRelease is the end of the first presence interval that covers or
// follows t: when a holder at t let go (zero if it never did).
func lastRelease(ivs []failover.Interval, t time.Time) time.Time {
	for _, iv := range ivs {
		if !iv.To.IsZero() && iv.To.After(t) {
			return iv.To
		}
	}
	return time.Time{}
}

package failover

import (
	"slices"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// testPrefix keeps these tests out of the benchmark's way ("fo-").
const testPrefix = "fot-"

// The instruments against a VIP moved by hand: the Observer sees who has
// it and for how long two did, the Poller who answers.
func TestRigSeesAHandMadeVIP(t *testing.T) {
	lab := NewLab(t, topo.BuildLabtool(t), testPrefix)
	r := NewRig(t, lab)
	tp := lab.Topo
	if h := r.Obs.Current(); len(h) != 0 {
		t.Fatalf("holders before any VIP: %v", h)
	}

	t0 := time.Now()
	tp.AddAddr("d1", VIPCIDR, VIPDev)
	// The client tried the VIP before anyone had it: make it ask again.
	tp.ArpFlush(topo.Client)
	holder, err := r.Stable(nil)
	if err != nil || holder != "d1" {
		t.Fatalf("Stable = %q, %v; want d1", holder, err)
	}
	end, server, ok := r.Poll.FirstOKAfter(t0, time.Now().Add(10*time.Second))
	if !ok || server != "d1" || end.Before(t0) {
		t.Fatalf("FirstOKAfter = %v, %q, %v", end, server, ok)
	}
	held, ok := r.Obs.FirstHeld("d1", t0)
	if !ok || held.Before(t0) || held.After(end) {
		t.Fatalf("FirstHeld(d1) = %v, %v; want between %v and %v", held, ok, t0, end)
	}

	// d2 takes it too for a while: an overlap the Observer must see.
	tp.AddAddr("d2", VIPCIDR, VIPDev)
	if err := r.Obs.WaitFor(func(h []string) bool { return slices.Equal(h, []string{"d1", "d2"}) }, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	both := time.Now()
	tp.DelAddr("d1", VIPCIDR, VIPDev)
	if err := r.Obs.WaitFor(func(h []string) bool { return slices.Equal(h, []string{"d2"}) }, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	total, worst := r.Obs.Overlap()
	if total <= 0 || total != worst {
		t.Fatalf("Overlap = %v total, %v worst; want one stretch", total, worst)
	}
	if h := r.Obs.Holders(both); !slices.Equal(h, []string{"d1", "d2"}) {
		t.Fatalf("Holders at %v = %v", both, h)
	}

	// A crashed node's leftover address is no overlap.
	r.Obs.Crashed("d2")
	tp.AddAddr("d3", VIPCIDR, VIPDev)
	tp.ArpFlush(topo.Client)
	if err := r.Obs.WaitFor(func(h []string) bool { return len(h) == 2 }, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	tp.DelAddr("d2", VIPCIDR, VIPDev)
	// Revived right after the removal, before any sample saw it: the
	// Observer must not count d2 for that moment.
	r.Obs.Revived("d2")
	if holder, err := r.Stable(nil); err != nil || holder != "d3" {
		t.Fatalf("Stable = %q, %v; want d3", holder, err)
	}
	if t2, _ := r.Obs.Overlap(); t2 != total {
		t.Fatalf("overlap grew from %v to %v while the other holder was marked crashed", total, t2)
	}
	// Five changes of the address by hand (three adds, two deletes), each
	// seen as an event, so that a long gap across any of them fails a run.
	if err := r.Obs.waitSample(time.Now(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if adds, dels := r.Obs.Moves(); adds < 3 || dels < 2 {
		t.Fatalf("the observer drained %d adds and %d deletes of the address, want the 3 and 2 made", adds, dels)
	}
	if n, failed, err := r.Obs.Stats(); n == 0 || failed != 0 {
		t.Fatalf("observer: %d samples, %d failed, %v", n, failed, err)
	}
	if all, _ := r.Poll.Count(t0, time.Now()); all == 0 {
		t.Fatal("Count saw no requests")
	}
}

// One crash of the keepalived master at advert_int 0.1: the whole driver
// path, quickly. The benchmark does the same many times.
func TestKeepalivedCrashCycle(t *testing.T) {
	KeepalivedBinary(t)
	lab := NewLab(t, topo.BuildLabtool(t), testPrefix)
	r := NewRig(t, lab)
	k := StartKeepalived(t, lab, 100*time.Millisecond)
	c, err := r.CrashCycle(k)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keepalived advert 0.1s: %s", c)
	if c.To == c.From || c.Recovery <= 0 || c.Recovery > 3*time.Second {
		t.Fatalf("cycle %+v: want another node answering within 3s", c)
	}
	if total, _ := r.Obs.Overlap(); total > 0 {
		t.Logf("overlap %v (keepalived's own)", total)
	}
}

package director

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

func TestPaceKeepsTheBudget(t *testing.T) {
	for _, c := range []struct {
		cpu, nominal time.Duration
		budget       float64
		want         time.Duration
	}{
		{time.Millisecond, 100 * time.Millisecond, 0.01, 100 * time.Millisecond}, // 1% of 100 ms: within the budget
		{5 * time.Millisecond, 100 * time.Millisecond, 0.01, 500 * time.Millisecond},
		{300 * time.Millisecond, time.Second, 0.02, 15 * time.Second},
		{time.Second, time.Second, 0, time.Second}, // no budget: the period alone
	} {
		if got := pace(c.cpu, c.nominal, c.budget); got != c.want {
			t.Errorf("pace(%v, %v, %v) = %v, want %v", c.cpu, c.nominal, c.budget, got, c.want)
		}
	}
}

// scrubState: n services of three real servers each.
func scrubState(t *testing.T, n int) *fsm.State {
	t.Helper()
	var ops []fsm.Op
	for i := range n {
		k := fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.AddrFrom4([4]byte{10, 9, byte(i / 250), byte(i%250 + 1)}), Port: 80}
		ops = append(ops, addSvc(k, "wlc"))
		for j := range 3 {
			ops = append(ops, addSrv(k, fmt.Sprintf("10.8.%d.%d", i%250, j+1), 1+j, fsm.Active))
		}
	}
	return state(t, ops...)
}

// scrubRound runs the timer's passes until a round of drift repair ends
// (or drift made a full pass), and returns how many it took.
func scrubRound(t *testing.T, r *Reconciler, tg Target) int {
	t.Helper()
	for n := 1; n <= 100; n++ {
		r.resync(tg, 10*time.Second)
		if r.scrubbing.keys == nil {
			return n
		}
	}
	t.Fatal("no round of drift repair ended in 100 passes")
	return 0
}

func TestDriftRepairReadsTheTableInSlices(t *testing.T) {
	st := scrubState(t, 40)
	tg := target(st)
	tg.Index = 7
	k := newFake()
	r := rec(k)
	if rep := r.StepFull(tg); rep.Failed != 0 {
		t.Fatalf("first pass: %+v", rep)
	}
	reads, applied := k.reads, len(k.applied)
	// The listing of services, then 40 services 16 at a time.
	if n := scrubRound(t, r, tg); n != 4 {
		t.Fatalf("a round of 40 services took %d passes, want 4 (the listing and three slices)", n)
	}
	if k.reads != reads || len(k.applied) != applied {
		t.Fatalf("an unchanged table: %d full dumps and %d operations, want none", k.reads-reads, len(k.applied)-applied)
	}
	if k.partReads != 41 {
		t.Fatalf("%d part reads, want 41 (the listing and one per service)", k.partReads)
	}
	last := r.Last()
	if want := Desired(st).Fingerprint(); last.Fingerprint != want || last.KernelIndex != 7 {
		t.Fatalf("after the round: kernel fingerprint %s at index %d, want %s at 7", last.Fingerprint, last.KernelIndex, want)
	}
	if r.ResyncRound() <= 0 {
		t.Fatalf("round time %v, want it recorded", r.ResyncRound())
	}
}

func TestDriftRepairFindsAHandEditAndAFlush(t *testing.T) {
	st := scrubState(t, 40)
	tg := target(st)
	k := newFake()
	r := rec(k)
	r.StepFull(tg)
	// A weight edited by hand in a service of the last slice: found within
	// the round, and repaired by a full pass with that one operation.
	edited := fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.9.0.40"), Port: 80}
	s := k.table[edited.String()]
	d := s.Dests["10.8.39.1:8080"]
	d.Weight = 99
	s.Dests["10.8.39.1:8080"] = d
	k.applied = nil
	if n := scrubRound(t, r, tg); n > 4 {
		t.Fatalf("the edit was found after %d passes, more than a round", n)
	}
	if want := "update-dest tcp:10.9.0.40:80 -> 10.8.39.1:8080"; len(k.applied) != 1 || k.applied[0] != want {
		t.Fatalf("repair made %v, want [%s]", k.applied, want)
	}
	if got := k.table[edited.String()].Dests["10.8.39.1:8080"].Weight; got != 1 {
		t.Fatalf("weight %d after the repair, want 1", got)
	}
	if last := r.Last(); last.Drifted != 1 || len(last.Drift) != 1 || last.Drift[0] != edited.String() {
		t.Fatalf("report names drift %v (%d), want [%s]", last.Drift, last.Drifted, edited)
	}

	// A flush after the round's listing: the next slice sees it.
	scrubRound(t, r, tg) // a clean round
	r.resync(tg, 10*time.Second)
	if r.scrubbing.keys == nil {
		t.Fatal("no round begun")
	}
	k.table = Table{}
	k.applied = nil
	r.resync(tg, 10*time.Second)
	if len(k.applied) != 40*4 {
		t.Fatalf("the slice after a flush made %d operations, want the whole table again (160)", len(k.applied))
	}
}

// A pass that changes the table while a round reads it: the round reads
// the changed service again at its end, and so proves the table of the
// latest index, not the earlier one nor a mix.
func TestDriftRepairRoundDuringChangesProvesTheLatestIndex(t *testing.T) {
	st := scrubState(t, 40)
	tg := target(st)
	tg.Index = 3
	k := newFake()
	r := rec(k)
	r.StepFull(tg)
	scrubRound(t, r, tg)
	r.resync(tg, 10*time.Second) // the listing
	r.resync(tg, 10*time.Second) // the first slice: 10.9.0.1 is read
	c, _ := fsm.NewCommand(fsm.CmdOps, 99, "test", fsm.OpsPayload{Ops: []fsm.Op{addSrv(fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.9.0.1"), Port: 80}, "10.8.77.1", 1, fsm.Active)}})
	if res, err := st.Apply(c); err != nil || res.Err != "" {
		t.Fatal(err, res.Err)
	}
	tg2 := target(st)
	tg2.Index = 4
	if rep := r.Step(tg2); rep.Ops != 1 {
		t.Fatalf("the change: %+v", rep)
	}
	reads, parts := k.reads, k.partReads
	scrubRound(t, r, tg2)
	if k.reads != reads {
		t.Fatalf("the round made %d full dumps, want none (nothing drifted)", k.reads-reads)
	}
	if n := k.partReads - parts; n != 40-16+1 {
		t.Fatalf("the rest of the round read %d services, want %d (the unread ones and the changed one again)", n, 40-16+1)
	}
	if last := r.Last(); last.KernelIndex != 4 || last.Fingerprint != Desired(st).Fingerprint() {
		t.Fatalf("after the round: index %d fingerprint %s, want 4 and %s", last.KernelIndex, last.Fingerprint, Desired(st).Fingerprint())
	}
}

// The resync timer of an unchanged table: it used to dump the whole table
// every period (at 2,277 services and 37,205 real servers, 5.5 s of CPU in
// the lab VM, every 10 s). Now it reads it back a slice at a time, and
// never dumps everything while nothing differs.
func TestResyncOfAnUnchangedTableNeverDumpsItAll(t *testing.T) {
	st := scrubState(t, 40)
	k := newFake()
	rounds := make(chan struct{})
	k.onPart = func(n int64) {
		if n == 5*41 { // five rounds: the listing and 40 services each
			close(rounds)
		}
	}
	r := rec(k)
	r.Resync = 20 * time.Millisecond
	changes := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx, changes, func() Target { return target(st) })
	}()
	defer func() { cancel(); <-done }()
	select {
	case <-rounds:
	case <-time.After(10 * time.Second):
		t.Fatalf("in 10 s of resync passes every 20 ms: %d full dumps, %d part reads; want five rounds read in slices", k.fullN.Load(), k.partN.Load())
	}
	if n := k.fullN.Load(); n != 1 {
		t.Fatalf("%d full dumps of an unchanged table, want 1 (the first pass's)", n)
	}
}

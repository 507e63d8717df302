package director

import (
	"context"
	"slices"
	"testing"
	"time"
)

// A kernel that stores something else than it was told (as moby/ipvs did
// with the IPv4 netmask) must show in the fingerprint read back from it,
// not hide behind the target's.
func TestReadBackFingerprintSeesAMangledKernel(t *testing.T) {
	st := sample(t)
	k := newFake()
	k.mangle = func(op Op) Op {
		if (op.Kind == CreateService || op.Kind == UpdateService) && op.Service.Key.Family() == "inet" {
			m := op.Service.Netmask
			op.Service.Netmask = m>>24 | m>>8&0xff00 | m<<8&0xff0000 | m<<24
		}
		return op
	}
	r := rec(k)
	tg := target(st)
	tg.Index = 40
	if rep := r.Step(tg); rep.Failed != 0 {
		t.Fatalf("first pass: %+v", rep)
	}
	rep := r.StepFull(tg)
	want := Desired(st).Fingerprint()
	if rep.TargetFingerprint != want {
		t.Fatalf("target fingerprint %s, want %s", rep.TargetFingerprint, want)
	}
	if rep.Fingerprint == want {
		t.Fatalf("read-back fingerprint %s equals the target's although the kernel holds another netmask", rep.Fingerprint)
	}
	if rep.KernelIndex != 40 || !slices.Equal(rep.Drift, []string{web.String()}) || rep.Drifted != 1 {
		t.Fatalf("read back at index %d, drift %v (%d), want 40 and [%s]", rep.KernelIndex, rep.Drift, rep.Drifted, web)
	}
}

// A hand edit that the incremental step cannot see is found by the next
// full resync, named, and repaired; the resync after it reads back the
// target.
func TestReadBackNamesTheServiceAndTheResyncRepairsIt(t *testing.T) {
	st := sample(t)
	k := newFake()
	r := rec(k)
	tg := target(st)
	tg.Index = 12
	r.Step(tg)
	clean := r.StepFull(tg)
	if clean.Fingerprint != clean.TargetFingerprint || clean.KernelIndex != 12 || len(clean.Drift) != 0 {
		t.Fatalf("clean kernel read back as %+v", clean)
	}

	s := k.table[web.String()]
	d := s.Dests["10.1.0.21:8080"]
	d.Weight = 99
	s.Dests["10.1.0.21:8080"] = d
	if rep := r.Step(tg); rep.Ops != 0 || rep.Fingerprint != clean.Fingerprint {
		t.Fatalf("the incremental step saw the hand edit: %+v", rep)
	}

	rep := r.StepFull(tg)
	if rep.Fingerprint == rep.TargetFingerprint || !slices.Equal(rep.Drift, []string{web.String()}) || rep.KernelIndex != 12 {
		t.Fatalf("full resync after a hand edit: %+v", rep)
	}
	if got := k.table[web.String()].Dests["10.1.0.21:8080"].Weight; got != 3 || rep.Ops != 1 {
		t.Fatalf("not repaired: weight %d after %d ops", got, rep.Ops)
	}
	if again := r.StepFull(tg); again.Fingerprint != again.TargetFingerprint || len(again.Drift) != 0 || again.Ops != 0 {
		t.Fatalf("resync after the repair: %+v", again)
	}
}

// A foreign service is not ours to answer for; one the model dropped but
// the kernel still holds is.
func TestReadBackCoversManagedServicesOnly(t *testing.T) {
	want := Table{web.String(): {Key: web, Scheduler: "rr", Dests: map[string]Dest{}}}
	dump := Table{
		web.String(): {Key: web, Scheduler: "rr", Dests: map[string]Dest{}},
		fwm.String(): {Key: fwm, Scheduler: "rr", Dests: map[string]Dest{}},
	}
	if rb := readBack(dump, want, nil, map[string]bool{web.String(): true}, false); rb.Fingerprint != want.Fingerprint() || rb.Drifted != 0 {
		t.Fatalf("foreign service counted: %+v", rb)
	}
	rb := readBack(dump, want, nil, map[string]bool{web.String(): true, fwm.String(): true}, false)
	if rb.Fingerprint == want.Fingerprint() || !slices.Equal(rb.Drift, []string{fwm.String()}) {
		t.Fatalf("a managed leftover not counted: %+v", rb)
	}
}

// A steady stream of changes (a health storm) must not postpone the full
// resync that reads the kernel back: every change is an incremental step,
// and the resync still comes on time.
func TestChangesDoNotPostponeTheFullResync(t *testing.T) {
	st := sample(t)
	k := newFake()
	r := rec(k)
	r.Resync = 40 * time.Millisecond
	dumps := make(chan time.Time, 100)
	var last time.Time
	r.Observe = func(rep Report) {
		// Runs on the reconciler's goroutine: a new read-back time is a dump.
		if !rep.KernelAt.Equal(last) {
			last = rep.KernelAt
			select {
			case dumps <- last:
			default:
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	changes := make(chan struct{})
	r.Start(ctx, changes, func() Target { return target(st) })
	// The feeder is owned here: stopped and awaited before the reconciler.
	feederDone := make(chan struct{})
	go func() {
		defer close(feederDone)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				select {
				case changes <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	defer func() { cancel(); <-feederDone; r.Stop() }()

	deadline := time.After(5 * time.Second)
	for n := 0; n < 4; n++ { // the first dump at start, then three resyncs
		select {
		case <-dumps:
		case <-deadline:
			t.Fatalf("%d dumps in 5 s with a 40 ms resync under a stream of changes", n)
		}
	}
}

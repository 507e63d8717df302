package failover

import (
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func msf(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

// TestResolutionFigures: the gaps between complete samples, with the
// window's ends closing the first and last, their median and worst, and
// the failed dumps inside the window only.
func TestResolutionFigures(t *testing.T) {
	complete := []time.Duration{msf(1), msf(3), msf(5), msf(7), msf(30), msf(32)}
	changed := []bool{false, false, false, false, true, false} // the 23 ms gap saw an add and a delete
	failed := []time.Duration{msf(2), msf(9), msf(9), msf(40)}
	r, end := resolution(complete, changed, failed, msf(2), msf(33))
	// Gaps: 3-1, 5-3, 7-5, 30-7, 32-30, 33-32 (unknown: no sample after 33).
	want := Resolution{Samples: 5, FailedDumps: 3, MedianGap: msf(2), WorstGap: msf(23), WorstMixedGap: msf(23)}
	if r != want || end != msf(30) {
		t.Fatalf("resolution = %+v ending at %s, want %+v ending at 30ms", r, end, want)
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "23ms between two complete samples while the address was both added and deleted") {
		t.Fatalf("Err of a 23 ms gap: %v", err)
	}
	if got := r.String(); got != "worst_gap_ms: 23, worst_add_del_gap_ms: 23, median_gap_ms: 2.0, samples: 5, failed_dumps: 3" {
		t.Fatalf("String = %q", got)
	}
	// The same gaps with no add and delete together in the long one: it
	// hid nothing, so it is reported and does not fail the window.
	quiet, _ := resolution(complete, []bool{false, false, true, false, false, false}, failed, msf(2), msf(40))
	if quiet.WorstGap != msf(23) || quiet.WorstMixedGap != msf(8) || quiet.Err() != nil {
		t.Fatalf("a long gap without changes: %+v, %v", quiet, quiet.Err())
	}
	// A sampler that stopped answering at 7 ms: the window's end shows it,
	// and nothing says the address held still meanwhile.
	if r, _ := resolution(complete[:4], changed[:4], nil, 0, msf(100)); r.WorstMixedGap != msf(93) || r.Err() == nil {
		t.Fatalf("stalled at the end: %+v, %v", r, r.Err())
	}
	if r, _ := resolution(nil, nil, failed, 0, msf(10)); r.Samples != 0 || r.Err() == nil || !strings.Contains(r.Err().Error(), "no complete sample") {
		t.Fatalf("no sample: %+v, %v", r, r.Err())
	}
	fine, _ := resolution([]time.Duration{msf(2), msf(4), msf(6)}, []bool{true, true, true}, nil, 0, msf(7))
	if err := fine.Err(); err != nil {
		t.Fatalf("gaps of 2 ms: %v", err)
	}
}

// fakeObserver runs the Observer's sampling loop over sample instead of
// netlink dumps.
func fakeObserver(t *testing.T, sample sampler) *Observer {
	t.Helper()
	o := newObserver(&net.IPNet{IP: net.IPv4(192, 0, 2, 10), Mask: net.CIDRMask(32, 32)}, []string{"d1", "d2"})
	o.start(sample, func() {})
	t.Cleanup(o.Stop)
	if err := o.WaitFor(func([]string) bool { return true }, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return o
}

// TestStalledSamplerFailsTheRun: a sampler that stalls once for longer
// than MaxGap while the address changes, as a starved process would, makes
// the window's Resolution fail, with the stall as its worst gap, even
// though nothing it did see was an overlap. The same stall while nothing
// changed is reported and passes.
func TestStalledSamplerFailsTheRun(t *testing.T) {
	for _, moved := range []bool{true, false} {
		stalledSampler(t, moved)
	}
}

func stalledSampler(t *testing.T, moved bool) {
	stall := 5 * MaxGap
	var n atomic.Int64
	o := fakeObserver(t, func() (map[string]bool, int, moves, error) {
		switch n.Add(1) {
		case 20:
			<-time.After(stall) // the planted fault: one sample that takes this long
		case 21:
			if moved {
				// The events the next sample drains: the address went
				// and came back during the stall.
				return map[string]bool{"d1": true, "d2": false}, 0, moves{1, 1}, nil
			}
		}
		return map[string]bool{"d1": true, "d2": false}, 0, moves{}, nil
	})
	from := time.Now()
	if err := o.waitSample(from.Add(stall), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	res := o.Resolution(from, time.Now())
	if res.WorstGap < stall {
		t.Fatalf("worst gap %s, want the planted stall of %s or more (%s)", res.WorstGap, stall, res)
	}
	if err := res.Err(); moved && err == nil {
		t.Fatalf("a run with a %s stall across a change passed: %s", res.WorstGap, res)
	} else if !moved && err != nil {
		t.Fatalf("a run with a %s stall and no change failed: %v", res.WorstGap, err)
	}
	if res.GapOpenerTook < stall {
		t.Fatalf("the stalled sample's own time is %s, want the planted %s or more: the error would blame the scheduler, not the dump", res.GapOpenerTook, stall)
	}
	if total, _ := o.OverlapBetween(from, time.Now()); total != 0 {
		t.Fatalf("overlap %s from a sampler that saw one holder", total)
	}
}

// TestFailedDumpsAreCountedAndWidenTheGap: dumps that fail are counted,
// and their samples are not complete, so a run of failures is a gap that
// fails the run although the sampler kept its pace.
func TestFailedDumpsAreCountedAndWidenTheGap(t *testing.T) {
	var n atomic.Int64
	var failing atomic.Bool
	o := fakeObserver(t, func() (map[string]bool, int, moves, error) {
		n.Add(1)
		if failing.Load() {
			// d2's dumps fail while its address events say it changed.
			return map[string]bool{"d1": true}, 1, moves{1, 1}, errors.New("d2: planted dump failure")
		}
		return map[string]bool{"d1": true, "d2": false}, 0, moves{}, nil
	})
	from := time.Now()
	failing.Store(true)
	if err := o.waitSample(from.Add(3*MaxGap), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	failing.Store(false)
	if err := o.waitSample(time.Now(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	res := o.Resolution(from, time.Now())
	_, failedSamples, _ := o.Stats()
	if res.FailedDumps == 0 || res.FailedDumps > failedSamples {
		t.Fatalf("failed dumps %d, the sampler failed %d samples of one dump each", res.FailedDumps, failedSamples)
	}
	if res.WorstGap < 3*MaxGap || res.Err() == nil {
		t.Fatalf("failures for %s left worst gap %s, err %v", 3*MaxGap, res.WorstGap, res.Err())
	}
}

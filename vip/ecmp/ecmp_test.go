package ecmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
)

// recorder is a speaker that records every call, and fails Announce of
// the prefixes in fail.
type recorder struct {
	mu    sync.Mutex
	calls []string
	fail  map[netip.Prefix]bool
}

func (r *recorder) rec(op string, p netip.Prefix) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, op+" "+p.String())
}

func (r *recorder) Announce(p netip.Prefix) error {
	r.mu.Lock()
	bad := r.fail[p]
	r.mu.Unlock()
	if bad {
		return errors.New("speaker refused")
	}
	r.rec("announce", p)
	return nil
}
func (r *recorder) Drain(p netip.Prefix) error    { r.rec("drain", p); return nil }
func (r *recorder) Withdraw(p netip.Prefix) error { r.rec("withdraw", p); return nil }

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

var (
	v50 = netip.MustParsePrefix("10.0.0.50/32")
	v51 = netip.MustParsePrefix("10.0.0.51/32")
	v6  = netip.MustParsePrefix("fd00::50/128")
)

func ok(vips ...netip.Prefix) Inputs {
	return Inputs{VIPs: vips, Ready: true, CaughtUp: true, KernelOK: true}
}

func TestDecideAnnouncesOnlyWhenEveryConditionHolds(t *testing.T) {
	all := ok(v51, v6, v50, v50)
	got, why := Decide(all)
	if want := []netip.Prefix{v50, v51, v6}; !slices.Equal(got, want) || why != "" {
		t.Fatalf("all conditions hold: got %v %q, want %v", got, why, want)
	}
	for _, c := range []struct {
		name string
		in   Inputs
		why  string
	}{
		{"not ready", Inputs{VIPs: all.VIPs, Ready: false, Reason: "link eth0 down", CaughtUp: true, KernelOK: true}, "not ready: link eth0 down"},
		{"behind", Inputs{VIPs: all.VIPs, Ready: true, CaughtUp: false, Lag: "applied 3 of 9", KernelOK: true}, "not caught up: applied 3 of 9"},
		{"kernel", Inputs{VIPs: all.VIPs, Ready: true, CaughtUp: true, KernelOK: false, Kernel: "2 operations failing"}, "kernel table: 2 operations failing"},
	} {
		got, why := Decide(c.in)
		if len(got) != 0 || why != c.why {
			t.Errorf("%s: got %v %q, want nothing and %q", c.name, got, why, c.why)
		}
	}
	if got, why := Decide(Inputs{}); got != nil || why != "" {
		t.Errorf("no ecmp VIP, not ready: got %v %q, want nothing and no reason", got, why)
	}
}

func newAnnouncer(in *Inputs) (*Announcer, *recorder, *bytes.Buffer) {
	var logs bytes.Buffer
	r := &recorder{fail: map[netip.Prefix]bool{}}
	a := &Announcer{Speaker: r, Inputs: func() Inputs { return *in }, Log: slog.New(slog.NewTextHandler(&logs, nil)), Node: "d1"}
	return a, r, &logs
}

func TestStepAnnouncesWithdrawsAndLogsEachDecision(t *testing.T) {
	in := ok(v50, v51)
	a, r, logs := newAnnouncer(&in)
	a.Step()
	if got := r.take(); !slices.Equal(got, []string{"announce 10.0.0.50/32", "announce 10.0.0.51/32"}) {
		t.Fatalf("first step: %v", got)
	}
	a.Step()
	if got := r.take(); len(got) != 0 {
		t.Fatalf("second step changed %v; want nothing", got)
	}
	// A VIP leaves the model: only it goes.
	in.VIPs = []netip.Prefix{v50}
	a.Step()
	if got := r.take(); !slices.Equal(got, []string{"withdraw 10.0.0.51/32"}) {
		t.Fatalf("VIP removed: %v", got)
	}
	if !strings.Contains(logs.String(), "no longer an ecmp VIP of the model") {
		t.Errorf("withdraw of a removed VIP logged without its reason:\n%s", logs)
	}
	// Not ready: everything goes, with the reason.
	in.Ready, in.Reason = false, "track script failing"
	a.Step()
	if got := r.take(); !slices.Equal(got, []string{"withdraw 10.0.0.50/32"}) {
		t.Fatalf("not ready: %v", got)
	}
	st := a.Status()
	if len(st.Announced) != 0 || st.Why != "not ready: track script failing" || st.Announcements != 2 || st.Withdrawals != 2 {
		t.Fatalf("status %+v", st)
	}
	if n := strings.Count(logs.String(), "ecmp VIPs not announced"); n != 1 {
		t.Errorf("the reason for announcing nothing logged %d times, want 1:\n%s", n, logs)
	}
	a.Step()
	if n := strings.Count(logs.String(), "ecmp VIPs not announced"); n != 1 {
		t.Errorf("an unchanged reason logged again (%d)", n)
	}
	in.Ready = true
	a.Step()
	if got := r.take(); !slices.Equal(got, []string{"announce 10.0.0.50/32"}) {
		t.Fatalf("ready again: %v", got)
	}
}

func TestStepRetriesAFailedAnnounce(t *testing.T) {
	in := ok(v50)
	a, r, _ := newAnnouncer(&in)
	r.fail[v50] = true
	if !a.Step() {
		t.Fatal("a refused announce was not reported for a retry")
	}
	if st := a.Status(); len(st.Announced) != 0 {
		t.Fatalf("refused prefix counted as announced: %+v", st)
	}
	r.fail[v50] = false
	if a.Step() {
		t.Fatal("retry reported failing")
	}
	if got := r.take(); !slices.Equal(got, []string{"announce 10.0.0.50/32"}) {
		t.Fatalf("retry: %v", got)
	}
}

func TestDrainWaitsForConnectionsThenWithdraws(t *testing.T) {
	in := ok(v50, v51)
	a, r, logs := newAnnouncer(&in)
	a.Step()
	r.take()
	conns := []int{5, 2, 0}
	calls := 0
	active := func() (Traffic, error) {
		n := conns[min(calls, len(conns)-1)]
		calls++
		return Traffic{Active: n, InPkts: uint64(calls)}, nil // still sending
	}
	start := time.Now()
	a.Drain(context.Background(), 10*time.Second, active)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("drain took %s with connections gone after 3 reads", took)
	}
	want := []string{"drain 10.0.0.50/32", "drain 10.0.0.51/32", "withdraw 10.0.0.50/32", "withdraw 10.0.0.51/32"}
	if got := r.take(); !slices.Equal(got, want) {
		t.Fatalf("drain: %v, want %v", got, want)
	}
	if calls != 3 {
		t.Errorf("active read %d times, want 3 (until 0)", calls)
	}
	// After a drain nothing announces again, whatever the inputs say.
	a.Step()
	if got := r.take(); len(got) != 0 {
		t.Fatalf("step after drain: %v", got)
	}
	if st := a.Status(); !st.Draining || len(st.Announced) != 0 {
		t.Fatalf("status after drain %+v", st)
	}
	if !strings.Contains(logs.String(), "no active connection left") {
		t.Errorf("drain end not logged with its reason:\n%s", logs)
	}
}

func TestDrainGivesUpAtTheTimeout(t *testing.T) {
	in := ok(v50)
	a, r, logs := newAnnouncer(&in)
	a.Step()
	r.take()
	start := time.Now()
	pkts := uint64(0)
	a.Drain(context.Background(), 300*time.Millisecond, func() (Traffic, error) { pkts += 3; return Traffic{Active: 7, InPkts: pkts}, nil })
	if took := time.Since(start); took < 300*time.Millisecond || took > 3*time.Second {
		t.Fatalf("drain took %s, want the 300ms timeout", took)
	}
	if got := r.take(); !slices.Equal(got, []string{"drain 10.0.0.50/32", "withdraw 10.0.0.50/32"}) {
		t.Fatalf("drain: %v", got)
	}
	if !strings.Contains(logs.String(), "active_connections=7") {
		t.Errorf("connections left at the timeout not logged:\n%s", logs)
	}
}

// TestDrainEndsWhenThePacketsStop: the router has moved the flows; the
// kernel still counts their connections active, but no packet comes.
func TestDrainEndsWhenThePacketsStop(t *testing.T) {
	in := ok(v50)
	a, r, logs := newAnnouncer(&in)
	a.DrainQuiet = 500 * time.Millisecond
	a.Step()
	r.take()
	calls := 0
	traffic := func() (Traffic, error) {
		calls++
		return Traffic{Active: 4, InPkts: uint64(100 + 10*min(calls, 3))}, nil // 3 reads with packets, then none
	}
	start := time.Now()
	a.Drain(context.Background(), 10*time.Second, traffic)
	took := time.Since(start)
	// The third read saw the last packets, about 400 ms in; quiet for
	// 500 ms after that.
	if took < 800*time.Millisecond || took > 5*time.Second {
		t.Fatalf("drain took %s, want about 0.9 s: 3 reads with packets, 200 ms apart, then 500 ms without", took)
	}
	if got := r.take(); !slices.Equal(got, []string{"drain 10.0.0.50/32", "withdraw 10.0.0.50/32"}) {
		t.Fatalf("drain: %v", got)
	}
	if !strings.Contains(logs.String(), "no packet for 500ms") || !strings.Contains(logs.String(), "active_connections=4") {
		t.Errorf("drain end not logged with its reason and the connections left:\n%s", logs)
	}
}

// TestDrainOutlastsTheKernelsCounterRefresh: the kernel's packet counters
// move only when its estimator refreshes them, every KernelStatsPeriod,
// however steadily the packets come. A flow still sending, read the way
// the kernel reports it (a step 100 ms after every second poll), must
// hold the drain until its timeout: a quiet window of one refresh period
// ended it at the first step that came after a poll.
func TestDrainOutlastsTheKernelsCounterRefresh(t *testing.T) {
	t.Parallel()
	in := ok(v50)
	a, r, logs := newAnnouncer(&in)
	a.Step()
	r.take()
	start := time.Now()
	traffic := func() (Traffic, error) {
		refreshes := (time.Since(start) - 100*time.Millisecond) / KernelStatsPeriod
		return Traffic{Active: 1, InPkts: uint64(1000 + 10*max(refreshes, 0))}, nil
	}
	const timeout = 3*KernelStatsPeriod + time.Second
	a.Drain(context.Background(), timeout, traffic)
	if took := time.Since(start); took < timeout {
		t.Fatalf("drain of a flow still sending ended after %s, before its %s timeout:\n%s", took, timeout, logs)
	}
	if !strings.Contains(logs.String(), "drain timeout "+timeout.String()+" passed") {
		t.Errorf("drain end not logged as the timeout:\n%s", logs)
	}
}

// TestDrainLogsAnUnreadableKernelOnce: a read that fails at every poll
// is one line, not five a second.
func TestDrainLogsAnUnreadableKernelOnce(t *testing.T) {
	in := ok(v50)
	a, r, logs := newAnnouncer(&in)
	a.Step()
	r.take()
	a.Drain(context.Background(), time.Second, func() (Traffic, error) { return Traffic{}, errors.New("netlink: no such device") })
	if n := strings.Count(logs.String(), "traffic unreadable"); n != 1 {
		t.Errorf("the unreadable kernel logged %d times in a 1 s drain, want once:\n%s", n, logs)
	}
}

func TestDrainWithNothingAnnouncedReturnsAtOnce(t *testing.T) {
	in := Inputs{VIPs: []netip.Prefix{v50}}
	a, r, _ := newAnnouncer(&in)
	a.Step()
	start := time.Now()
	a.Drain(context.Background(), time.Minute, nil)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("drain with nothing announced took %s", took)
	}
	if got := r.take(); len(got) != 0 {
		t.Fatalf("drain with nothing announced called %v", got)
	}
}

func TestRunStepsOnWakeAndStops(t *testing.T) {
	in := ok(v50)
	var mu sync.Mutex
	a, r, _ := newAnnouncer(&in)
	a.Inputs = func() Inputs { mu.Lock(); defer mu.Unlock(); return in }
	wake := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx, wake, time.Hour) }()
	waitCalls(t, r, "announce 10.0.0.50/32")
	mu.Lock()
	in.Ready = false
	mu.Unlock()
	wake <- struct{}{}
	waitCalls(t, r, "withdraw 10.0.0.50/32")
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestRunRechecksWithheldVIPs: a restarted node catches up without a
// wake at the end (the log's last entries are Raft's own); Run must look
// again by itself, and log the catch-up once.
func TestRunRechecksWithheldVIPs(t *testing.T) {
	var mu sync.Mutex
	applied := uint64(0)
	a, r, logs := newAnnouncer(nil)
	a.Inputs = func() Inputs {
		mu.Lock()
		defer mu.Unlock()
		in := ok(v50)
		if applied < 12 {
			in.CaughtUp, in.Lag = false, fmt.Sprintf("applied index %d, below the log it started with (12)", applied)
			applied += 4 // the state machine moves on; nobody wakes Run
		}
		return in
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx, make(chan struct{}), 50*time.Millisecond) }()
	waitCalls(t, r, "announce 10.0.0.50/32")
	cancel()
	<-done
	if n := strings.Count(logs.String(), "ecmp VIPs not announced"); n != 1 {
		t.Errorf("the catch-up logged %d times, want once:\n%s", n, logs)
	}
}

func waitCalls(t *testing.T, r *recorder, want ...string) {
	t.Helper()
	var got []string
	harness.Eventually(t, 5*time.Second, fmt.Sprintf("speaker calls %v", want), func() (bool, string) {
		got = append(got, r.take()...)
		return slices.Equal(got, want), fmt.Sprint(got)
	})
}

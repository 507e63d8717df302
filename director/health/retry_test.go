package health

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

func TestTrackerConfirming(t *testing.T) {
	tr := NewTracker(1, 3, fsm.HealthUp)
	if tr.Confirming() {
		t.Fatal("up, no failure: not confirming")
	}
	tr.Observe(false)
	tr.Observe(false)
	if !tr.Confirming() {
		t.Fatal("up, 2 of 3 failures: confirming")
	}
	if !tr.Observe(false) || tr.Confirming() {
		t.Fatalf("third failure: health %s, confirming %v; want down, not confirming", tr.Health, tr.Confirming())
	}
	tr.Observe(false)
	if tr.Confirming() {
		t.Fatal("down and failing: nothing to confirm, the interval applies")
	}
}

// probeTimes records when each check of one server ran and fails them
// while down is set.
type probeTimes struct {
	mu   sync.Mutex
	at   []time.Time
	ok   []bool
	down bool
}

func (p *probeTimes) probe(context.Context, netip.AddrPort) Outcome {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.at = append(p.at, time.Now())
	p.ok = append(p.ok, !p.down)
	if p.down {
		return Outcome{Detail: "connection refused"}
	}
	return Outcome{OK: true, Detail: "connected"}
}

func (p *probeTimes) set(down bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	return len(p.at)
}

func (p *probeTimes) since(i int) ([]time.Time, []bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.at[i:]...), append([]bool(nil), p.ok[i:]...)
}

// keepalived's retry and delay_before_retry: an up server's failure is
// retried after the retry delay, not the interval, and it goes down after
// Fall failures in a row; once down, it is checked at the interval again.
func TestRunnerRetriesAfterTheRetryDelay(t *testing.T) {
	const interval, retry = 800 * time.Millisecond, 30 * time.Millisecond
	for _, c := range []struct {
		name  string
		retry time.Duration
	}{{"retry_delay", retry}, {"without", 0}} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, 1, fsm.HealthCheck{Type: "tcp", IntervalMS: uint32(interval / time.Millisecond), TimeoutMS: 100,
				Rise: 1, Fall: 3, RetryDelayMS: uint32(c.retry / time.Millisecond)})
			p := &probeTimes{}
			r := &Runner{
				Build:  func(fsm.HealthCheck) (Probe, error) { return p.probe, nil },
				Commit: w.commit, Tick: 10 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { r.Run(ctx, w.changes, w.view); close(done) }()
			defer func() { cancel(); <-done }()
			eventually(t, "up", func() bool { return w.health("10.1.0.1:80") == fsm.HealthUp })
			from := p.set(true)
			eventually(t, "down", func() bool { return w.health("10.1.0.1:80") == fsm.HealthDown })
			eventually(t, "a check after the verdict", func() bool { at, _ := p.since(from); return len(at) >= 4 })
			at, ok := p.since(from)
			for i := range 4 {
				if ok[i] {
					t.Fatalf("check %d after the server went away passed", i)
				}
			}
			gaps := []time.Duration{at[1].Sub(at[0]), at[2].Sub(at[1]), at[3].Sub(at[2])}
			t.Logf("gaps between the failed checks: %v (interval %v, retry delay %v)", gaps, interval, c.retry)
			for i, g := range gaps[:2] {
				if c.retry > 0 && g > interval/2 {
					t.Errorf("retry %d came %v after the failure, want about the retry delay %v", i+1, g, c.retry)
				}
				if c.retry == 0 && g < interval*3/4 {
					t.Errorf("check %d came %v after the failure, want the interval %v", i+1, g, interval)
				}
			}
			// Down now: the next check waits the interval, as keepalived's
			// delay_loop after the retries are spent.
			if gaps[2] < interval*3/4 {
				t.Errorf("the first check of the down server came %v after the last failure, want the interval %v", gaps[2], interval)
			}
		})
	}
}

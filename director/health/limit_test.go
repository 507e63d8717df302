package health

import (
	"context"
	"math"
	"testing"
	"time"
)

func TestNextLimit(t *testing.T) {
	for _, tc := range []struct {
		limit     int
		p90       time.Duration
		saturated bool
		want      int
	}{
		{1024, time.Millisecond, true, 1024},     // at the ceiling
		{1024, -1, false, 1024},                  // nothing scheduled
		{1024, 50 * time.Millisecond, true, 768}, // short of CPU: a quarter off
		{768, 50 * time.Millisecond, false, 576}, // whether saturated or not
		{20, time.Second, true, minInFlight},     // never below the floor
		{minInFlight, time.Second, true, minInFlight},
		{100, schedTarget, true, 106},        // at the target: grow
		{100, time.Millisecond, false, 100},  // not saturated: no need to grow
		{16, time.Millisecond, true, 20},     // grows by at least 4
		{1020, time.Millisecond, true, 1024}, // up to the ceiling
	} {
		if got := nextLimit(tc.limit, 1024, tc.p90, tc.saturated); got != tc.want {
			t.Errorf("nextLimit(%d, 1024, %v, %v) = %d, want %d", tc.limit, tc.p90, tc.saturated, got, tc.want)
		}
	}
}

func TestQuantile(t *testing.T) {
	buckets := []float64{0, 0.001, 0.01, 0.1, math.Inf(1)}
	last := []uint64{5, 5, 0, 0}
	counts := []uint64{95, 5, 8, 2} // since last: 90 under 1 ms, 8 under 100 ms, 2 above
	if got := quantile(counts, last, buckets, 0.9); got != time.Millisecond {
		t.Errorf("p90 = %v, want 1ms", got)
	}
	if got := quantile(counts, last, buckets, 0.99); got != 100*time.Millisecond {
		t.Errorf("p99 = %v, want 100ms", got)
	}
	if got := quantile(counts, counts, buckets, 0.9); got != -1 {
		t.Errorf("nothing new: %v, want -1", got)
	}
	inf := []uint64{0, 0, 0, 10}
	if got := quantile(inf, nil, buckets, 0.9); got != 100*time.Millisecond {
		t.Errorf("in the +Inf bucket: %v, want its lower bound 100ms", got)
	}
	// The runtime's own histogram reads without error.
	if d := newSchedLatency().p90(); d < -1 {
		t.Errorf("runtime p90 %v", d)
	}
}

func TestLimiter(t *testing.T) {
	ctx := t.Context()
	l := newLimiter(minInFlight)
	for range minInFlight {
		if !l.acquire(ctx) {
			t.Fatal("acquire under the limit failed")
		}
	}
	// Full: waiters queue, first come first served.
	order := make(chan int, 3)
	for i := range 3 {
		go func() {
			if l.acquire(ctx) {
				order <- i
			}
		}()
		eventually(t, "waiters queued", func() bool { _, _, w := l.state(); return w == i+1 })
	}
	// A waiter that gives up leaves the queue.
	gone, cancel := context.WithCancel(ctx)
	done := make(chan bool)
	go func() { done <- l.acquire(gone) }()
	eventually(t, "waiters queued", func() bool { _, _, w := l.state(); return w == 4 })
	cancel()
	if <-done {
		t.Fatal("a canceled acquire succeeded")
	}
	for want := range 3 {
		l.release()
		if got := <-order; got != want {
			t.Fatalf("waiter %d served before waiter %d", got, want)
		}
	}
	if lim, in, w := l.state(); lim != minInFlight || in != minInFlight || w != 0 {
		t.Fatalf("state %d/%d/%d, want %d in flight, none waiting", lim, in, w, minInFlight)
	}
}

func TestLimiterShrinksAndGrows(t *testing.T) {
	ctx := t.Context()
	l := newLimiter(64)
	for range 64 {
		l.acquire(ctx)
	}
	if got := l.adjust(time.Second); got != 48 {
		t.Fatalf("shrunk to %d, want 48", got)
	}
	// 64 in flight over a limit of 48: releases free no slot until 47.
	granted := make(chan struct{})
	go func() { l.acquire(ctx); close(granted) }()
	eventually(t, "waiters queued", func() bool { _, _, w := l.state(); return w == 1 })
	for range 16 {
		l.release()
	}
	select {
	case <-granted:
		t.Fatal("granted while 48 were in flight under a limit of 48")
	default:
	}
	l.release()
	<-granted
	// Saturated and prompt: it grows, and a grown limit lets waiters in.
	if got := l.adjust(time.Millisecond); got != 52 {
		t.Fatalf("grew to %d, want 52", got)
	}
}

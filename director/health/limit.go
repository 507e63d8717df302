package health

import (
	"context"
	"runtime/metrics"
	"sync"
	"time"
)

// A director short of CPU must not start more checks than it can finish:
// every check then waits for the CPU between its steps, times out, and
// healthy real servers are marked down by the hundred (and with the
// quiescent outcome, a whole service drains). keepalived's single event
// loop has this backpressure by construction: a late loop starts checks
// late. Goroutines do not: a timer that fires starts its check at once and
// competes with the checks already running.
//
// So the checks in flight are bounded, and the bound follows how promptly
// this process gets the CPU: Go's scheduling latency (the time a goroutine
// waits between runnable and running). While its 90th percentile stays
// under the target and the bound is reached, the bound grows additively;
// when it passes the target, the bound shrinks by a quarter. Checks that
// wait start late, stretching their interval, as keepalived's do.

const (
	// schedTarget is the scheduling latency above which the limit
	// shrinks. A check is a handful of wake-ups (connect, write, read), so
	// at this latency each still finishes well inside a 500 ms timeout.
	schedTarget = 20 * time.Millisecond
	minInFlight = 16
)

// nextLimit is the control law: the new bound from the old one, the
// scheduling latency's 90th percentile over the last period (negative when
// nothing was scheduled) and whether the bound was reached in it.
func nextLimit(limit, ceiling int, p90 time.Duration, saturated bool) int {
	switch {
	case p90 > schedTarget:
		limit -= limit / 4
	case saturated:
		limit += max(limit/16, 4)
	}
	return min(ceiling, max(limit, minInFlight))
}

// limiter is a semaphore whose size may change; waiters are served first
// come, first served.
type limiter struct {
	mu        sync.Mutex
	limit     int
	max       int
	inFlight  int
	saturated bool // the limit was reached since the last adjust
	waiters   []chan struct{}
}

func newLimiter(ceiling int) *limiter {
	return &limiter{limit: ceiling, max: ceiling}
}

// acquire waits for a slot, or for ctx to end (false).
func (l *limiter) acquire(ctx context.Context) bool {
	l.mu.Lock()
	if l.inFlight < l.limit && len(l.waiters) == 0 {
		l.inFlight++
		l.saturated = l.saturated || l.inFlight == l.limit
		l.mu.Unlock()
		return true
	}
	l.saturated = true
	ch := make(chan struct{})
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, w := range l.waiters {
			if w == ch {
				l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
				return false
			}
		}
		// Granted meanwhile: hand the slot on.
		l.releaseLocked()
		return false
	}
}

func (l *limiter) release() {
	l.mu.Lock()
	l.releaseLocked()
	l.mu.Unlock()
}

func (l *limiter) releaseLocked() {
	l.inFlight--
	l.grantLocked()
}

// grantLocked hands free slots to waiters, oldest first.
func (l *limiter) grantLocked() {
	for l.inFlight < l.limit && len(l.waiters) > 0 {
		close(l.waiters[0])
		l.waiters = l.waiters[1:]
		l.inFlight++
	}
}

// adjust applies the control law and reports the new limit.
func (l *limiter) adjust(p90 time.Duration) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limit = nextLimit(l.limit, l.max, p90, l.saturated)
	l.saturated = l.inFlight >= l.limit
	l.grantLocked()
	return l.limit
}

func (l *limiter) state() (limit, inFlight, waiting int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit, l.inFlight, len(l.waiters)
}

// schedLatency reads the process's scheduling latency histogram; p90
// returns the 90th percentile of what was added since the last call.
type schedLatency struct {
	sample []metrics.Sample
	last   []uint64
}

const schedMetric = "/sched/latencies:seconds"

func newSchedLatency() *schedLatency {
	s := &schedLatency{sample: []metrics.Sample{{Name: schedMetric}}}
	s.p90()
	return s
}

func (s *schedLatency) p90() time.Duration {
	metrics.Read(s.sample)
	if s.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return -1 // not offered by this runtime: never shrink
	}
	h := s.sample[0].Value.Float64Histogram()
	d := quantile(h.Counts, s.last, h.Buckets, 0.9)
	s.last = append(s.last[:0], h.Counts...)
	return d
}

// quantile is the q-quantile of the counts added since last (the upper
// bound of the bucket it falls in), or -1 with none added. buckets holds
// the len(counts)+1 boundaries in seconds, the last one possibly +Inf.
func quantile(counts, last []uint64, buckets []float64, q float64) time.Duration {
	var total uint64
	delta := make([]uint64, len(counts))
	for i, c := range counts {
		if i < len(last) {
			c -= last[i]
		}
		delta[i] = c
		total += c
	}
	if total == 0 {
		return -1
	}
	rank := uint64(q*float64(total) + 0.5)
	var seen uint64
	for i, c := range delta {
		seen += c
		if seen >= rank && c > 0 {
			upper := buckets[i+1]
			if upper > 1e9 { // +Inf: the bucket's lower bound says enough
				upper = buckets[i]
			}
			return time.Duration(upper * float64(time.Second))
		}
	}
	return time.Duration(buckets[len(buckets)-1] * float64(time.Second))
}

package figures

import (
	"slices"
	"time"
)

// Spread is the least, the median and the most of xs (the median of an
// even count is the mean of the middle two); ok is false when xs is empty.
func Spread(xs []float64) (lo, median, hi float64, ok bool) {
	if len(xs) == 0 {
		return 0, 0, 0, false
	}
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	median = s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return s[0], median, s[n-1], true
}

// EffectiveInterval is the interval a checker actually kept, on average
// over its servers: the window over the checks each server got in it.
// Zero when nothing was answered (no interval was kept at all).
func EffectiveInterval(window time.Duration, servers int, answered uint64) time.Duration {
	if answered == 0 {
		return 0
	}
	return time.Duration(float64(window) * float64(servers) / float64(answered))
}

// Rung is one step of a rate sweep: the checks asked for, and what the
// checker did with them.
type Rung struct {
	Checks     int
	FalseDowns int           // healthy servers it marked down
	Interval   time.Duration // its effective interval (EffectiveInterval)
}

// Held says whether a rung kept up with the configured interval: no
// healthy server marked down, and an effective interval within slack of
// the configured one (a checker that schedules the next check an interval
// after the last one ended runs a little over it by design).
func (r Rung) Held(interval time.Duration, slack float64) bool {
	return r.FalseDowns == 0 && r.Interval > 0 && float64(r.Interval) <= float64(interval)*(1+slack)
}

// Sustainable is the most checks of the first rungs (in the order run,
// ascending) that all held; ok is false when the first did not. A rung
// that held above one that did not does not count: the sweep stops at the
// first that fails.
func Sustainable(rungs []Rung, interval time.Duration, slack float64) (checks int, ok bool) {
	for _, r := range rungs {
		if !r.Held(interval, slack) {
			break
		}
		checks, ok = r.Checks, true
	}
	return checks, ok
}

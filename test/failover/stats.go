package failover

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of vs:
// the smallest value such that at least p% of the values are at or below
// it. It is always one of the measured values, never an interpolation,
// which with 20 samples is the honest thing to report. Zero for no values.
func Percentile[T cmp.Ordered](vs []T, p float64) T {
	var zero T
	if len(vs) == 0 {
		return zero
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// Summary is what the benchmark prints for one series.
type Summary struct {
	N             int
	P50, P90, Max time.Duration
}

// Summarize computes a Summary with Percentile.
func Summarize(ds []time.Duration) Summary {
	return Summary{N: len(ds), P50: Percentile(ds, 50), P90: Percentile(ds, 90), Max: Percentile(ds, 100)}
}

// Ratio formats a/b with two decimals, or "n/a" when b is zero.
func Ratio(a, b time.Duration) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", float64(a)/float64(b))
}

// MS rounds to whole milliseconds for the NAME: VALUE lines.
func MS(d time.Duration) int64 { return d.Round(time.Millisecond).Milliseconds() }

// LongestOutage is the longest stretch of consecutive failed requests in
// rs (in the poller's order), from the start of the first to the end of
// the last: how long a client went without an answer.
func LongestOutage(rs []Result) time.Duration {
	var worst time.Duration
	var since time.Time
	for _, r := range rs {
		if r.OK {
			since = time.Time{}
			continue
		}
		if since.IsZero() {
			since = r.Start
		}
		worst = max(worst, r.End.Sub(since))
	}
	return worst
}

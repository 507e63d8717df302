package failover

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// MaxGap is the longest the Observer may go without a complete sample
// (every node's dump answered) across both an add and a delete of the
// address before a run's overlap figure means nothing: a stretch of two
// holders shorter than the gap could have come and gone unseen. Ten
// sample periods leave room for a scheduler's hiccups, not for a stalled
// sampler. A gap with only adds (or only deletes) cannot hide one: the
// holders only grew (or shrank) in it, so the most there were is what the
// sample after it (or before) saw. Such a gap is reported, and does not
// fail the run.
const MaxGap = 10 * SampleEvery

// Resolution is what the Observer achieved over a window, as opposed to
// what SampleEvery asks: the gaps between consecutive complete samples
// (the window's ends count as the ends of the first and last gap), how
// many complete samples it took, and how many node dumps failed.
type Resolution struct {
	Samples     int
	FailedDumps int
	MedianGap   time.Duration
	WorstGap    time.Duration
	// WorstMixedGap is the longest gap in which the address was both
	// added and deleted (on any nodes): the one that bounds what the
	// overlap figure can miss.
	WorstMixedGap time.Duration
	// WorstEnd is when the worst gap ended, to find what stalled the
	// sampler in the logs (zero from resolution, which has only offsets).
	WorstEnd time.Time
	// GapOpenerTook is how long the complete sample that opened the worst
	// gap spent in its dumps (zero if the window's start opened it).
	GapOpenerTook time.Duration
}

// String is the figure printed beside every overlap figure.
func (r Resolution) String() string {
	return fmt.Sprintf("worst_gap_ms: %d, worst_add_del_gap_ms: %d, median_gap_ms: %.1f, samples: %d, failed_dumps: %d", MS(r.WorstGap), MS(r.WorstMixedGap), float64(r.MedianGap)/float64(time.Millisecond), r.Samples, r.FailedDumps)
}

// Err is non-nil when the window was not observed finely enough for its
// overlap figure to be trusted: no complete sample at all, or a gap
// longer than MaxGap across both an add and a delete of the address.
func (r Resolution) Err() error {
	if r.Samples == 0 {
		return fmt.Errorf("observer: no complete sample in the window (%d failed dumps): the overlap figure measured nothing", r.FailedDumps)
	}
	if r.WorstMixedGap > MaxGap {
		return fmt.Errorf("observer: %s between two complete samples while the address was both added and deleted (the worst gap of all ended %s; its first sample's dumps took %s), more than %s (ten sample periods): an overlap shorter than that could have gone unseen (%s)", r.WorstMixedGap, r.WorstEnd.UTC().Format("15:04:05.000"), r.GapOpenerTook.Round(time.Microsecond), MaxGap, r)
	}
	return nil
}

// Merge sums two windows' resolutions: the worse worst gap, the larger
// median (a conservative summary), the counts added.
func (r Resolution) Merge(o Resolution) Resolution {
	m := Resolution{
		Samples:     r.Samples + o.Samples,
		FailedDumps: r.FailedDumps + o.FailedDumps,
		MedianGap:   max(r.MedianGap, o.MedianGap),
		WorstGap:    r.WorstGap, WorstEnd: r.WorstEnd, GapOpenerTook: r.GapOpenerTook,
		WorstMixedGap: max(r.WorstMixedGap, o.WorstMixedGap),
	}
	if o.WorstGap > r.WorstGap {
		m.WorstGap, m.WorstEnd, m.GapOpenerTook = o.WorstGap, o.WorstEnd, o.GapOpenerTook
	}
	return m
}

// resolution computes a window's Resolution, and when its worst gap
// ended, from the offsets (from one origin, ascending) of the complete
// samples and of the failed dumps, and whether the gap each complete
// sample ends saw the address both added and deleted (mixed[i]). from and
// to are offsets too; the last complete sample before from opens the
// first gap, so a stall across the window's start is seen, and to closes
// the last, so is one at its end: that gap counts as mixed unless the
// first complete sample after to says it was not (none yet: unknown, so
// mixed).
func resolution(complete []time.Duration, mixed []bool, failed []time.Duration, from, to time.Duration) (Resolution, time.Duration) {
	var r Resolution
	lo := sort.Search(len(complete), func(i int) bool { return complete[i] >= from })
	hi := sort.Search(len(complete), func(i int) bool { return complete[i] > to })
	r.Samples = hi - lo
	prev := from
	if lo > 0 {
		prev = complete[lo-1]
	}
	gaps := make([]time.Duration, 0, r.Samples+1)
	var worstEnd time.Duration
	for i, at := range append(complete[lo:hi:hi], to) {
		g := at - prev
		if g > r.WorstGap || len(gaps) == 0 {
			r.WorstGap, worstEnd = g, at
		}
		if k := lo + i; (k >= len(mixed) || mixed[k]) && g > r.WorstMixedGap {
			r.WorstMixedGap = g
		}
		gaps = append(gaps, g)
		prev = at
	}
	slices.Sort(gaps)
	r.MedianGap = gaps[len(gaps)/2]
	r.WorstGap = gaps[len(gaps)-1]
	flo := sort.Search(len(failed), func(i int) bool { return failed[i] >= from })
	fhi := sort.Search(len(failed), func(i int) bool { return failed[i] > to })
	r.FailedDumps = fhi - flo
	return r, worstEnd
}

package failover

import (
	"slices"
	"time"
)

// Interval is the half-open span [From, To). A zero To means "still open";
// the functions here close it at their window's end.
type Interval struct {
	From, To time.Time
}

// clip returns iv limited to [from, to), and false if nothing is left.
func (iv Interval) clip(from, to time.Time) (Interval, bool) {
	if iv.To.IsZero() || iv.To.After(to) {
		iv.To = to
	}
	if iv.From.Before(from) {
		iv.From = from
	}
	return iv, iv.From.Before(iv.To)
}

// subtract returns the parts of held not covered by any interval in minus.
// Both are clipped to [from, to) first.
func subtract(held, minus []Interval, from, to time.Time) []Interval {
	var cut []Interval
	for _, m := range minus {
		if c, ok := m.clip(from, to); ok {
			cut = append(cut, c)
		}
	}
	slices.SortFunc(cut, func(a, b Interval) int { return a.From.Compare(b.From) })
	var out []Interval
	for _, h := range held {
		h, ok := h.clip(from, to)
		if !ok {
			continue
		}
		for _, m := range cut {
			if !m.To.After(h.From) {
				continue
			}
			if !m.From.Before(h.To) {
				break
			}
			if m.From.After(h.From) {
				out = append(out, Interval{h.From, m.From})
			}
			h.From = m.To
			if !h.From.Before(h.To) {
				break
			}
		}
		if h.From.Before(h.To) {
			out = append(out, h)
		}
	}
	return out
}

// overlap returns how long, within [from, to), two or more nodes held the
// address at once while counted: held[node] are the node's presence
// intervals, uncounted[node] the spans during which it is not to be counted
// (crashed: the address is still configured but the node cannot answer).
// total sums every such stretch; worst is the longest single one. A node's
// own intervals must not overlap each other (the Observer's never do).
func overlap(held, uncounted map[string][]Interval, from, to time.Time) (total, worst time.Duration) {
	type event struct {
		at    time.Time
		delta int
	}
	var evs []event
	for node, ivs := range held {
		for _, iv := range subtract(ivs, uncounted[node], from, to) {
			evs = append(evs, event{iv.From, +1}, event{iv.To, -1})
		}
	}
	slices.SortFunc(evs, func(a, b event) int { return a.at.Compare(b.at) })
	var n int
	var stretchStart time.Time
	for i := 0; i < len(evs); {
		// Every change at one instant is one step: a hand-over that is
		// exactly back to back is no overlap, and a stretch in which one
		// partner leaves as another arrives stays one stretch.
		now, before := evs[i].at, n
		for ; i < len(evs) && evs[i].at.Equal(now); i++ {
			n += evs[i].delta
		}
		switch {
		case before < 2 && n >= 2:
			stretchStart = now
		case before >= 2 && n < 2:
			d := now.Sub(stretchStart)
			total += d
			worst = max(worst, d)
		}
	}
	return total, worst
}

// holdersAt returns the nodes whose intervals contain at, sorted.
func holdersAt(held map[string][]Interval, at time.Time) []string {
	var out []string
	for node, ivs := range held {
		for _, iv := range ivs {
			if !iv.From.After(at) && (iv.To.IsZero() || at.Before(iv.To)) {
				out = append(out, node)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// firstHeld returns at itself if an interval contains it, else the start
// of the first interval after it.
func firstHeld(ivs []Interval, after time.Time) (time.Time, bool) {
	var best time.Time
	for _, iv := range ivs {
		if !iv.From.After(after) && (iv.To.IsZero() || after.Before(iv.To)) {
			return after, true
		}
		if iv.From.After(after) && (best.IsZero() || iv.From.Before(best)) {
			best = iv.From
		}
	}
	return best, !best.IsZero()
}

package check

import "time"

// pace is the loop's bound on checks in flight: additive increase while
// the bound is reached and all is well, multiplicative decrease when the
// checks show the director or its network short of capacity, as TCP's
// congestion control does for a connection.
//
// The signal is not timeouts as such: a dead rack times out every check of
// its servers, and checking the others less often would help nobody. It
// is a timeout of a server that answered its last check (or has not been
// checked yet), or a window in which most answers took over half their
// timeout. A rack going dead gives one window of such timeouts, then none
// (its checks keep timing out, which is not news); an overloaded director
// gives them window after window, until it starts few enough checks to see
// them through.
//
// It starts as TCP does, slowly: from the floor, doubling each window in
// which the bound held checks back, until the first bad news. A leader
// that takes over thousands of checks, or a director that cannot see
// through as many as it was asked, would otherwise start them all at once
// and time every one of them out; and when none has ever answered,
// overload looks like a dead rack, so later timeouts are no news and the
// bound would never come down.
type pace struct {
	ceiling, bound int
	slowStart      bool // no bad news yet: the bound doubles
	windowEnd      time.Time
	saturated      bool // the bound held a check back in this window
	news           int  // timeouts of servers that were answering
	answered, slow int  // answers, and those over half their timeout
}

const (
	paceWindow = 200 * time.Millisecond
	paceFloor  = 16
	// paceSample: fewer answers than this in a window say nothing of
	// their latency.
	paceSample = 8
	// detailTimeout is a check's Detail when it ran out of time.
	detailTimeout = "timeout"
)

func newPace(ceiling int) pace {
	return pace{ceiling: ceiling, bound: min(paceFloor, ceiling), slowStart: true}
}

func (p *pace) limit() int { return p.bound }

// holding reports whether bad news has held the bound below the ceiling
// (not the slow start's growth).
func (p *pace) holding() bool { return !p.slowStart && p.bound < p.ceiling }

// observe takes one check's result: whether it timed out, whether the
// last one of the same check did, and its latency and timeout.
func (p *pace) observe(timedOut, lastTimedOut bool, latency, timeout time.Duration) {
	switch {
	case timedOut && !lastTimedOut:
		p.news++
	case !timedOut:
		p.answered++
		if latency > timeout/2 {
			p.slow++
		}
	}
}

// adjust ends the window when it is over (true): down by a quarter on bad
// news, up when the bound held checks back: doubled in the slow start, by
// a sixteenth (at least 4) after it.
func (p *pace) adjust(now time.Time) bool {
	if now.Before(p.windowEnd) {
		return false
	}
	switch {
	case p.news > 0 || (p.answered >= paceSample && p.slow*2 > p.answered):
		p.bound -= p.bound / 4
		p.slowStart = false
	case p.saturated && p.slowStart:
		p.bound *= 2
	case p.saturated:
		p.bound += max(p.bound/16, 4)
	}
	p.bound = min(p.ceiling, max(p.bound, paceFloor))
	p.windowEnd = now.Add(paceWindow)
	p.saturated, p.news, p.answered, p.slow = false, 0, 0, 0
	return true
}

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
type pace struct {
	ceiling, bound int
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
	return pace{ceiling: ceiling, bound: ceiling}
}

func (p *pace) limit() int { return p.bound }

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
// news, up by a sixteenth (at least 4) when the bound held checks back.
func (p *pace) adjust(now time.Time) bool {
	if now.Before(p.windowEnd) {
		return false
	}
	switch {
	case p.news > 0 || (p.answered >= paceSample && p.slow*2 > p.answered):
		p.bound -= p.bound / 4
	case p.saturated:
		p.bound += max(p.bound/16, 4)
	}
	p.bound = min(p.ceiling, max(p.bound, paceFloor))
	p.windowEnd = now.Add(paceWindow)
	p.saturated, p.news, p.answered, p.slow = false, 0, 0, 0
	return true
}

package check

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// How the loop waits: in epoll_wait, for the next deadline or due start,
// and no longer than keeps it inside the runtime's time slice.
const (
	// loopYield: how long the loop runs between yields to the scheduler.
	// The runtime preempts a goroutine that has not been through the
	// scheduler for 10 ms, by signal, even one in a system call (which
	// the signal interrupts), hands its processor to another thread and
	// resets its monitor to polling every 20 µs. A yield is not free
	// either: it wakes an idle processor's thread, which takes the
	// goroutine while this one sleeps (two thread switches, four futex
	// calls; in the lab VM 7% of the daemon's CPU went to yields every
	// 2 ms). So the loop yields once every loopYield, and ends a short
	// wait by the next yield: yields are loopYield, a millisecond of
	// rounding and a round's work apart, under the 10 ms.
	loopYield = 7 * time.Millisecond
	// loopLongWait: a wait at least this long (few checks, long
	// intervals) is not cut at the next yield. The runtime then takes
	// the processor back once during it, which costs less than waking
	// every loopYield to yield.
	loopLongWait = 50 * time.Millisecond
	// yieldEvery: within a round the loop looks at the clock every this
	// many starts or events (see yieldIfDue).
	yieldEvery = 8
)

// yieldIfDue yields to the scheduler when loopYield has passed since the
// last yield. The loop never blocks in the scheduler, only in system
// calls, so the runtime sees one goroutine running for ever: after 10 ms
// it preempts it by signal, or takes its processor away in a system call,
// and each time its monitor thread goes back to polling every 20 µs for a
// while. A yield costs less (see loopYield). The loop asks once a round,
// and within a round every yieldEvery starts or events: under emulation
// a start (socket, connect, epoll_ctl) costs up to a millisecond, and a
// round of maxStartsPerRound of them ran long past 10 ms. In the lab VM at
// 500 checks a second (perf stat, 13 s) the daemon took 619 preemption
// signals and its monitor slept 11,183 times; with the yields within
// rounds, 217 and 6,298.
func (l *Loop) yieldIfDue(now time.Time) {
	if now.Sub(l.yielded) >= loopYield {
		runtime.Gosched()
		l.yielded = now
	}
}

// wait waits up to msec (-1: without end) for events of the epoll set.
func (l *Loop) wait(msec int) (int, error) {
	return unix.EpollWait(l.epfd, l.events, msec)
}

// waitMS is how long epoll may wait: until the next deadline or due
// start, and when that is near, no later than the next yield.
func (l *Loop) waitMS(now time.Time, behind bool, yield time.Time) int {
	if behind {
		return 0
	}
	var next time.Time
	if len(l.deadlines) > 0 {
		next = l.deadlines[0].at
	}
	if len(l.starts) > 0 && l.inFlight < l.pace.limit() && (next.IsZero() || l.starts[0].at.Before(next)) {
		next = l.starts[0].at
	}
	if next.IsZero() {
		return -1
	}
	if yield.Before(next) && next.Sub(now) < loopLongWait {
		next = yield
	}
	d := next.Sub(now)
	if d <= 0 {
		return 0
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

package check

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Loop runs plain TCP and HTTP checks, each on its own schedule, on one
// goroutine around one epoll set: keepalived's checker design. A check
// there costs its socket's system calls and little else; run on its own
// goroutine with Go's timers, deadlines and netpoller, the same check cost
// a director several times keepalived's CPU (make bench-health), most of
// it in the runtime parking and waking goroutines. HTTPS, DNS, UDP, ICMP
// and exec checks stay on goroutines (Checker.Check).
//
// The loop paces itself: it bounds the checks in flight, and shrinks the
// bound when checks of servers that were answering start timing out or
// answering late (see pace.go), so that a director (or a network) short of
// capacity starts checks late rather than more than it can see through;
// otherwise every check times out and every healthy server is marked down.
type Loop struct {
	epfd, wake int // the epoll set; an eventfd that wakes the loop
	nextID     atomic.Uint64

	mu     sync.Mutex
	inbox  []loopMsg
	closed bool
	exited chan struct{}

	// Owned by the loop's goroutine.
	tasks     map[uint64]*task
	byFD      []*task  // the task using each socket
	starts    taskHeap // idle tasks, by next start
	deadlines taskHeap // tasks in flight, by deadline
	events    []unix.EpollEvent
	inFlight  int
	spare     [4][]int  // disconnected sockets to connect again, by family and kind (loopspare_linux.go)
	yielded   time.Time // the loop's last yield to the scheduler
	pace      pace
	bound     atomic.Int64 // pace's bound, for Throttle
	opened    atomic.Int64 // sockets opened, for the tests of their reuse
}

const (
	// startSlack: a round starts every check due this soon, so that a
	// loop with thousands of checks wakes every few tens of milliseconds,
	// not for each, and the answers to a round's checks come together: a
	// wake-up, a context switch and a pass through the loop serve several.
	// In the lab VM at 500 checks a second the loop took a sixth less CPU
	// per check with 20 ms than with 5 ms (make bench-health).
	startSlack = 20 * time.Millisecond
	// earlyShare: a check starts at most this share of its interval
	// early, so that it keeps 98% of its interval or more however short.
	earlyShare = 50
	// maxStartsPerRound bounds the checks a round starts: the answers to
	// those in flight are read first, however late the loop is.
	maxStartsPerRound = 256
	// maxLoopConns bounds the sockets open at once: the pace's ceiling.
	maxLoopConns = 4096
)

type loopMsg struct {
	add    *task
	remove uint64
}

type taskState uint8

const (
	idle taskState = iota
	connecting
	writing
	reading
)

type task struct {
	id       uint64
	http     *httpChecker // nil: connect only
	req      []byte
	sa       unix.Sockaddr
	family   int
	opts     sockOpts      // source, source port, fwmark
	local    unix.Sockaddr // bound before connect; nil: the kernel's choice
	interval time.Duration
	timeout  time.Duration
	done     func(Result) time.Duration

	at           time.Time // next start (idle) or deadline (in flight): the heap key
	index        int       // in its heap
	state        taskState
	fd           int
	begun        time.Time
	wrote        int
	resp         response
	head         *[]byte // pooled buffers of resp
	body         *[]byte
	lat          time.Duration // once judged
	drain        bool          // judged; waiting for the server's close
	lastTimedOut bool          // the last check timed out; false before the first
}

// NewLoop starts a loop and its one goroutine. Whoever calls it owns the
// loop: stop every user first (the health Runner's Stop), then Close,
// which returns once that goroutine has exited.
func NewLoop() (*Loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("check loop: epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("check loop: eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("check loop: epoll_ctl: %w", err)
	}
	l := &Loop{epfd: epfd, wake: wake, exited: make(chan struct{}), tasks: map[uint64]*task{},
		events: make([]unix.EpollEvent, 256), pace: newPace(maxLoopConns)}
	l.storeBound()
	go l.run()
	return l, nil
}

// Add schedules checker c against target every interval, the first in
// first; done gets each result, on the loop's goroutine (it must not
// block), and returns when the next check starts: after that long from
// now when positive (a retry sooner than the interval), else an interval
// after this one began. ok is false when c cannot run on the loop (it is not a plain
// TCP or HTTP check), and the caller runs it on a goroutine. stop ends the
// checks; a result may still come until the loop has seen the stop, which
// the caller must tolerate.
func (l *Loop) Add(c Checker, target netip.AddrPort, interval, timeout, first time.Duration, done func(Result) time.Duration) (stop func(), ok bool) {
	t := &task{interval: interval, timeout: timeout, done: done, fd: -1, index: -1}
	switch c := c.(type) {
	case tcpChecker:
		t.opts = c.opts
	case *httpChecker:
		if c.tls != nil {
			return nil, false
		}
		t.http, t.req, t.opts = c, c.request(target).raw, c.opts
	default:
		return nil, false
	}
	if t.opts.family(target) != nil {
		return nil, false // the checker's own Check says why
	}
	addr := target.Addr().Unmap()
	switch {
	case addr.Is4():
		t.family, t.sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(target.Port()), Addr: addr.As4()}
	case addr.Is6() && addr.Zone() == "":
		t.family, t.sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(target.Port()), Addr: addr.As16()}
	default:
		return nil, false
	}
	t.local = t.opts.sockaddr(t.family == unix.AF_INET)
	t.id = l.nextID.Add(1)
	t.at = time.Now().Add(first)
	if !l.send(loopMsg{add: t}) {
		return nil, false
	}
	var once sync.Once
	return func() { once.Do(func() { l.send(loopMsg{remove: t.id}) }) }, true
}

// Throttle is the bound on checks in flight and the most it may be; below
// the most, the loop is holding checks back after bad news (see pace). A
// bound still in its slow start is reported as the most: it holds back
// nothing the checks have shown they cannot see through.
func (l *Loop) Throttle() (limit, ceiling int) {
	return int(l.bound.Load()), maxLoopConns
}

// storeBound publishes the bound for Throttle.
func (l *Loop) storeBound() {
	if l.pace.holding() {
		l.bound.Store(int64(l.pace.limit()))
	} else {
		l.bound.Store(maxLoopConns)
	}
}

// Close stops the loop and closes its sockets, and returns once the
// loop's goroutine has exited: a result being delivered when Close is
// called has been delivered, and none is after it returns. Later calls
// return at once.
func (l *Loop) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.exited
		return
	}
	l.closed = true
	l.mu.Unlock()
	l.poke()
	<-l.exited
}

func (l *Loop) send(m loopMsg) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	first := len(l.inbox) == 0
	l.inbox = append(l.inbox, m)
	l.mu.Unlock()
	if first {
		l.poke()
	}
	return true
}

func (l *Loop) poke() {
	one := [8]byte{1}
	unix.Write(l.wake, one[:]) // EAGAIN: the counter is full, so it is awake anyway
}

func (l *Loop) run() {
	defer close(l.exited)
	defer l.shutdown()
	for {
		now := time.Now()
		l.yieldIfDue(now)
		if l.pace.adjust(now) {
			l.storeBound()
		}
		if len(l.deadlines) > 0 && !l.deadlines[0].at.After(now) {
			// Before anything is timed out, what came while the loop did
			// not run: on a host short of CPU the loop may be scheduled
			// seconds late, and an answer already in its socket is no
			// fault of the server's.
			n, err := l.wait(0)
			if err == nil && !l.handle(n, now) {
				return
			}
		}
		l.expire(now)
		behind := l.startDue(now)
		n, err := l.wait(l.waitMS(now, behind, l.yielded.Add(loopYield)))
		if err != nil && !errors.Is(err, unix.EINTR) {
			// Not expected of a valid epoll set; do not spin on it.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !l.handle(n, time.Now()) {
			return
		}
	}
}

// handle steps the tasks of the n events a wait returned; false once the
// loop is closed.
func (l *Loop) handle(n int, now time.Time) bool {
	for i, ev := range l.events[:max(n, 0)] {
		if i%yieldEvery == yieldEvery-1 {
			l.yieldIfDue(time.Now())
		}
		if int(ev.Fd) == l.wake {
			if !l.receive() {
				return false
			}
			continue
		}
		if t := l.task(int(ev.Fd)); t != nil {
			l.step(t, ev.Events, now)
		}
	}
	return true
}

// receive applies the inbox; false once the loop is closed.
func (l *Loop) receive() bool {
	var buf [8]byte
	unix.Read(l.wake, buf[:])
	l.mu.Lock()
	msgs, closed := l.inbox, l.closed
	l.inbox = nil
	l.mu.Unlock()
	for _, m := range msgs {
		if m.add != nil {
			l.tasks[m.add.id] = m.add
			heap.Push(&l.starts, m.add)
			continue
		}
		if t := l.tasks[m.remove]; t != nil {
			delete(l.tasks, t.id)
			if t.state == idle {
				heap.Remove(&l.starts, t.index)
			} else {
				heap.Remove(&l.deadlines, t.index)
				l.hangUp(t, false)
			}
		}
	}
	return !closed
}

func (l *Loop) shutdown() {
	for _, t := range l.tasks {
		if t.state != idle {
			l.hangUp(t, false)
		}
	}
	l.closeSpare()
	unix.Close(l.epfd)
	unix.Close(l.wake)
}

// expire ends the checks whose deadline has passed.
func (l *Loop) expire(now time.Time) {
	for len(l.deadlines) > 0 && !l.deadlines[0].at.After(now) {
		t := l.deadlines[0]
		if t.drain {
			l.finish(t, now, true, Result{OK: t.resp.ok, Latency: t.lat, Detail: t.resp.detail})
			continue
		}
		l.finish(t, now, false, Result{Latency: now.Sub(t.begun), Detail: detailTimeout})
	}
}

// startDue starts the checks that are due; true when some due ones wait
// for a later round.
func (l *Loop) startDue(now time.Time) (behind bool) {
	until := now.Add(startSlack)
	for n := 0; len(l.starts) > 0 && l.starts[0].at.Before(until); n++ {
		if t := l.starts[0]; t.at.Sub(now) > t.interval/earlyShare {
			return false // its own due time wakes the loop
		}
		if l.inFlight >= l.pace.limit() {
			l.pace.saturated = true
			return false
		}
		if n == maxStartsPerRound {
			return true
		}
		if n%yieldEvery == yieldEvery-1 {
			l.yieldIfDue(time.Now())
		}
		l.start(heap.Pop(&l.starts).(*task), now)
	}
	return false
}

func (l *Loop) start(t *task, now time.Time) {
	t.begun, t.wrote, t.drain, t.lat = now, 0, false, 0
	fd, kept := l.takeSpare(t)
	if !kept {
		var err error
		fd, err = unix.Socket(t.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		l.opened.Add(1)
		if err != nil {
			l.again(t, now, Result{Detail: describe(context.Background(), fmt.Errorf("socket: %w", err))})
			return
		}
		if err := l.bind(t, fd); err != nil {
			unix.Close(fd)
			l.again(t, now, Result{Detail: describeSocket(context.Background(), t.opts, err)})
			return
		}
		if t.http != nil {
			deferAck(fd)
		}
	}
	if err := unix.Connect(fd, t.sa); err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		l.again(t, now, Result{Latency: time.Since(now), Detail: describe(context.Background(), err)})
		return
	}
	if !kept {
		// Edge-triggered, both ways, once for the socket's life: a kept
		// socket stays in the set, and its close removes it.
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(fd)
			l.again(t, now, Result{Detail: describe(context.Background(), fmt.Errorf("epoll_ctl: %w", err))})
			return
		}
	}
	t.fd, t.state = fd, connecting
	for fd >= len(l.byFD) {
		l.byFD = append(l.byFD, make([]*task, len(l.byFD)+64)...)
	}
	l.byFD[fd] = t
	l.inFlight++
	t.at = now.Add(t.timeout)
	heap.Push(&l.deadlines, t)
}

// bind applies the check's socket settings before its connect.
func (l *Loop) bind(t *task, fd int) error {
	if t.opts.zero() {
		return nil
	}
	if err := t.opts.apply(fd); err != nil {
		return err
	}
	if t.local != nil {
		if err := unix.Bind(fd, t.local); err != nil {
			return fmt.Errorf("bind: %w", err)
		}
	}
	return nil
}

func (l *Loop) task(fd int) *task {
	if fd < 0 || fd >= len(l.byFD) {
		return nil
	}
	return l.byFD[fd]
}

// step moves a check on after its socket's events.
func (l *Loop) step(t *task, events uint32, now time.Time) {
	if t.state == connecting {
		if events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			l.finish(t, now, false, Result{Latency: now.Sub(t.begun), Detail: describe(context.Background(), soError(t.fd))})
			return
		}
		if events&unix.EPOLLOUT == 0 {
			return
		}
		if t.http == nil {
			l.finish(t, now, true, Result{OK: true, Latency: now.Sub(t.begun), Detail: "connected"})
			return
		}
		t.state = writing
		events &^= unix.EPOLLIN // nothing to read before the request
	}
	if t.state == writing {
		if events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		for t.wrote < len(t.req) {
			n, err := unix.Write(t.fd, t.req[t.wrote:])
			if err == unix.EAGAIN {
				return // the next EPOLLOUT edge
			}
			if err != nil {
				l.finish(t, now, false, Result{Latency: now.Sub(t.begun), Detail: describe(context.Background(), err)})
				return
			}
			t.wrote += n
		}
		t.state = reading
		t.head = headPool.Get().(*[]byte)
		var body []byte
		if t.http.body != nil {
			t.body = bufPool.Get().(*[]byte)
			body = *t.body
		}
		t.resp = t.http.newResponse(*t.head, body)
		if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return // the answer's edge is still to come
		}
	} else if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
		return // room to write, which a reader does not need
	}
	l.read(t, events, now)
}

// read reads what the socket holds, and stops short of the reads that
// would only say so: a short read has emptied it (the next arrival is a
// new edge), and when the event says the server has closed, the close is
// behind what was read. A check is then connect, write, read and the
// disconnect that keeps its socket (loopspare_linux.go); keepalived's
// makes 14 system calls.
func (l *Loop) read(t *task, events uint32, now time.Time) {
	p := &t.resp
	closed := events&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0
	for !p.done {
		if p.draining && closed {
			p.fed(0, io.EOF)
			break
		}
		space := p.space()
		m, err := unix.Read(t.fd, space)
		switch {
		case err == unix.EAGAIN:
			return
		case err == unix.EINTR:
			continue
		case err != nil:
			p.fed(0, err)
		case m == 0:
			p.fed(0, io.EOF)
		default:
			p.fed(m, nil)
			if !p.done && m < len(space) && closed && !p.draining {
				p.fed(0, io.EOF)
			}
		}
		if p.judged && t.lat == 0 {
			t.lat = max(now.Sub(t.begun), 1)
		}
		if p.draining && !t.drain {
			t.drain = true
			if d := now.Add(closeWait); d.Before(t.at) {
				t.at = d
				heap.Fix(&l.deadlines, t.index)
			}
		}
		if !p.done && err == nil && m > 0 && m < len(space) && !closed {
			return // emptied: wait for the next edge
		}
	}
	if p.err != nil {
		l.finish(t, now, false, Result{Latency: t.lat, Detail: p.detail + describe(context.Background(), p.err)})
		return
	}
	l.finish(t, now, true, Result{OK: p.ok, Latency: t.lat, Detail: p.detail})
}

// finish closes the check's socket (a reset when orderly: see reset),
// schedules its next start and delivers its result.
func (l *Loop) finish(t *task, now time.Time, orderly bool, r Result) {
	heap.Remove(&l.deadlines, t.index)
	l.hangUp(t, orderly)
	l.again(t, now, r)
}

func (l *Loop) again(t *task, now time.Time, r Result) {
	timedOut := r.Detail == detailTimeout
	l.pace.observe(timedOut, t.lastTimedOut, r.Latency, t.timeout)
	t.lastTimedOut = timedOut
	if next := t.done(r); next > 0 {
		t.at = now.Add(next)
	} else {
		t.at = t.begun.Add(t.interval)
	}
	if t.at.Before(now) {
		t.at = now
	}
	heap.Push(&l.starts, t)
}

// hangUp closes a check's socket, or keeps it disconnected for another
// (see keep), and returns its buffers.
func (l *Loop) hangUp(t *task, orderly bool) {
	switch {
	case orderly && l.keep(t):
	case orderly:
		unix.SetsockoptLinger(t.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		unix.Close(t.fd)
	default:
		unix.Close(t.fd)
	}
	l.byFD[t.fd] = nil
	l.inFlight--
	t.fd, t.state = -1, idle
	if t.head != nil {
		headPool.Put(t.head)
		t.head = nil
	}
	if t.body != nil {
		bufPool.Put(t.body)
		t.body = nil
	}
	t.resp = response{}
}

func soError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if v == 0 {
		return io.ErrUnexpectedEOF // hung up without an error: closed
	}
	return unix.Errno(v)
}

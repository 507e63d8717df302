package check

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
)

// onLoop, when set, makes check run its checks on this loop.
var onLoop *Loop

// loopCheck runs one check of ch on l and waits for its result.
func loopCheck(t *testing.T, l *Loop, ch Checker, target netip.AddrPort, timeout time.Duration) Result {
	t.Helper()
	got := make(chan Result, 1)
	stop, ok := l.Add(ch, target, time.Hour, timeout, 0, every(func(r Result) {
		select {
		case got <- r:
		default:
		}
	}))
	if !ok {
		t.Fatalf("checker %T cannot run on the loop", ch)
	}
	defer stop()
	select {
	case r := <-got:
		return r
	case <-time.After(timeout + 5*time.Second):
		t.Fatalf("no result from the loop %v after its timeout of %v", 5*time.Second, timeout)
	}
	return Result{}
}

func newLoop(t *testing.T) *Loop {
	t.Helper()
	l, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// The TCP and HTTP checkers' tests, each check run on the loop instead of
// Check: the loop must judge every answer as Check does.
func TestLoopPassesTheCheckersTests(t *testing.T) {
	onLoop = newLoop(t)
	defer func() { onLoop = nil }()
	for name, test := range map[string]func(*testing.T){
		"TCP":                        TestTCP,
		"HTTP":                       TestHTTP,
		"HTTPRequest":                TestHTTPRequest,
		"HTTPTimeout":                TestHTTPTimeout,
		"HTTPClosedPort":             TestHTTPClosedPort,
		"HTTPNewConnectionEachCheck": TestHTTPNewConnectionEachCheck,
		"HTTPResponsesAsSent":        TestHTTPResponsesAsSent,
		"HTTPServerClosesFirst":      TestHTTPServerClosesFirst,
		"HTTPDigest":                 TestHTTPDigest,
		"CheckSocket":                TestCheckSocket,
	} {
		t.Run(name, test)
	}
}

func TestLoopRefusesWhatItCannotRun(t *testing.T) {
	l := newLoop(t)
	target := netip.MustParseAddrPort("127.0.0.1:80")
	e := newExecEnv(t)
	for _, c := range []fsm.HealthCheck{
		{Type: "https", Insecure: true},
		{Type: "udp", Send: "ping"},
		e.sh(t, "true"),
	} {
		if _, ok := l.Add(e.build(t, c), target, time.Second, time.Second, 0, every(func(Result) {})); ok {
			t.Errorf("the loop took a %s check", c.Type)
		}
	}
}

// Many checks on one loop, each on its own interval: every one runs about
// as often as its interval says, and a stopped one stops.
func TestLoopSchedulesManyChecks(t *testing.T) {
	l := newLoop(t)
	_, target := newHTTPServer(t, false)
	tcp := listenTCP(t)
	go func() {
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	const n = 200
	var results [n]atomic.Int64
	var failed atomic.Int64
	stops := make([]func(), n)
	interval := 50 * time.Millisecond
	for i := range n {
		ch, at := build(t, fsm.HealthCheck{Type: "http", Body: "healthy"}), target
		if i%2 == 1 {
			ch, at = build(t, fsm.HealthCheck{Type: "tcp"}), addrPort(t, tcp.Addr())
		}
		first := time.Duration(i) * interval / n
		stop, ok := l.Add(ch, at, interval, 2*time.Second, first, every(func(r Result) {
			if !r.OK {
				failed.Add(1)
			}
			results[i].Add(1)
		}))
		if !ok {
			t.Fatal("not on the loop")
		}
		stops[i] = stop
	}
	harness.Eventually(t, 20*time.Second, "every check run 5 times", func() (bool, string) {
		for i := range results {
			if results[i].Load() < 5 {
				return false, fmt.Sprintf("check %d ran %d times", i, results[i].Load())
			}
		}
		return true, ""
	})
	if f := failed.Load(); f != 0 {
		t.Errorf("%d checks failed against healthy servers", f)
	}
	var wg sync.WaitGroup
	for _, stop := range stops[:n/2] {
		wg.Go(stop)
	}
	wg.Wait()
	// Once a stopped check's count holds still for many intervals, it has
	// stopped; the others go on.
	before := make([]int64, n)
	for i := range results {
		before[i] = results[i].Load()
	}
	harness.Eventually(t, 20*time.Second, "the running checks run 10 times more", func() (bool, string) {
		for i := n / 2; i < n; i++ {
			if results[i].Load() < before[i]+10 {
				return false, fmt.Sprintf("check %d ran %d times more", i, results[i].Load()-before[i])
			}
		}
		return true, ""
	})
	for i := range n / 2 {
		if d := results[i].Load() - before[i]; d > 1 { // one may have been in flight
			t.Errorf("check %d ran %d times after its stop", i, d)
		}
	}
}

// A check is never in flight twice: a server slower than the interval
// gets a new connection only once the last one's result is in.
func TestLoopOneCheckInFlightAtOnce(t *testing.T) {
	l := newLoop(t)
	ln := listenTCP(t)
	var accepted, results, overlaps atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if accepted.Add(1) > results.Load()+1 {
				overlaps.Add(1)
			}
			go func() {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				c.Read(make([]byte, 1024)) // the request
				c.Read(make([]byte, 1))    // then hold until the checker hangs up
			}()
		}
	}()
	var timeouts atomic.Int64
	stop, _ := l.Add(build(t, fsm.HealthCheck{Type: "http"}), addrPort(t, ln.Addr()), 10*time.Millisecond, 100*time.Millisecond, 0, every(func(r Result) {
		if r.Detail == "timeout" {
			timeouts.Add(1)
		}
		results.Add(1)
	}))
	defer stop()
	harness.Eventually(t, 10*time.Second, "5 timeouts", func() (bool, string) { return timeouts.Load() >= 5, "" })
	if n := overlaps.Load(); n > 0 {
		t.Fatalf("%d connections made while the check's last one was in flight (%d accepted, %d results)", n, accepted.Load(), results.Load())
	}
}

// Close ends the checks in flight and returns; a closed loop takes no
// more.
func TestLoopClose(t *testing.T) {
	l, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	ln := listenTCP(t) // never accepts: the checks stay in flight
	var results atomic.Int64
	for range 10 {
		l.Add(build(t, fsm.HealthCheck{Type: "http"}), addrPort(t, ln.Addr()), time.Millisecond, time.Hour, 0, every(func(Result) { results.Add(1) }))
	}
	l.Close()
	l.Close() // twice is harmless
	if _, ok := l.Add(tcpChecker{}, addrPort(t, ln.Addr()), time.Second, time.Second, 0, every(func(Result) {})); ok {
		t.Fatal("a closed loop took a check")
	}
	if n := results.Load(); n != 0 {
		t.Fatalf("%d results from checks that could not finish", n)
	}
}

// Close returns only once the loop's goroutine has exited: a result it is
// delivering when Close is called has been delivered by then.
func TestLoopCloseAwaitsItsGoroutine(t *testing.T) {
	l, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	ln := listenTCP(t) // the kernel completes the handshake: the check passes
	entered, release := make(chan struct{}), make(chan struct{})
	var calls, finished atomic.Int64
	l.Add(tcpChecker{}, addrPort(t, ln.Addr()), time.Hour, time.Second, 0, every(func(Result) {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
		finished.Add(1)
	}))
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no result from the loop")
	}
	closed := make(chan int64)
	go func() {
		l.Close()
		closed <- finished.Load()
	}()
	close(release)
	if n := <-closed; n != 1 {
		t.Fatalf("Close returned while the loop was still delivering a result (%d finished)", n)
	}
}

// Waiting with a far deadline, the loop wakes for the answer, not for the
// deadline; and for a start, with nothing in flight. Many checks at a
// short interval against a server answering at once: none may time out
// (a lost wake would leave a check to its deadline).
func TestLoopWakesForAnswersAndStarts(t *testing.T) {
	l := newLoop(t)
	_, target := newHTTPServer(t, false)
	const n = 50
	var results, timeouts atomic.Int64
	for i := range n {
		stop, ok := l.Add(build(t, fsm.HealthCheck{Type: "http", Body: "healthy"}), target, 20*time.Millisecond, 10*time.Second,
			time.Duration(i)*time.Millisecond, every(func(r Result) {
				if !r.OK {
					timeouts.Add(1)
				}
				results.Add(1)
			}))
		if !ok {
			t.Fatal("not on the loop")
		}
		t.Cleanup(stop)
	}
	start := time.Now()
	harness.Eventually(t, 20*time.Second, "20 results per check", func() (bool, string) {
		return results.Load() >= 20*n, fmt.Sprintf("%d results", results.Load())
	})
	// 20 rounds at 20 ms, with a 10 s timeout: a lost wake costs 10 s.
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("%d results took %s", results.Load(), d)
	}
	if f := timeouts.Load(); f != 0 {
		t.Errorf("%d checks failed against a healthy server", f)
	}
}

// every adapts a result callback to Loop.Add's: each next check an
// interval after the last began.
func every(f func(Result)) func(Result) time.Duration {
	return func(r Result) time.Duration { f(r); return 0 }
}

// TestLoopReadsWhatCameWhileItDidNotRun: an answer that reached the
// socket in time while the loop was not scheduled (a host short of CPU;
// here another check's callback holds the loop's goroutine past the first
// check's deadline) is read before anything is timed out.
func TestLoopReadsWhatCameWhileItDidNotRun(t *testing.T) {
	l := newLoop(t)
	slow, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	go func() {
		for {
			c, err := slow.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				time.Sleep(50 * time.Millisecond) // answers after 50 ms, in time for a 200 ms timeout
				fmt.Fprint(c, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
			}()
		}
	}()
	fast, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	got := make(chan Result, 1)
	stopB, ok := l.Add(build(t, fsm.HealthCheck{Type: "http"}), netip.MustParseAddrPort(slow.Addr().String()), time.Hour, 200*time.Millisecond, 0,
		every(func(r Result) {
			select {
			case got <- r:
			default:
			}
		}))
	if !ok {
		t.Fatal("not on the loop")
	}
	defer stopB()
	var once sync.Once
	stopA, ok := l.Add(build(t, fsm.HealthCheck{Type: "tcp"}), netip.MustParseAddrPort(fast.Addr().String()), time.Hour, time.Second, 10*time.Millisecond,
		every(func(Result) {
			// The stall: the loop's goroutine is held well past the first
			// check's deadline (a callback must not block; this one
			// stands in for a host that does not run the loop).
			once.Do(func() { time.Sleep(500 * time.Millisecond) })
		}))
	if !ok {
		t.Fatal("not on the loop")
	}
	defer stopA()
	select {
	case r := <-got:
		if !r.OK {
			t.Fatalf("the answer that came during the stall was not read: %+v", r)
		}
		t.Logf("answered during the stall: %+v", r)
	case <-time.After(10 * time.Second):
		t.Fatal("no result")
	}
}

// The loop connects to IPv4 and IPv6 servers alike, and a closed port is
// refused, not timed out.
func TestLoopConnectsBothFamilies(t *testing.T) {
	l := newLoop(t)
	for _, addr := range []string{"127.0.0.1", "[::1]"} {
		ln, err := net.Listen("tcp", addr+":0")
		if err != nil {
			t.Fatal(err)
		}
		target := netip.MustParseAddrPort(ln.Addr().String())
		if r := loopCheck(t, l, build(t, fsm.HealthCheck{Type: "tcp"}), target, 2*time.Second); !r.OK {
			t.Errorf("%s: %+v, want connected", target, r)
		}
		ln.Close()
		if r := loopCheck(t, l, build(t, fsm.HealthCheck{Type: "tcp"}), target, 2*time.Second); r.OK || r.Detail == detailTimeout {
			t.Errorf("%s closed: %+v, want refused", target, r)
		}
	}
}

// A check's socket is disconnected and connected again by the next check,
// not closed and opened anew; the server still sees each connection end
// in a reset, and a check after the server has gone still fails. Sockets
// with a source option are opened for each check.
func TestLoopReusesItsSockets(t *testing.T) {
	l := newLoop(t)
	ln := listenTCP(t)
	var resets atomic.Int64
	acceptEach(ln, func(c net.Conn) {
		defer c.Close()
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte("HTTP/1.0 200 OK\r\n\r\n"))
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, syscall.ECONNRESET) {
			resets.Add(1)
		}
	})
	target := addrPort(t, ln.Addr())
	for _, tc := range []struct {
		name   string
		hc     fsm.HealthCheck
		reused bool
	}{
		{"plain", fsm.HealthCheck{Type: "http"}, true},
		{"source address", fsm.HealthCheck{Type: "http", Source: netip.MustParseAddr("127.0.0.1")}, false},
	} {
		const checks = 20
		opened0, resets0 := l.opened.Load(), resets.Load()
		var ok, failed atomic.Int64
		stop, _ := l.Add(build(t, tc.hc), target, 5*time.Millisecond, 2*time.Second, 0, every(func(r Result) {
			if r.OK {
				ok.Add(1)
			} else {
				failed.Add(1)
			}
		}))
		harness.Eventually(t, 10*time.Second, tc.name+": 20 answers", func() (bool, string) {
			return ok.Load()+failed.Load() >= checks, fmt.Sprintf("%d ok, %d failed", ok.Load(), failed.Load())
		})
		stop()
		opened := l.opened.Load() - opened0
		n := ok.Load() + failed.Load()
		if failed.Load() > 0 {
			t.Errorf("%s: %d of %d checks failed", tc.name, failed.Load(), n)
		}
		if tc.reused && opened > 1 {
			t.Errorf("%s: %d sockets opened for %d checks, want 1 connected again", tc.name, opened, n)
		}
		if !tc.reused && opened < checks {
			t.Errorf("%s: %d sockets opened for %d checks, want one each", tc.name, opened, n)
		}
		harness.Eventually(t, 5*time.Second, tc.name+": a reset for each answer", func() (bool, string) {
			return resets.Load()-resets0 >= checks, fmt.Sprintf("%d resets", resets.Load()-resets0)
		})
	}
	ln.Close()
	if r := loopCheck(t, l, build(t, fsm.HealthCheck{Type: "http"}), target, 2*time.Second); r.OK || r.Detail == detailTimeout {
		t.Errorf("server gone: %+v, want refused", r)
	}
}

// A round starts the checks due within startSlack, but none more than a
// fiftieth of its interval early: a check every 40 ms among checks every
// 3 ms (a round every few milliseconds) keeps 40 ms between its starts,
// not the 20 it would get from the slack alone.
func TestLoopStartsAtMostAFiftiethOfTheIntervalEarly(t *testing.T) {
	l := newLoop(t)
	busy := listenTCP(t)
	acceptEach(busy, func(c net.Conn) { c.Close() })
	measured := listenTCP(t)
	var mu sync.Mutex
	var starts []time.Time
	acceptEach(measured, func(c net.Conn) {
		at := time.Now()
		c.Close()
		mu.Lock()
		starts = append(starts, at)
		mu.Unlock()
	})
	tcp := build(t, fsm.HealthCheck{Type: "tcp"})
	for i := range 20 {
		stop, _ := l.Add(tcp, addrPort(t, busy.Addr()), 3*time.Millisecond, time.Second, time.Duration(i)*150*time.Microsecond, every(func(Result) {}))
		defer stop()
	}
	const interval = 40 * time.Millisecond
	stop, _ := l.Add(tcp, addrPort(t, measured.Addr()), interval, time.Second, 0, every(func(Result) {}))
	defer stop()
	const n = 41
	harness.Eventually(t, 10*time.Second, "41 starts of the 40 ms check", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(starts) >= n, fmt.Sprintf("%d", len(starts))
	})
	mu.Lock()
	defer mu.Unlock()
	gap := starts[n-1].Sub(starts[0]) / (n - 1)
	if floor := interval - interval/earlyShare - 2*time.Millisecond; gap < floor {
		t.Fatalf("the 40 ms check started every %v on average over %d starts, want %v or more", gap, n, floor)
	}
	t.Logf("the 40 ms check started every %v on average over %d starts", gap, n)
}

// An HTTP check's request carries the handshake's last ACK (deferAck):
// the server's socket has received the SYN and the request, and no bare
// ACK between them; the socket is connected again by later checks, and
// a socket opened for one check (a source address) does the same. A
// connect check keeps the whole handshake, on a socket of its own (not
// the HTTP checks' kept one): its server accepts it.
func TestLoopSendsTheRequestWithTheHandshakesACK(t *testing.T) {
	l := newLoop(t)
	ln := listenTCP(t)
	segs := make(chan uint32, 100)
	acceptEach(ln, func(c net.Conn) {
		defer c.Close()
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			return
		}
		raw, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			return
		}
		raw.Control(func(fd uintptr) {
			if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				segs <- info.Segs_in
			}
		})
		c.Write([]byte("HTTP/1.0 200 OK\r\n\r\n"))
	})
	target := addrPort(t, ln.Addr())
	opened0 := l.opened.Load()
	for i, c := range []struct {
		name string
		hc   fsm.HealthCheck
	}{
		{"a new socket", fsm.HealthCheck{Type: "http"}},
		{"the kept socket", fsm.HealthCheck{Type: "http"}},
		{"a source address", fsm.HealthCheck{Type: "http", Source: netip.MustParseAddr("127.0.0.1")}},
	} {
		if r := loopCheck(t, l, build(t, c.hc), target, 2*time.Second); !r.OK {
			t.Fatalf("check %d (%s): %+v, want up", i, c.name, r)
		}
		select {
		case n := <-segs:
			if n != 2 {
				t.Errorf("check %d (%s): the server's socket got %d segments by the request, want 2 (SYN, request)", i, c.name, n)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("check %d (%s): the server read no request", i, c.name)
		}
	}
	if opened := l.opened.Load() - opened0; opened != 2 {
		t.Errorf("%d sockets opened for two plain checks and one with a source, want 2", opened)
	}
	tcpLn := listenTCP(t)
	accepted := make(chan struct{}, 1)
	acceptEach(tcpLn, func(c net.Conn) {
		c.Close()
		accepted <- struct{}{}
	})
	if r := loopCheck(t, l, build(t, fsm.HealthCheck{Type: "tcp"}), addrPort(t, tcpLn.Addr()), 2*time.Second); !r.OK {
		t.Fatalf("connect check: %+v, want up", r)
	}
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the connect check's server accepted no connection")
	}
}

package check

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

func init() { Register("tcp", newTCP) }

// tcpChecker connects and closes: OK when the handshake completes. It runs
// on the event loop (loop_linux.go), socket settings included.
type tcpChecker struct{ opts sockOpts }

func newTCP(c fsm.HealthCheck, _ Options) (Checker, error) {
	if c.Send != "" || c.Expect != "" {
		x, err := newExchange(c)
		if err != nil {
			return nil, err
		}
		return &expectChecker{opts: newSockOpts(c), x: x}, nil
	}
	return tcpChecker{opts: newSockOpts(c)}, nil
}

func (c tcpChecker) Check(ctx context.Context, target netip.AddrPort) Result {
	start := time.Now()
	conn, err := c.opts.dial(ctx, "tcp", target)
	if err != nil {
		return Result{Latency: time.Since(start), Detail: describeSocket(ctx, c.opts, err)}
	}
	lat := time.Since(start)
	reset(conn) // no TIME_WAIT on the director for every check
	conn.Close()
	return Result{OK: true, Latency: lat, Detail: "connected"}
}

// expectChecker is a tcp check with send and expect: connect, write Send
// (if any), then read until the answer matches Expect. It runs on a
// goroutine (Checker.Check), not on the event loop: banner checks are few
// beside the plain connect and HTTP checks the loop exists for.
type expectChecker struct {
	opts sockOpts
	x    *exchange
}

func (c *expectChecker) Check(ctx context.Context, target netip.AddrPort) Result {
	start := time.Now()
	conn, err := c.opts.dial(ctx, "tcp", target)
	if err != nil {
		return Result{Latency: time.Since(start), Detail: describeSocket(ctx, c.opts, err)}
	}
	defer conn.Close()
	defer watch(ctx, conn)()
	r := c.x.run(ctx, conn, start)
	if r.OK {
		reset(conn)
	}
	return r
}

// exchange is the send and expect part of a tcp or tls check.
type exchange struct {
	send   []byte
	expect *regexp.Regexp // nil: any answer, or none when only sending
}

func newExchange(c fsm.HealthCheck) (*exchange, error) {
	x := &exchange{send: []byte(c.Send)}
	if c.Expect != "" {
		re, err := regexp.Compile(c.Expect)
		if err != nil {
			return nil, fmt.Errorf("expect: %w", err)
		}
		x.expect = re
	}
	return x, nil
}

// maxAnswer bounds what a send/expect check reads: a banner or a short
// answer, not a stream.
const maxAnswer = 4 << 10

// run writes Send and reads the answer until Expect matches it. As
// HAProxy's tcp-check expect does, an answer that does not match yet is
// given until the server closes, maxAnswer bytes or the timeout to come
// right: a banner may arrive in pieces, and a multi-line answer's match
// may be on a later line. Without Expect, the write (or, without Send,
// the connect) is the check.
func (x *exchange) run(ctx context.Context, conn net.Conn, start time.Time) Result {
	fail := func(prefix string, err error) Result {
		return Result{Latency: time.Since(start), Detail: clip(prefix + describe(ctx, err))}
	}
	if len(x.send) > 0 {
		if _, err := conn.Write(x.send); err != nil {
			return fail("send: ", err)
		}
	}
	if x.expect == nil {
		return Result{OK: true, Latency: time.Since(start), Detail: "connected"}
	}
	hp := headPool.Get().(*[]byte)
	defer headPool.Put(hp)
	buf := (*hp)[:maxAnswer]
	n := 0
	for {
		m, err := conn.Read(buf[n:])
		n += m
		if x.expect.Match(buf[:n]) {
			return Result{OK: true, Latency: time.Since(start), Detail: clip("answer " + strconv.Quote(firstLine(buf[:n])))}
		}
		switch {
		case n == 0 && err != nil:
			return fail("no answer: ", err)
		case err == io.EOF:
			return Result{Latency: time.Since(start), Detail: clip("answer does not match: " + strconv.Quote(firstLine(buf[:n])) + " (closed)")}
		case err != nil:
			return Result{Latency: time.Since(start), Detail: clip("answer does not match: " + strconv.Quote(firstLine(buf[:n])) + " (" + describe(ctx, err) + ")")}
		case n == len(buf):
			return Result{Latency: time.Since(start), Detail: clip(fmt.Sprintf("answer does not match in %d bytes: %q", n, firstLine(buf[:n])))}
		}
	}
}

// firstLine is the start of an answer for a Detail: its first line, at
// most 64 bytes.
func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b = b[:i]
			break
		}
	}
	return string(b[:min(len(b), 64)])
}

package check

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

func init() { Register("udp", newUDP) }

// udpChecker sends Send from a connected socket and reads one reply, which
// must match Expect (any reply will do when Expect is empty). On a
// connected socket an ICMP port unreachable comes back as ECONNREFUSED, so
// a closed port fails at once instead of at the timeout.
type udpChecker struct {
	opts   sockOpts
	send   []byte
	expect *regexp.Regexp
}

func newUDP(c fsm.HealthCheck, _ Options) (Checker, error) {
	u := &udpChecker{opts: newSockOpts(c), send: []byte(c.Send)}
	if c.Expect != "" {
		re, err := regexp.Compile(c.Expect)
		if err != nil {
			return nil, fmt.Errorf("expect: %w", err)
		}
		u.expect = re
	}
	return u, nil
}

func (u *udpChecker) Check(ctx context.Context, target netip.AddrPort) Result {
	start := time.Now()
	fail := func(err error) Result {
		d := describe(ctx, err)
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			d = "port unreachable"
		case d == "timeout":
			d = "timeout (no reply)"
		}
		return Result{Latency: time.Since(start), Detail: d}
	}
	conn, err := u.opts.dial(ctx, "udp", target)
	if err != nil {
		if !u.opts.zero() {
			return Result{Latency: time.Since(start), Detail: describeSocket(ctx, u.opts, err)}
		}
		return fail(err)
	}
	defer conn.Close()
	defer watch(ctx, conn)()
	if _, err := conn.Write(u.send); err != nil {
		return fail(err)
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	n, err := conn.Read(*bp)
	if err != nil {
		return fail(err)
	}
	res := Result{Latency: time.Since(start)}
	if u.expect != nil && !u.expect.Match((*bp)[:n]) {
		res.Detail = clip("reply does not match: " + strconv.Quote(string((*bp)[:min(n, 64)])))
		return res
	}
	res.OK, res.Detail = true, "reply, "+strconv.Itoa(n)+" bytes"
	return res
}

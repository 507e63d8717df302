package check

import (
	"context"
	"net/netip"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

func init() { Register("tcp", newTCP) }

// tcpChecker connects and closes: OK when the handshake completes.
type tcpChecker struct{}

func newTCP(fsm.HealthCheck, Options) (Checker, error) { return tcpChecker{}, nil }

func (tcpChecker) Check(ctx context.Context, target netip.AddrPort) Result {
	start := time.Now()
	conn, err := dialer.DialContext(ctx, "tcp", target.String())
	if err != nil {
		return Result{Latency: time.Since(start), Detail: describe(ctx, err)}
	}
	lat := time.Since(start)
	reset(conn) // no TIME_WAIT on the director for every check
	conn.Close()
	return Result{OK: true, Latency: lat, Detail: "connected"}
}

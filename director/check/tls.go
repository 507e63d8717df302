package check

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

func init() { Register("tls", newTLS) }

// tlsChecker completes a TLS handshake and judges the certificate (see
// certPolicy): its chain to CAFile's CAs or the system's roots and its name
// (SNI, else the target's address), unless Insecure, and that it is not
// expired nor expires within ExpiryMarginS. With Send or Expect it then
// speaks over the TLS connection as a tcp check does (a POP3S or IMAPS
// banner). Like the https check it dials afresh each time and runs on a
// goroutine; no session is resumed, so that every check sees the
// certificate a new client sees.
type tlsChecker struct {
	opts sockOpts
	cfg  *tls.Config // SNI only: certPolicy verifies
	cert certPolicy
	x    *exchange // nil: the handshake is the check
}

func newTLS(c fsm.HealthCheck, _ Options) (Checker, error) {
	t := &tlsChecker{
		opts: newSockOpts(c),
		// The certificate is verified by certPolicy after the handshake.
		cfg:  &tls.Config{ServerName: c.SNI, InsecureSkipVerify: true},
		cert: certPolicy{insecure: c.Insecure, margin: time.Duration(c.ExpiryMarginS) * time.Second},
	}
	if c.CAFile != "" {
		t.cert.ca = &caFile{path: c.CAFile}
	}
	if c.Send != "" || c.Expect != "" {
		x, err := newExchange(c)
		if err != nil {
			return nil, err
		}
		t.x = x
	}
	return t, nil
}

func (t *tlsChecker) Check(ctx context.Context, target netip.AddrPort) Result {
	start := time.Now()
	raw, err := t.opts.dial(ctx, "tcp", target)
	if err != nil {
		return Result{Latency: time.Since(start), Detail: describeSocket(ctx, t.opts, err)}
	}
	defer raw.Close()
	defer watch(ctx, raw)()
	tc := tls.Client(raw, t.cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return Result{Latency: time.Since(start), Detail: describe(ctx, err)}
	}
	name := t.cfg.ServerName
	if name == "" {
		name = target.Addr().String()
	}
	detail, ok := t.cert.verify(tc.ConnectionState(), name, time.Now())
	if !ok || t.x == nil {
		if ok {
			closeTLS(tc, raw)
		}
		return Result{OK: ok, Latency: time.Since(start), Detail: detail}
	}
	r := t.x.run(ctx, tc, start)
	if r.OK {
		closeTLS(tc, raw)
	}
	return r
}

// closeTLS ends a checked connection: close_notify, then a reset (see
// reset) so that neither side keeps it in TIME_WAIT.
func closeTLS(tc *tls.Conn, raw net.Conn) {
	tc.CloseWrite()
	reset(raw)
}

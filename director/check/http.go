package check

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

func init() {
	Register("http", newHTTP)
	Register("https", newHTTP)
}

// httpChecker sends one HTTP/1.0 request on a new connection and judges
// the status code and, optionally, the first maxRead bytes of the body.
// Redirects are not followed: a 3xx is judged by Status like any other
// code.
//
// Why not net/http: a health check is one fixed request and one status
// line, thousands of times a second on a director. net/http's client
// spends two goroutines, a header map and a transport per request on
// that; in the lab (5,000 checks a second) it cost several times
// keepalived's checker, which, like this one, writes a prebuilt request
// and reads the answer with its own few lines. HTTP/1.0, as keepalived's
// HTTP_GET sends, means no chunked body and a server that closes the
// connection after its answer.
//
// Every check dials afresh, as keepalived's does: a server whose accept
// loop is wedged or whose backlog is full still answers on a kept-alive
// connection, and a check must see what a new client sees (the TLS
// handshake included).
type httpChecker struct {
	method, path string
	host         string // Host header; empty for the target's address
	body         *regexp.Regexp
	accept       [600/64 + 1]uint64 // bit per accepted status code
	tls          *tls.Config        // nil for http
	// cert judges the certificate after the handshake, which then skips
	// Go's own verification: https with a CA file or an expiry margin.
	cert   *certPolicy
	digest string // hex MD5 the whole body must have; empty: none
	opts   sockOpts
	// last is the request for the last target, so that a checker (which
	// usually checks one target) writes it once.
	last atomic.Pointer[httpRequest]
}

type httpRequest struct {
	target netip.AddrPort
	raw    []byte
	tls    *tls.Config
}

// userAgent identifies the checks in servers' logs.
const userAgent = "ipvsman-check/1"

// maxHeader bounds the status line and headers a check reads.
const maxHeader = 16 << 10

var headPool = sync.Pool{New: func() any { b := make([]byte, maxHeader); return &b }}

func newHTTP(c fsm.HealthCheck, _ Options) (Checker, error) {
	h := &httpChecker{method: c.Method, path: c.Path, host: c.Host, digest: strings.ToLower(c.Digest), opts: newSockOpts(c)}
	if h.method == "" {
		h.method = "GET"
	}
	if h.path == "" {
		h.path = "/"
	}
	if c.Body != "" {
		re, err := regexp.Compile(c.Body)
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		h.body = re
	}
	if len(c.Status) == 0 {
		for s := 200; s <= 399; s++ {
			h.accept[s/64] |= 1 << (s % 64)
		}
	}
	for _, s := range c.Status {
		if s < 0 || s >= 600 {
			return nil, fmt.Errorf("status %d: not an HTTP status code", s)
		}
		h.accept[s/64] |= 1 << (s % 64)
	}
	if c.Type == "https" {
		sni := c.SNI
		if sni == "" && c.Host != "" {
			// Host may carry a port; SNI never does.
			sni = c.Host
			if host, _, err := net.SplitHostPort(c.Host); err == nil {
				sni = host
			}
		}
		h.tls = &tls.Config{
			ServerName:         sni, // empty: no SNI, and the target's address is verified
			InsecureSkipVerify: c.Insecure,
			ClientSessionCache: tls.NewLRUClientSessionCache(8),
		}
		if c.CAFile != "" || c.ExpiryMarginS != 0 {
			h.cert = &certPolicy{insecure: c.Insecure, margin: time.Duration(c.ExpiryMarginS) * time.Second}
			if c.CAFile != "" {
				h.cert.ca = &caFile{path: c.CAFile}
			}
			h.tls.InsecureSkipVerify = true
		}
	}
	return h, nil
}

func (h *httpChecker) request(target netip.AddrPort) *httpRequest {
	if r := h.last.Load(); r != nil && r.target == target {
		return r
	}
	host := h.host
	if host == "" {
		host = target.String()
	}
	raw := fmt.Appendf(nil, "%s %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: */*\r\nConnection: close\r\n\r\n",
		h.method, h.path, host, userAgent)
	r := &httpRequest{target: target, raw: raw, tls: h.tls}
	if h.tls != nil && h.tls.ServerName == "" && !h.tls.InsecureSkipVerify && h.cert == nil {
		// Verify the certificate against the address dialled, as a
		// browser given https://ADDR/ would.
		r.tls = h.tls.Clone()
		r.tls.ServerName = target.Addr().String()
	}
	h.last.Store(r)
	return r
}

func (h *httpChecker) accepted(code int) bool {
	return code >= 0 && code < 600 && h.accept[code/64]&(1<<(code%64)) != 0
}

func (h *httpChecker) Check(ctx context.Context, target netip.AddrPort) Result {
	start := time.Now()
	fail := func(err error) Result { return Result{Latency: time.Since(start), Detail: describe(ctx, err)} }
	raw, err := h.opts.dial(ctx, "tcp", target)
	if err != nil {
		return Result{Latency: time.Since(start), Detail: describeSocket(ctx, h.opts, err)}
	}
	defer raw.Close()
	stop := watch(ctx, raw)
	defer stop()
	req := h.request(target)
	conn := raw
	if req.tls != nil {
		tc := tls.Client(raw, req.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(err)
		}
		if h.cert != nil {
			name := req.tls.ServerName
			if name == "" {
				name = target.Addr().String()
			}
			if d, ok := h.cert.verify(tc.ConnectionState(), name, time.Now()); !ok {
				return Result{Latency: time.Since(start), Detail: d}
			}
		}
		conn = tc
	}
	if _, err := conn.Write(req.raw); err != nil {
		return fail(err)
	}
	hp := headPool.Get().(*[]byte)
	defer headPool.Put(hp)
	var body []byte
	if h.body != nil {
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		body = *bp
	}
	p := h.newResponse(*hp, body)
	var lat time.Duration
	judged := false
	for !p.done {
		m, err := conn.Read(p.space())
		wasDraining := p.draining
		p.fed(m, err)
		if p.judged && !judged {
			judged, lat = true, time.Since(start)
		}
		if p.draining && !wasDraining {
			awaitClose(ctx, raw)
		}
	}
	if p.err != nil {
		return Result{Latency: lat, Detail: p.detail + describe(ctx, p.err)}
	}
	reset(raw)
	return Result{OK: p.ok, Latency: lat, Detail: p.detail}
}

// closeWait bounds how long a check waits for the server to close after
// its answer.
const closeWait = 200 * time.Millisecond

// awaitClose bounds the wait for the server's close after a complete
// answer. The side that closes first keeps the connection in TIME_WAIT for
// a minute; a director closing first, thousands of times a second, fills
// its port range with them and makes every connect search it (in the lab,
// connect and close were most of the checker's CPU). HTTP/1.0 servers
// close after their answer, so the wait is usually no wait; one that does
// not is left after closeWait, as before.
func awaitClose(ctx context.Context, c net.Conn) {
	deadline := time.Now().Add(closeWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetReadDeadline(deadline)
}

// reset makes the coming close a reset, once the answer is complete and
// the server has closed (or had closeWait to): neither side then keeps the
// connection in TIME_WAIT or FIN_WAIT, as HAProxy's checks do.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
}

// statusDetails holds "HTTP nnn" for every code, so that a check does not
// format one.
var statusDetails = func() (d [600]string) {
	for i := range d {
		d[i] = "HTTP " + strconv.Itoa(i)
	}
	return d
}()

func statusDetail(code int) string {
	if code >= 0 && code < len(statusDetails) {
		return statusDetails[code]
	}
	return "HTTP " + strconv.Itoa(code)
}

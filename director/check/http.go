package check

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

func init() {
	Register("http", newHTTP)
	Register("https", newHTTP)
}

// httpChecker sends one request and judges the status code and,
// optionally, the first maxRead bytes of the body. Redirects are not
// followed: a 3xx is judged by Status like any other code.
//
// Each checker owns a Transport (its TLS settings are the check's); every
// check dials afresh (see DisableKeepAlives below).
type httpChecker struct {
	scheme string
	method string
	path   string
	host   string // Host header; empty for the target's address
	body   *regexp.Regexp
	accept [600/64 + 1]uint64 // bit per accepted status code
	header http.Header        // shared by every request, never written
	tr     *http.Transport
	// last is the request template for the last target, so that a
	// checker (which usually checks one target) builds its URL once.
	last atomic.Pointer[httpTemplate]
}

type httpTemplate struct {
	target netip.AddrPort
	req    *http.Request
}

// userAgent identifies the checks in servers' logs.
const userAgent = "ipvsman-check/1"

func newHTTP(c fsm.HealthCheck) (Checker, error) {
	h := &httpChecker{
		scheme: c.Type,
		method: c.Method,
		path:   c.Path,
		host:   c.Host,
		header: http.Header{"User-Agent": {userAgent}},
	}
	if h.method == "" {
		h.method = http.MethodGet
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
	interval := time.Duration(c.IntervalMS) * time.Millisecond
	timeout := time.Duration(c.TimeoutMS) * time.Millisecond
	h.tr = &http.Transport{
		Proxy:       nil, // checks go to the server itself, never a proxy from the environment
		DialContext: dialer.DialContext,
		// Every check opens its own connection, as keepalived's HTTP_GET
		// does: a server whose accept loop is wedged or whose backlog is
		// full still answers on a kept-alive connection, and a check must
		// see what a new client sees (the TLS handshake included).
		DisableKeepAlives:      true,
		MaxIdleConns:           8,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        interval + timeout + time.Second,
		DisableCompression:     true, // match the body as sent; no gzip work
		MaxResponseHeaderBytes: 64 << 10,
		// Requests are a few hundred bytes; responses are read through.
		WriteBufferSize: 1 << 10,
		ReadBufferSize:  2 << 10,
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
		h.tr.TLSClientConfig = &tls.Config{
			ServerName:         sni, // empty: the target's address, sent as no SNI
			InsecureSkipVerify: c.Insecure,
			ClientSessionCache: tls.NewLRUClientSessionCache(8),
		}
	}
	return h, nil
}

// Close drops the checker's idle connections. A caller done with a checker
// may call it through io.Closer; otherwise they linger until
// IdleConnTimeout.
func (h *httpChecker) Close() error {
	h.tr.CloseIdleConnections()
	return nil
}

func (h *httpChecker) template(target netip.AddrPort) *http.Request {
	if t := h.last.Load(); t != nil && t.target == target {
		return t.req
	}
	u := &url.URL{Scheme: h.scheme, Host: target.String(), Path: h.path}
	req := &http.Request{
		Method:     h.method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h.header,
		Host:       h.host,
	}
	h.last.Store(&httpTemplate{target: target, req: req})
	return req
}

func (h *httpChecker) accepted(code int) bool {
	return code >= 0 && code < 600 && h.accept[code/64]&(1<<(code%64)) != 0
}

func (h *httpChecker) Check(ctx context.Context, target netip.AddrPort) Result {
	start := time.Now()
	// The template is shared; WithContext makes the one copy a request
	// needs. Transport.RoundTrip, unlike Client.Do, follows no redirects.
	resp, err := h.tr.RoundTrip(h.template(target).WithContext(ctx))
	if err != nil {
		return Result{Latency: time.Since(start), Detail: describe(ctx, err)}
	}
	defer resp.Body.Close()
	res := Result{Detail: statusDetail(resp.StatusCode)}
	// Read the body (bounded) whatever the status, so that the connection
	// goes back to the pool; a larger body costs the connection, not the
	// check.
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	n, err := readUpTo(resp.Body, *bp)
	res.Latency = time.Since(start)
	switch {
	case !h.accepted(resp.StatusCode):
	case err != nil:
		res.Detail += ", body: " + describe(ctx, err)
	case h.body != nil && !h.body.Match((*bp)[:n]):
		res.Detail += ", body does not match"
	default:
		res.OK = true
	}
	return res
}

// readUpTo reads r into buf until EOF or buf is full.
func readUpTo(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
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

package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// Result of one check.
type Result struct {
	OK      bool
	Latency time.Duration // time the check took
	Detail  string        // short, human: "HTTP 503", "connection refused", "exit 1", "rcode NXDOMAIN"
	Weight  *int          // exec only: a weight the command printed; nil otherwise
}

// Checker checks one target. Check must honour ctx (the runner sets the
// timeout) and be safe for concurrent use.
type Checker interface {
	Check(ctx context.Context, target netip.AddrPort) Result
}

// builder makes the checker for one validated check.
type builder = func(fsm.HealthCheck, Options) (Checker, error)

// Options are the node's own settings for the checkers it builds: what
// differs between nodes and is not part of the replicated check.
type Options struct {
	// Exec is where exec checks' programs must be and whom they run as;
	// nil refuses every exec check.
	Exec *Exec
}

// registry holds the checker types. Built-ins fill it from their init
// functions; it is only read afterwards.
var registry = struct {
	sync.RWMutex
	m map[string]builder
}{m: map[string]builder{}}

// Register adds a checker type. Each built-in registers itself in its own
// file's init, so a new checker is one file. Registering a type twice, an
// empty type or a nil build panics, as these are programming errors.
func Register(typ string, build func(fsm.HealthCheck, Options) (Checker, error)) {
	if typ == "" || build == nil {
		panic("check: Register with an empty type or a nil build")
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[typ]; dup {
		panic(fmt.Sprintf("check: type %q registered twice", typ))
	}
	registry.m[typ] = build
}

// types lists the registered checker types, sorted.
func types() []string {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]string, 0, len(registry.m))
	for t := range registry.m {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// New builds the checker for c, which fsm.ValidateHealthCheck has
// accepted, with this node's options. Defaults (c.WithDefaults) are
// applied here.
func New(c fsm.HealthCheck, o Options) (Checker, error) {
	registry.RLock()
	build := registry.m[c.Type]
	registry.RUnlock()
	if build == nil {
		return nil, fmt.Errorf("check: unknown type %q", c.Type)
	}
	ch, err := build(c.WithDefaults(), o)
	if err != nil {
		return nil, fmt.Errorf("check: %s: %w", c.Type, err)
	}
	return ch, nil
}

// Target computes where to check: c.Address and c.Port, when set, override
// the real server's address and port.
func Target(c fsm.HealthCheck, server netip.AddrPort) netip.AddrPort {
	addr, port := server.Addr(), server.Port()
	if c.Address.IsValid() {
		addr = c.Address
	}
	if c.Port != 0 {
		port = c.Port
	}
	return netip.AddrPortFrom(addr, port)
}

// maxDetail bounds Result.Detail: it ends up in logs and in the Raft log
// (verdict reasons), so a server must not be able to make it large.
const maxDetail = 160

func clip(s string) string {
	if len(s) <= maxDetail {
		return s
	}
	return s[:maxDetail-3] + "..."
}

// describe turns a check's error into a short Detail. ctx tells a
// cancellation from a timeout: watch reports both as a passed deadline.
func describe(ctx context.Context, err error) string {
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		cerr x509.CertificateInvalidError
		rerr tls.RecordHeaderError
		nerr net.Error
	)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.As(err, &verr):
		return clip("certificate error: " + verr.Err.Error())
	case errors.As(err, &uerr), errors.As(err, &herr), errors.As(err, &cerr):
		return clip("certificate error: " + err.Error())
	case errors.As(err, &rerr):
		return "TLS handshake: not a TLS server"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.As(err, &nerr) && nerr.Timeout(), ctx.Err() != nil:
		return "timeout"
	}
	return clip(err.Error())
}

// deadlineSetter is what watch needs of a connection.
type deadlineSetter interface{ SetDeadline(time.Time) error }

// watch makes c honour ctx: its deadline now, its cancellation when it
// comes (an AfterFunc starts a goroutine only then). Call the returned
// stop when done with c.
func watch(ctx context.Context, c deadlineSetter) (stop func() bool) {
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	return context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
}

// dialer is shared: a net.Dialer is safe for concurrent use. Check
// connections are short-lived, so no TCP keep-alive probes.
var dialer = &net.Dialer{KeepAlive: -1}

// bufPool holds read buffers of maxRead bytes (HTTP bodies, UDP replies).
const maxRead = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, maxRead); return &b }}

package check

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/textproto"
	"os"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

func init() { Register("smtp", newSMTP) }

// smtpChecker is keepalived's SMTP_CHECK: connect, read the 220 greeting,
// EHLO (HELO when the server refuses EHLO with a 5xx, as RFC 5321 asks of
// a client) and its 250, then QUIT. Multi-line replies ("250-...") are
// read whole. It runs on a goroutine.
type smtpChecker struct {
	opts       sockOpts
	ehlo, helo []byte
}

func newSMTP(c fsm.HealthCheck, _ Options) (Checker, error) {
	name := c.Helo
	if name == "" {
		// What an MTA expects of a client: its own name.
		h, err := os.Hostname()
		if err != nil || !validHelo(h) {
			h = "localhost"
		}
		name = h
	}
	return &smtpChecker{opts: newSockOpts(c), ehlo: []byte("EHLO " + name + "\r\n"), helo: []byte("HELO " + name + "\r\n")}, nil
}

func validHelo(s string) bool {
	c := fsm.HealthCheck{Type: "smtp", Helo: s}
	return fsm.ValidateHealthCheck("check", &c) == nil
}

// maxSMTPReply bounds what a check reads from the server in all: an EHLO
// answer lists a few extensions.
const maxSMTPReply = 16 << 10

func (s *smtpChecker) Check(ctx context.Context, target netip.AddrPort) Result {
	start := time.Now()
	conn, err := s.opts.dial(ctx, "tcp", target)
	if err != nil {
		return Result{Latency: time.Since(start), Detail: describeSocket(ctx, s.opts, err)}
	}
	defer conn.Close()
	defer watch(ctx, conn)()
	tp := textproto.NewReader(bufio.NewReaderSize(io.LimitReader(conn, maxSMTPReply), 1024))
	fail := func(step string, err error) Result {
		var perr *textproto.Error
		if errors.As(err, &perr) {
			return Result{Latency: time.Since(start), Detail: clip(fmt.Sprintf("%s: %d %s", step, perr.Code, firstLine([]byte(perr.Msg))))}
		}
		var proto textproto.ProtocolError
		if errors.As(err, &proto) {
			return Result{Latency: time.Since(start), Detail: clip(step + ": not SMTP: " + string(proto))}
		}
		return Result{Latency: time.Since(start), Detail: clip(step + ": " + describe(ctx, err))}
	}
	if _, _, err := tp.ReadResponse(220); err != nil {
		return fail("greeting", err)
	}
	hello := "EHLO"
	if _, err := conn.Write(s.ehlo); err != nil {
		return fail("EHLO", err)
	}
	if _, _, err := tp.ReadResponse(250); err != nil {
		var perr *textproto.Error
		if !errors.As(err, &perr) || perr.Code/100 != 5 {
			return fail("EHLO", err)
		}
		hello = "HELO"
		if _, err := conn.Write(s.helo); err != nil {
			return fail("HELO", err)
		}
		if _, _, err := tp.ReadResponse(250); err != nil {
			return fail("HELO", err)
		}
	}
	lat := time.Since(start)
	// QUIT politely, but the verdict is made: wait for the 221 (and the
	// server's close) no longer than closeWait.
	if _, err := conn.Write([]byte("QUIT\r\n")); err == nil {
		awaitClose(ctx, conn)
		if _, _, err := tp.ReadResponse(221); err == nil {
			reset(conn)
		}
	}
	return Result{OK: true, Latency: lat, Detail: "SMTP 220, " + hello + " 250"}
}

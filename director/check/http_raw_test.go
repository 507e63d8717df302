package check

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// rawServer answers every connection with the given chunks, written one by
// one (so a response may arrive in pieces), then closes unless hold. It
// records the request head it read.
func rawServer(t *testing.T, hold bool, chunks ...string) (netip.AddrPort, <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	heads := make(chan string, 16)
	acceptEach(ln, func(c net.Conn) {
		defer c.Close()
		var head strings.Builder
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			head.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		select {
		case heads <- head.String():
		default:
		}
		for _, ch := range chunks {
			if _, err := c.Write([]byte(ch)); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond) // a separate segment each
		}
		if hold {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			br.ReadByte() // until the checker closes
		}
	})
	return netip.MustParseAddrPort(ln.Addr().String()), heads
}

func TestHTTPResponsesAsSent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hold   bool // the server keeps the connection open after its answer
		chunks []string
		body   string
		ok     bool
		detail string
	}{
		{"status line in pieces", false, []string{"HTT", "P/1.1 2", "04 No Content\r\n\r\n"}, "", true, "HTTP 204"},
		{"no reason phrase", false, []string{"HTTP/1.0 200\r\n\r\nok"}, "", true, "HTTP 200"},
		{"content length, connection held", true, []string{"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nhea", "lthy\n"}, "^healthy$", true, "HTTP 200"},
		{"body read to the close", false, []string{"HTTP/1.0 200 OK\r\n\r\nstatus: ", "healthy\n"}, "healthy", true, "HTTP 200"},
		{"body cut short", false, []string{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"}, "", false, "connection closed"},
		{"headers cut short", false, []string{"HTTP/1.1 503 Service Unavailable\r\nServer: x"}, "", false, "HTTP 503"},
		{"not HTTP", false, []string{"SSH-2.0-OpenSSH_9.2\r\n\r\n"}, "", false, "not an HTTP response"},
		{"bad status", false, []string{"HTTP/1.1 2x0 OK\r\n\r\n"}, "", false, "not an HTTP status line"},
		{"closed at once", false, nil, "", false, "connection closed"},
		{"headers too large", true, []string{"HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", maxHeader) + "\r\n\r\n"}, "", false, "headers over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, heads := rawServer(t, tc.hold, tc.chunks...)
			r := check(t, build(t, fsm.HealthCheck{Type: "http", Body: tc.body}), target, 5*time.Second)
			wantResult(t, r, tc.ok, tc.detail)
			head := <-heads
			want := "GET / HTTP/1.0\r\nHost: " + target.String() + "\r\nUser-Agent: " + userAgent + "\r\n"
			if !strings.HasPrefix(head, want) || !strings.HasSuffix(head, "\r\n\r\n") {
				t.Errorf("request head %q, want it to start %q", head, want)
			}
		})
	}
}

// The server closes first, not the checker: whoever closes first holds the
// connection in TIME_WAIT for a minute, and a director checking thousands
// of servers a second must not fill its port range with them. The checker
// then resets, so the server keeps nothing either.
func TestHTTPServerClosesFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type outcome struct{ clientClosedFirst, clientClosedAfter bool }
	got := make(chan outcome, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		bufio.NewReader(c).ReadString('\n') // the request line is enough
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"))
		var o outcome
		buf := make([]byte, 64)
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(buf); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			o.clientClosedFirst = true
		}
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(buf)
		// A reset, since the checker closes with SO_LINGER 0 once the
		// server has closed (see reset).
		o.clientClosedAfter = errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF)
		got <- o
	}()
	r := check(t, build(t, fsm.HealthCheck{Type: "http"}), netip.MustParseAddrPort(ln.Addr().String()), 5*time.Second)
	wantOK(t, r)
	if o := <-got; o.clientClosedFirst || !o.clientClosedAfter {
		t.Fatalf("checker closed first: %v; closed after the server: %v", o.clientClosedFirst, o.clientClosedAfter)
	}
}

// keepalived's digest: the MD5 of the whole body, past the 64 KiB a body
// expression reads, with or without Content-Length; and a wrong body.
func TestHTTPDigest(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 10000) // 160,000 bytes
	for _, c := range []struct {
		name, resp, body string
	}{
		{"content-length", "HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n", "hello\n"},
		{"to the close", "HTTP/1.0 200 OK\r\n\r\nhello\n", "hello\n"},
		{"large", fmt.Sprintf("HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(big), big), big},
		{"large to the close", "HTTP/1.0 200 OK\r\n\r\n" + big, big},
	} {
		t.Run(c.name, func(t *testing.T) {
			target, _ := rawServer(t, false, c.resp)
			wantResult(t, check(t, build(t, fsm.HealthCheck{Type: "http", Digest: md5hex(c.body)}), target, 5*time.Second), true, "HTTP 200, digest matches")
			other := md5hex(c.body[1:])
			wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "http", Digest: other}), target, 5*time.Second), "HTTP 200, body digest "+md5hex(c.body)+" does not match")
			wantOK(t, check(t, build(t, fsm.HealthCheck{Type: "http", Body: "^hello|^0123", Digest: md5hex(c.body)}), target, 5*time.Second))
		})
	}
	wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "http", Digest: md5hex("x")}), closedTCPPort(t), 5*time.Second), "connection refused")
	wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "http", Digest: md5hex("x")}), first(rawServer(t, false, "HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nhel")), 5*time.Second), "body: connection closed")
}

func first[A, B any](a A, _ B) A { return a }

package check

import (
	"bufio"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// lineServer answers each connection as serve says: a banner, and replies
// to the lines the client sends, as the real protocols' servers do.
func lineServer(t *testing.T, serve func(c net.Conn, r *bufio.Reader)) netip.AddrPort {
	t.Helper()
	l := listenTCP(t)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	return addrPort(t, l.Addr())
}

// banner serves a greeting and then waits for the client to go, as an
// SMTP, POP3, IMAP, FTP or NNTP server does.
func banner(text string) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, r *bufio.Reader) {
		c.Write([]byte(text))
		r.ReadString('\n')
	}
}

// The banners of the protocols ldirectord's negotiate checks speak, as
// their servers send them, against the expectations the ldirectord import
// writes for them (fsm/migrate); and each expectation against another
// protocol's banner.
func TestTCPExpectBanners(t *testing.T) {
	banners := []struct{ proto, expect, greeting string }{
		{"smtp", `^220[ -]`, "220 mx.example.com ESMTP Postfix (Debian/GNU)\r\n"},
		{"pop", `^\+OK`, "+OK Dovecot (Debian) ready.\r\n"},
		{"imap", `^\* OK`, "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.\r\n"},
		{"ftp", `^220[ -]`, "220 (vsFTPd 3.0.3)\r\n"},
		{"nntp", `^20[01][ -]`, "200 news.example.com InterNetNews NNRP server INN 2.7.1 ready (posting ok)\r\n"},
	}
	for i, b := range banners {
		t.Run(b.proto, func(t *testing.T) {
			ch := build(t, fsm.HealthCheck{Type: "tcp", Expect: b.expect})
			r := check(t, ch, lineServer(t, banner(b.greeting)), 5*time.Second)
			wantOK(t, r)
			if !strings.HasPrefix(r.Detail, "answer ") {
				t.Errorf("detail %q, want the answer quoted", r.Detail)
			}
			// Another protocol's greeting is a wrong answer: the check
			// fails with what it got once its time is up.
			other := banners[(i+1)%len(banners)].greeting
			if b.proto == "smtp" {
				other = "554 mx.example.com Service unavailable\r\n"
			}
			wantFail(t, check(t, ch, lineServer(t, banner(other)), time.Second), "answer does not match: "+`"`+strings.TrimRight(other, "\r\n")[:10])
			wantFail(t, check(t, ch, closedTCPPort(t), 5*time.Second), "connection refused")
		})
	}
}

func TestTCPSendExpect(t *testing.T) {
	ping := func(answer string) func(net.Conn, *bufio.Reader) {
		return func(c net.Conn, r *bufio.Reader) {
			if l, _ := r.ReadString('\n'); l == "PING\r\n" {
				c.Write([]byte(answer))
			}
		}
	}
	ch := build(t, fsm.HealthCheck{Type: "tcp", Send: "PING\r\n", Expect: `^\+PONG\r\n`})
	wantOK(t, check(t, ch, lineServer(t, ping("+PONG\r\n")), 5*time.Second))
	// A wrong answer, then the server's close: judged at the close.
	start := time.Now()
	wantFail(t, check(t, ch, lineServer(t, ping("-ERR unknown command\r\n")), 5*time.Second), `answer does not match: "-ERR unknown command" (closed)`)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a closed connection was judged after %v, want at once", d)
	}
	// An answer in pieces still matches.
	pieces := lineServer(t, func(c net.Conn, r *bufio.Reader) {
		r.ReadString('\n')
		c.Write([]byte("+PO"))
		time.Sleep(50 * time.Millisecond)
		c.Write([]byte("NG\r\n"))
	})
	wantOK(t, check(t, ch, pieces, 5*time.Second))
	// No answer at all.
	silent := lineServer(t, func(c net.Conn, r *bufio.Reader) { r.ReadString('\n'); time.Sleep(time.Second) })
	wantFail(t, check(t, ch, silent, 200*time.Millisecond), "no answer: timeout")
	wantFail(t, check(t, ch, closedTCPPort(t), 5*time.Second), "connection refused")
	// A send alone: the write is the check.
	wantOK(t, check(t, build(t, fsm.HealthCheck{Type: "tcp", Send: "QUIT\r\n"}), lineServer(t, banner("")), 5*time.Second))
}

// SMTP_CHECK against a server speaking the exchange as Postfix does:
// multi-line EHLO answer, 502 to EHLO from an old server (then HELO), and
// the failures a check must see.
func TestSMTPExchange(t *testing.T) {
	type step struct{ greeting, ehlo, helo string }
	smtp := func(s step) func(net.Conn, *bufio.Reader) {
		return func(c net.Conn, r *bufio.Reader) {
			c.Write([]byte(s.greeting))
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				switch cmd := strings.ToUpper(strings.Fields(l + " x")[0]); cmd {
				case "EHLO":
					if !strings.HasPrefix(l, "EHLO director.example.com\r\n") {
						c.Write([]byte("501 5.5.4 bad EHLO " + l))
						continue
					}
					c.Write([]byte(s.ehlo))
				case "HELO":
					c.Write([]byte(s.helo))
				case "QUIT":
					c.Write([]byte("221 2.0.0 Bye\r\n"))
					return
				default:
					c.Write([]byte("502 5.5.2 Error: command not recognized\r\n"))
				}
			}
		}
	}
	ch := build(t, fsm.HealthCheck{Type: "smtp", Helo: "director.example.com"})
	good := step{"220 mx.example.com ESMTP Postfix\r\n", "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n", "250 mx.example.com\r\n"}
	wantResult(t, check(t, ch, lineServer(t, smtp(good)), 5*time.Second), true, "SMTP 220, EHLO 250")
	old := good
	old.ehlo = "502 5.5.2 Error: command not recognized\r\n"
	wantResult(t, check(t, ch, lineServer(t, smtp(old)), 5*time.Second), true, "SMTP 220, HELO 250")
	busy := good
	busy.greeting = "421 4.3.2 mx.example.com Service not available, closing transmission channel\r\n"
	wantFail(t, check(t, ch, lineServer(t, smtp(busy)), 5*time.Second), "greeting: 421 4.3.2 mx.example.com Service not available")
	refusing := good
	refusing.ehlo = "421 4.7.0 mx.example.com Error: too many errors\r\n"
	wantFail(t, check(t, ch, lineServer(t, smtp(refusing)), 5*time.Second), "EHLO: 421 4.7.0")
	wantFail(t, check(t, ch, lineServer(t, banner("+OK Dovecot ready.\r\n")), 5*time.Second), `greeting: not SMTP: invalid response code: "+OK Dovecot ready."`)
	wantFail(t, check(t, ch, closedTCPPort(t), 5*time.Second), "connection refused")
}

package check

import (
	"bufio"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/skip"
)

// peer is what a test server saw of a check's connection: its source and
// the mark of the checker's socket.
type peer struct {
	from netip.AddrPort
	mark string // "0x4d2", or "" for none
}

// peerServer records each connection's peer and its socket's mark (read
// with ss while the connection is open), then answers with reply.
type peerServer struct {
	mu    sync.Mutex
	peers []peer
}

func (s *peerServer) last() (peer, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.peers) == 0 {
		return peer{}, 0
	}
	return s.peers[len(s.peers)-1], len(s.peers)
}

var ssMark = regexp.MustCompile(`fwmark:(0x[0-9a-f]+)`)

// markOf reads the mark of the local socket with source port port: the
// checker's side of a connection, seen from the kernel (ss -e; the mark
// is shown to CAP_NET_ADMIN).
func markOf(t *testing.T, port uint16) string {
	out, err := exec.Command("ss", "-tenH", "state", "established", "sport", "=", fmt.Sprintf(":%d", port)).Output()
	if err != nil {
		t.Errorf("ss: %v", err)
		return ""
	}
	if m := ssMark.FindSubmatch(out); m != nil {
		return string(m[1])
	}
	return ""
}

func (s *peerServer) serve(t *testing.T, reply func(c net.Conn, r *bufio.Reader)) netip.AddrPort {
	return lineServer(t, func(c net.Conn, r *bufio.Reader) {
		from := addrPort(t, c.RemoteAddr())
		p := peer{from: from, mark: markOf(t, from.Port())}
		s.mu.Lock()
		s.peers = append(s.peers, p)
		s.mu.Unlock()
		reply(c, r)
	})
}

func needSS(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		skip.Now(t, "no ss (iproute2): the test reads the checker's socket mark with it")
	}
}

func freePort(t *testing.T) uint16 { return closedTCPPort(t).Port() }

// keepalived's bindto, bind_port and fwmark on the check's own socket: the
// server sees the source address and port, and the kernel the mark. Runs
// on the loop too (TestLoopPassesTheCheckersTests): the loop sets them on
// its own sockets.
func TestCheckSocket(t *testing.T) {
	needSS(t)
	src := netip.MustParseAddr("127.0.0.2") // every 127/8 address is this host's
	httpReply := func(c net.Conn, r *bufio.Reader) {
		for l, err := r.ReadString('\n'); err == nil && l != "\r\n"; l, err = r.ReadString('\n') {
		}
		c.Write([]byte("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	}
	for _, c := range []struct {
		name  string
		check fsm.HealthCheck
		reply func(net.Conn, *bufio.Reader)
	}{
		{"http", fsm.HealthCheck{Type: "http"}, httpReply},
		{"http digest", fsm.HealthCheck{Type: "http", Digest: md5hex("ok")}, httpReply},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s peerServer
			target := s.serve(t, c.reply)
			port := freePort(t)
			hc := c.check
			hc.Source, hc.SourcePort, hc.FWMark = src, port, 0x4d2
			ch := build(t, hc)
			for range 2 { // the fixed port again at once: no TIME_WAIT in the way
				wantOK(t, check(t, ch, target, 5*time.Second))
			}
			if p, n := s.last(); n != 2 || p.from != netip.AddrPortFrom(src, port) || p.mark != "0x4d2" {
				t.Fatalf("server saw %d connections, the last from %v with mark %q; want 2 from %v, 0x4d2", n, p.from, p.mark, netip.AddrPortFrom(src, port))
			}
			hc.Source, hc.SourcePort, hc.FWMark = netip.MustParseAddr("192.0.2.1"), 0, 0
			wantFail(t, check(t, build(t, hc), target, 5*time.Second), "source 192.0.2.1: not an address of this node")
			hc.Source = netip.Addr{}
			wantOK(t, check(t, build(t, hc), target, 5*time.Second))
			if p, _ := s.last(); p.from.Addr() != netip.MustParseAddr("127.0.0.1") || p.mark != "" {
				t.Fatalf("without settings: from %v, mark %q; want 127.0.0.1 and none", p.from, p.mark)
			}
		})
	}
	t.Run("tcp connect", func(t *testing.T) {
		l := listenTCP(t)
		port := freePort(t)
		seen := make(chan netip.AddrPort, 1)
		go func() {
			if c, err := l.Accept(); err == nil {
				seen <- addrPort(t, c.RemoteAddr())
				c.Close()
			}
		}()
		wantOK(t, check(t, build(t, fsm.HealthCheck{Type: "tcp", Source: src, SourcePort: port, FWMark: 7}), addrPort(t, l.Addr()), 5*time.Second))
		select {
		case from := <-seen:
			if from != netip.AddrPortFrom(src, port) {
				t.Fatalf("connection from %v, want %v", from, netip.AddrPortFrom(src, port))
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no connection accepted")
		}
		wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "tcp", Source: netip.MustParseAddr("192.0.2.1")}), addrPort(t, l.Addr()), 5*time.Second), "not an address of this node")
	})
}

// The checkers that run on goroutines set the same socket options.
func TestCheckSocketOffTheLoop(t *testing.T) {
	needSS(t)
	src := netip.MustParseAddr("127.0.0.3")
	smtpReply := func(c net.Conn, r *bufio.Reader) {
		c.Write([]byte("220 mx ESMTP\r\n"))
		r.ReadString('\n')
		c.Write([]byte("250 mx\r\n"))
		r.ReadString('\n')
		c.Write([]byte("221 bye\r\n"))
	}
	for _, c := range []struct {
		name  string
		check fsm.HealthCheck
		reply func(net.Conn, *bufio.Reader)
	}{
		{"tcp expect", fsm.HealthCheck{Type: "tcp", Expect: "^220 "}, banner("220 mx ESMTP\r\n")},
		{"smtp", fsm.HealthCheck{Type: "smtp"}, smtpReply},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s peerServer
			target := s.serve(t, c.reply)
			hc := c.check
			hc.Source, hc.FWMark = src, 99
			wantOK(t, check(t, build(t, hc), target, 5*time.Second))
			if p, _ := s.last(); p.from.Addr() != src || p.mark != "0x63" {
				t.Fatalf("server saw %v, mark %q; want %v and 0x63", p.from, p.mark, src)
			}
			hc.Source = netip.MustParseAddr("::1")
			wantFail(t, check(t, build(t, hc), target, 5*time.Second), "source ::1 and target 127.0.0.1: not one address family")
		})
	}
	t.Run("udp", func(t *testing.T) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		from := make(chan net.Addr, 1)
		go func() {
			b := make([]byte, 64)
			n, a, err := pc.ReadFrom(b)
			if err == nil {
				from <- a
				pc.WriteTo(b[:n], a)
			}
		}()
		wantOK(t, check(t, build(t, fsm.HealthCheck{Type: "udp", Send: "ping", Source: src, FWMark: 5}), addrPort(t, pc.LocalAddr()), 5*time.Second))
		if a := <-from; !strings.HasPrefix(a.String(), src.String()+":") {
			t.Fatalf("datagram from %v, want %v", a, src)
		}
	})
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

package check

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// startUDPEcho answers "pong:" + the payload, except to "silent".
func startUDPEcho(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			if string(buf[:n]) != "silent" {
				pc.WriteTo(append([]byte("pong:"), buf[:n]...), from)
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("udp echo server did not stop within 5s")
		}
	})
	return addrPort(t, pc.LocalAddr())
}

// closedUDPPort returns a local port nothing listens on.
func closedUDPPort(t *testing.T) netip.AddrPort {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := addrPort(t, pc.LocalAddr())
	pc.Close()
	return ap
}

func TestUDP(t *testing.T) {
	target := startUDPEcho(t)
	t.Run("match", func(t *testing.T) {
		wantOK(t, check(t, build(t, fsm.HealthCheck{Type: "udp", Send: "ping", Expect: "^pong:ping$"}), target, 5*time.Second))
	})
	t.Run("any reply", func(t *testing.T) {
		wantOK(t, check(t, build(t, fsm.HealthCheck{Type: "udp", Send: "ping"}), target, 5*time.Second))
	})
	t.Run("mismatch", func(t *testing.T) {
		wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "udp", Send: "ping", Expect: "^ok"}), target, 5*time.Second),
			`reply does not match: "pong:ping"`)
	})
	t.Run("no reply", func(t *testing.T) {
		wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "udp", Send: "silent"}), target, 100*time.Millisecond), "timeout")
	})
	t.Run("port unreachable", func(t *testing.T) {
		// Fails on the ICMP error, long before the timeout.
		start := time.Now()
		wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "udp", Send: "ping"}), closedUDPPort(t), time.Minute), "port unreachable")
		if el := time.Since(start); el > 30*time.Second {
			t.Fatalf("took %v: the ICMP error was not seen", el)
		}
	})
}

package check

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

func listenTCP(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// acceptEach hands each connection ln accepts to handle, on its own
// goroutine, until ln is closed.
func acceptEach(ln net.Listener, handle func(net.Conn)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
}

func addrPort(t *testing.T, a net.Addr) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// closedTCPPort returns a local port nothing listens on.
func closedTCPPort(t *testing.T) netip.AddrPort {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := addrPort(t, l.Addr())
	l.Close()
	return ap
}

func TestTCP(t *testing.T) {
	ch := build(t, fsm.HealthCheck{Type: "tcp"})
	t.Run("listening", func(t *testing.T) {
		l := listenTCP(t)
		wantOK(t, check(t, ch, addrPort(t, l.Addr()), 5*time.Second))
	})
	t.Run("closed", func(t *testing.T) {
		wantFail(t, check(t, ch, closedTCPPort(t), 5*time.Second), "refused")
	})
}

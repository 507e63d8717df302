package bgp

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
)

// A speaker whose router never answers: what it records and logs, without
// root or a network.
func TestSpeakerBookkeeping(t *testing.T) {
	base := runtime.NumGoroutine()
	var logs harness.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := goodConfig()
	cfg.Peers[0].Address = netip.MustParseAddr("127.0.0.2") // nothing listens: the session stays down
	cfg.Peers[0].BFD = &BFD{}
	s, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Peers[0].HoldTime != 0 {
		t.Fatalf("New changed the caller's peers: hold time %s", cfg.Peers[0].HoldTime)
	}
	vip := netip.MustParsePrefix("10.99.0.1/32")
	other := netip.MustParsePrefix("fd99::1/128")
	c1 := Community(65001<<16 | 7)

	if err := s.Drain(vip); !errors.Is(err, ErrNotAnnounced) {
		t.Fatalf("drain before announce: %v; want ErrNotAnnounced", err)
	}
	for range 2 { // the second changes nothing and logs nothing
		if err := s.Announce(vip, c1); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Announce(other); err != nil {
		t.Fatal(err)
	}
	if err := s.Announce(netip.MustParsePrefix("10.99.0.1/24")); err == nil || !strings.Contains(err.Error(), "10.99.0.1/24") {
		t.Fatalf("announce of a prefix with host bits: %v; want an error naming it", err)
	}
	if err := s.Drain(vip); err != nil {
		t.Fatal(err)
	}
	if err := s.Drain(vip); err != nil { // already drained: nothing to do
		t.Fatal(err)
	}
	got := s.Announced()
	if !slices.Equal(got[vip], []Community{c1, GracefulShutdown}) || len(got[other]) != 0 || len(got) != 2 {
		t.Fatalf("announced %v; want %s with %s and 65535:0, and %s", got, vip, c1, other)
	}
	// Announcing again ends the drain.
	if err := s.Announce(vip, c1); err != nil {
		t.Fatal(err)
	}
	if got := s.Announced()[vip]; !slices.Equal(got, []Community{c1}) {
		t.Fatalf("after a new announce: %v; want %s alone", got, c1)
	}
	if err := s.Withdraw(other); err != nil {
		t.Fatal(err)
	}
	if err := s.Withdraw(other); err != nil { // not announced: nothing to do
		t.Fatal(err)
	}
	st, err := s.Peers()
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].Address != cfg.Peers[0].Address || st[0].AS != 65000 || st[0].State == "established" ||
		st[0].BFD == "" || st[0].BFD == "up" || len(st[0].Announced) != 0 {
		t.Fatalf("peers %+v; want the one peer, not established, BFD not up, nothing advertised", st)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for name, err := range map[string]error{
		"announce": s.Announce(vip), "withdraw": s.Withdraw(vip), "drain": s.Drain(vip),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("%s after Close: %v; want ErrClosed", name, err)
		}
	}
	if _, err := s.Peers(); !errors.Is(err, ErrClosed) {
		t.Fatalf("peers after Close: %v; want ErrClosed", err)
	}
	// Close stopped every goroutine, GoBGP's too.
	harness.Eventually(t, 5*time.Second, "the goroutines before New", func() (bool, string) {
		n := runtime.NumGoroutine()
		if n <= base {
			return true, ""
		}
		buf := make([]byte, 1<<16)
		return false, string(buf[:runtime.Stack(buf, true)])
	})

	out := logs.String()
	for line, want := range map[string]int{
		`msg="bgp announce" prefix=10.99.0.1/32`:                              2, // the first, and the one that ended the drain
		`msg="bgp announce" prefix=fd99::1/128`:                               1,
		`msg="bgp drain" prefix=10.99.0.1/32 communities="[65001:7 65535:0]"`: 1,
		`msg="bgp withdraw" prefix=fd99::1/128`:                               1,
		`msg="bgp speaker started"`:                                           1,
		`msg="bgp speaker stopped" withdrawn=1`:                               1,
	} {
		if n := strings.Count(out, line); n != want {
			t.Errorf("%d lines with %s; want %d\n%s", n, line, want, out)
		}
	}
	// GoBGP's own chatter stays out: only its warnings and errors pass.
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "component=gobgp") && !strings.Contains(l, "level=WARN") && !strings.Contains(l, "level=ERROR") {
			t.Errorf("GoBGP's line below its warnings: %s", l)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	c := goodConfig()
	c.LocalAS = 0
	if s, err := New(c, nil); err == nil || s != nil {
		t.Fatalf("New with local AS 0: %v, %v; want an error and no speaker", s, err)
	}
}

// Listen on: the speaker accepts connections there until Close; off (the
// default) it accepts none.
func TestSpeakerListens(t *testing.T) {
	addr := netip.MustParseAddrPort(harness.FreeAddr(t))
	cfg := goodConfig()
	cfg.Peers[0].Address = netip.MustParseAddr("127.0.0.2")
	cfg.Listen = addr
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	c.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts after Close", addr)
	}
}

// A listen address already taken: New fails naming it, and leaves no
// goroutine behind.
func TestNewListenInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	base := runtime.NumGoroutine()
	cfg := goodConfig()
	cfg.Listen = netip.MustParseAddrPort(ln.Addr().String())
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err == nil || s != nil || !strings.Contains(err.Error(), "listen "+ln.Addr().String()) {
		t.Fatalf("New on a taken address: %v, %v; want an error naming %s", s, err, ln.Addr())
	}
	harness.Eventually(t, 5*time.Second, "the goroutines before New", func() (bool, string) {
		return runtime.NumGoroutine() <= base, ""
	})
}

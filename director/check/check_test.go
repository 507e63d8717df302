package check

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// build validates c as the configuration path would, then builds it.
func build(t *testing.T, c fsm.HealthCheck) Checker {
	t.Helper()
	if err := fsm.ValidateHealthCheck("test check", &c); err != nil {
		t.Fatalf("invalid check %+v: %v", c, err)
	}
	ch, err := New(c, Options{})
	if err != nil {
		t.Fatalf("New(%+v): %v", c, err)
	}
	return ch
}

// check runs one check with a timeout, on onLoop when a test has set it.
func check(t *testing.T, ch Checker, target netip.AddrPort, timeout time.Duration) Result {
	t.Helper()
	if onLoop != nil {
		return loopCheck(t, onLoop, ch, target, timeout)
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	return ch.Check(ctx, target)
}

func wantOK(t *testing.T, r Result) {
	t.Helper()
	if !r.OK {
		t.Fatalf("check failed, want OK: %+v", r)
	}
	if r.Latency <= 0 {
		t.Errorf("latency %v, want > 0", r.Latency)
	}
}

func wantFail(t *testing.T, r Result, detail string) {
	t.Helper()
	if r.OK {
		t.Fatalf("check OK, want a failure with %q: %+v", detail, r)
	}
	if !strings.Contains(r.Detail, detail) {
		t.Fatalf("detail %q, want it to contain %q", r.Detail, detail)
	}
}

// wantResult: OK with exactly detail, or a failure whose detail contains it.
func wantResult(t *testing.T, r Result, ok bool, detail string) {
	t.Helper()
	if !ok {
		wantFail(t, r, detail)
		return
	}
	wantOK(t, r)
	if r.Detail != detail {
		t.Errorf("detail %q, want %q", r.Detail, detail)
	}
}

func TestEveryTypeRegistered(t *testing.T) {
	if got, want := types(), slices.Sorted(slices.Values(fsm.CheckTypes)); !slices.Equal(got, want) {
		t.Fatalf("registered %v, want fsm.CheckTypes %v", got, want)
	}
}

func TestNewUnknownType(t *testing.T) {
	if _, err := New(fsm.HealthCheck{Type: "sip"}, Options{}); err == nil || !strings.Contains(err.Error(), "sip") {
		t.Fatalf("New(sip) = %v, want an unknown-type error", err)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("registering tcp again did not panic")
		}
	}()
	Register("tcp", newTCP)
}

func TestTarget(t *testing.T) {
	server := netip.MustParseAddrPort("10.0.0.1:80")
	for _, tc := range []struct {
		name string
		c    fsm.HealthCheck
		want string
	}{
		{"none", fsm.HealthCheck{}, "10.0.0.1:80"},
		{"address", fsm.HealthCheck{Address: netip.MustParseAddr("10.0.0.9")}, "10.0.0.9:80"},
		{"port", fsm.HealthCheck{Port: 8080}, "10.0.0.1:8080"},
		{"both", fsm.HealthCheck{Address: netip.MustParseAddr("fd00::9"), Port: 9090}, "[fd00::9]:9090"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Target(tc.c, server); got.String() != tc.want {
				t.Fatalf("Target = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCanceledNotTimeout: a check whose context is canceled (leadership
// lost) says so, rather than "timeout".
func TestCanceledNotTimeout(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ch := build(t, fsm.HealthCheck{Type: "udp", Send: "ping"})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	target := addrPort(t, pc.LocalAddr())
	done := make(chan Result, 1)
	go func() { done <- ch.Check(ctx, target) }()
	// Cancel once the request has arrived, so that the check is waiting.
	buf := make([]byte, 16)
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := pc.ReadFrom(buf); err != nil {
		t.Fatalf("no request within 10s: %v", err)
	}
	cancel()
	select {
	case r := <-done:
		wantFail(t, r, "canceled")
	case <-time.After(10 * time.Second):
		t.Fatal("the check ignored the cancellation for 10s")
	}
}

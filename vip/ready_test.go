package vip

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// fakeWorld is the kernel as a Tracker test sets it.
type fakeWorld struct {
	carrier map[string]bool
	answers map[netip.Addr]bool
	scripts map[string]bool
	ran     int
}

func (w *fakeWorld) tracker(changes *[]string) *Tracker {
	return &Tracker{
		Links:   func() []string { return []string{"eth1", "eth1"} },
		Addrs:   []netip.Addr{netip.MustParseAddr("10.1.0.1")},
		Scripts: []string{"check-upstream"},
		Every:   2,
		Log:     slog.New(slog.DiscardHandler),
		OnChange: func(ready bool, reason string) {
			if ready {
				*changes = append(*changes, "ready")
			} else {
				*changes = append(*changes, "unready: "+reason)
			}
		},
		link: func(name string) (bool, string) {
			if w.carrier[name] {
				return true, ""
			}
			return false, "no carrier"
		},
		ping: func(_ context.Context, a netip.Addr) error {
			if w.answers[a] {
				return nil
			}
			return errors.New("no answer")
		},
		run: func(_ context.Context, s string) error {
			w.ran++
			if w.scripts[s] {
				return nil
			}
			return errors.New("exit status 1")
		},
	}
}

func TestTrackerRiseFallAndCarrier(t *testing.T) {
	gw := netip.MustParseAddr("10.1.0.1")
	w := &fakeWorld{carrier: map[string]bool{"eth1": true}, answers: map[netip.Addr]bool{gw: true}, scripts: map[string]bool{"check-upstream": true}}
	var changes []string
	tr := w.tracker(&changes)
	ctx := context.Background()
	step := func(n int) {
		for range n {
			tr.Step(ctx)
		}
	}
	step(1)
	if strings.Join(changes, "|") != "ready" {
		t.Fatalf("after the first step: %q, want one ready", changes)
	}
	// Carrier counts at once.
	w.carrier["eth1"] = false
	step(1)
	if got := changes[len(changes)-1]; got != "unready: link eth1: no carrier" {
		t.Fatalf("carrier lost: %q", got)
	}
	w.carrier["eth1"] = true
	step(1)
	if got := changes[len(changes)-1]; got != "ready" {
		t.Fatalf("carrier back: %q", got)
	}
	// The gateway goes down after 3 misses, not before; up after 2 answers.
	n := len(changes)
	w.answers[gw] = false
	step(2)
	if len(changes) != n {
		t.Fatalf("unready after 2 misses: %q", changes[n:])
	}
	step(1)
	if got := changes[len(changes)-1]; got != "unready: address 10.1.0.1: no answer (3 failures in a row)" {
		t.Fatalf("after 3 misses: %q", got)
	}
	w.answers[gw] = true
	step(1)
	if got := changes[len(changes)-1]; !strings.HasPrefix(got, "unready") {
		t.Fatalf("ready after 1 answer: %q", got)
	}
	step(1)
	if got := changes[len(changes)-1]; got != "ready" {
		t.Fatalf("after 2 answers: %q", got)
	}
	// Scripts run every Every steps and fall like addresses.
	ran := w.ran
	step(4)
	if w.ran-ran != 2 {
		t.Fatalf("script ran %d times in 4 steps, want 2 (every 2)", w.ran-ran)
	}
	w.scripts["check-upstream"] = false
	step(6)
	if got := changes[len(changes)-1]; got != `unready: track script "check-upstream": exit status 1 (3 failures in a row)` {
		t.Fatalf("failing script: %q", got)
	}
	// While it stays down, the reason stays as it was: no new readiness
	// (and no gossip) with every failed probe.
	n = len(changes)
	step(4)
	if len(changes) != n {
		t.Fatalf("readiness changed while nothing did: %q", changes[n:])
	}
	// Every reason is given, links first.
	w.carrier["eth1"] = false
	tr.Extra = func() (bool, string) { return false, "kernel table: 2 operations failing" }
	step(1)
	want := `unready: link eth1: no carrier; track script "check-upstream": exit status 1 (3 failures in a row); kernel table: 2 operations failing`
	if got := changes[len(changes)-1]; got != want {
		t.Fatalf("several causes:\n%q\nwant\n%q", got, want)
	}
}

func TestLinkServes(t *testing.T) {
	const up, lowerUp = 0x1, 0x10000
	for _, tc := range []struct {
		raw  uint32
		oper netlink.LinkOperState
		ok   bool
		why  string
	}{
		{up | lowerUp, netlink.OperUp, true, ""},
		{up | lowerUp, netlink.OperUnknown, true, ""}, // dummy, loopback: no operstate
		{up, netlink.OperLowerLayerDown, false, "no carrier"},
		{lowerUp, netlink.OperDown, false, "administratively down"},
		{up | lowerUp, netlink.OperDormant, false, "operational state dormant"},
	} {
		ok, why := linkServes(tc.raw, tc.oper)
		if ok != tc.ok || why != tc.why {
			t.Errorf("linkServes(%#x, %v) = %v %q, want %v %q", tc.raw, tc.oper, ok, why, tc.ok, tc.why)
		}
	}
}

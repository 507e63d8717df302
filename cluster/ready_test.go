package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
)

func TestReadyTarget(t *testing.T) {
	alive := func(id string, applied uint64, ready bool) readyServer {
		return readyServer{ID: id, Voter: true, Gossip: GossipAlive, Applied: applied, Ready: ready}
	}
	self := readyServer{ID: "n1", Self: true, Voter: true, Gossip: GossipAlive, Applied: 1000}
	unready := Readiness{Reason: "vip link eth1: no carrier"}
	for _, tc := range []struct {
		name    string
		self    Readiness
		servers []readyServer
		to      string
		keep    string // part of the reason for keeping
	}{
		{"ready leader keeps", Readiness{Ready: true}, []readyServer{self, alive("n2", 1000, true)}, "", ""},
		{"unready hands to the ready one", unready, []readyServer{self, alive("n2", 1000, false), alive("n3", 1000, true)}, "n3", ""},
		{"the furthest applied, then the lowest ID", unready, []readyServer{self, alive("n3", 1000, true), alive("n2", 1000, true), alive("n4", 999, true)}, "n2", ""},
		{"none ready: keep, never flap", unready, []readyServer{self, alive("n2", 1000, false), alive("n3", 1000, false)}, "", "no other voter is ready"},
		{"dead, non-voter and lagging do not count", unready, []readyServer{
			self,
			{ID: "n2", Voter: true, Gossip: GossipDead, Applied: 1000, Ready: true},
			{ID: "n3", Voter: false, Gossip: GossipAlive, Applied: 1000, Ready: true},
			alive("n4", 1000-MaxPromoteLag-1, true),
		}, "", "keeping leadership"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			to, keep := readyTarget(tc.self, tc.servers, 1000)
			if to != tc.to {
				t.Errorf("target %q, want %q (keep: %s)", to, tc.to, keep)
			}
			if tc.keep != "" && !strings.Contains(keep, tc.keep) {
				t.Errorf("reason to keep %q, want it to say %q", keep, tc.keep)
			}
			if tc.to != "" && keep != "" {
				t.Errorf("a target and a reason to keep: %q, %q", to, keep)
			}
		})
	}
}

// A node's readiness reaches the others through gossip, and back.
func TestReadinessIsGossiped(t *testing.T) {
	const token = "0123456789abcdef0123"
	a, aAddr := startTestGossip(t, "a", token, "1.0")
	b, _ := startTestGossip(t, "b", token, "1.0")
	if _, err := b.join([]string{aAddr}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, "a sees b alive and ready", func() (bool, string) {
		m := stateOf(a, "b")
		return m.State == GossipAlive && m.Unready == "", m.State + " " + m.Unready
	})
	b.setUnready("vip link eth1: no carrier")
	harness.Eventually(t, 10*time.Second, "a sees b unready", func() (bool, string) {
		m := stateOf(a, "b")
		return m.Unready == "vip link eth1: no carrier", m.Unready
	})
	b.setUnready("")
	harness.Eventually(t, 10*time.Second, "a sees b ready again", func() (bool, string) {
		m := stateOf(a, "b")
		return m.Unready == "", m.Unready
	})
}

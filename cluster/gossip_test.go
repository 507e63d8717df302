package cluster

import (
	"log/slog"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
)

func startTestGossip(t *testing.T, id, token string, version string) (*gossip, string) {
	t.Helper()
	addr := harness.FreeAddr(t)
	g, err := startGossip(id, GossipConfig{Addr: addr, Key: GossipKey(token), Profile: "local"}, Meta{Version: version, Protocol: 1, APIAddr: id + ":api"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.shutdown)
	return g, addr
}

func stateOf(g *gossip, id string) GossipMember {
	for _, m := range g.view() {
		if m.ID == id {
			return m
		}
	}
	return GossipMember{State: GossipUnknown}
}

// Gossip carries each node's meta, tells a leave from a death, and admits
// only nodes with the same token.
func TestGossipMetaLeaveAndDeath(t *testing.T) {
	const token = "0123456789abcdef0123"
	a, aAddr := startTestGossip(t, "a", token, "1.0")
	b, _ := startTestGossip(t, "b", token, "1.1")
	c, _ := startTestGossip(t, "c", token, "1.2")
	for _, g := range []*gossip{b, c} {
		if _, err := g.join([]string{aAddr}); err != nil {
			t.Fatal(err)
		}
	}
	harness.Eventually(t, 10*time.Second, "a sees b and c alive with their versions", func() (bool, string) {
		mb, mc := stateOf(a, "b"), stateOf(a, "c")
		return mb.State == GossipAlive && mb.Version == "1.1" && mc.State == GossipAlive && mc.APIAddr == "c:api", mb.State + " " + mc.State
	})
	start := time.Now()
	c.shutdown() // a crash: no goodbye
	harness.Eventually(t, 30*time.Second, "c dead", func() (bool, string) { m := stateOf(a, "c"); return m.State == GossipDead, m.State })
	t.Logf("c declared dead after %s", time.Since(start).Round(time.Millisecond))
	if m := stateOf(a, "c"); m.Version != "1.2" {
		t.Fatalf("dead c's last known version = %q, want 1.2", m.Version)
	}
	b.leave(time.Second)
	harness.Eventually(t, 10*time.Second, "b left", func() (bool, string) { m := stateOf(a, "b"); return m.State == GossipLeft, m.State })

	stranger, _ := startTestGossip(t, "x", "another token, same length", "1.0")
	if _, err := stranger.join([]string{aAddr}); err == nil {
		t.Fatal("a node with another token joined the gossip")
	}
	if m := stateOf(a, "x"); m.State != GossipUnknown {
		t.Fatalf("a knows the stranger: %+v", m)
	}
}

package cluster

import (
	"encoding/json"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

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
	// memberlist may deliver the leaving update late or not at all; b is
	// then found gone by the probes. Either way it is not alive.
	b.leave(time.Second)
	harness.Eventually(t, 30*time.Second, "b gone", func() (bool, string) {
		m := stateOf(a, "b")
		return m.State == GossipLeft || m.State == GossipDead, m.State
	})

	stranger, _ := startTestGossip(t, "x", "another token, same length", "1.0")
	if _, err := stranger.join([]string{aAddr}); err == nil {
		t.Fatal("a node with another token joined the gossip")
	}
	if m := stateOf(a, "x"); m.State != GossipUnknown {
		t.Fatalf("a knows the stranger: %+v", m)
	}
}

// A process that gossiped "leaving" is left, also when memberlist later
// reports it gone as it reports a death; a new process under the same name
// is alive again.
func TestGossipTellsALeaveFromADeath(t *testing.T) {
	g := &gossip{id: "a", log: slog.New(slog.DiscardHandler), members: map[string]*GossipMember{}, said: map[string]string{}, clock: time.Now}
	node := func(m Meta) *memberlist.Node {
		b, _ := json.Marshal(m)
		return &memberlist.Node{Name: "b", Addr: net.ParseIP("127.0.0.1"), Port: 7946, Meta: b}
	}
	first := Meta{Version: "1.0", Boot: "one"}
	g.record(node(first), GossipAlive)
	if m := stateOf(g, "b"); m.State != GossipAlive {
		t.Fatalf("joined: %s", m.State)
	}
	g.record(node(Meta{Version: "1.0", Boot: "one", Leaving: true}), GossipAlive)
	if m := stateOf(g, "b"); m.State != GossipLeft {
		t.Fatalf("said leaving: %s, want left", m.State)
	}
	g.record(node(first), GossipDead) // memberlist: gone
	if m := stateOf(g, "b"); m.State != GossipLeft || m.Version != "1.0" {
		t.Fatalf("gone after leaving: %+v, want left", m)
	}
	g.record(node(Meta{Version: "1.1", Boot: "two"}), GossipAlive) // restarted
	if m := stateOf(g, "b"); m.State != GossipAlive || m.Version != "1.1" {
		t.Fatalf("restarted: %+v, want alive at 1.1", m)
	}
	g.record(node(Meta{Version: "1.1", Boot: "two"}), GossipDead) // crashed
	if m := stateOf(g, "b"); m.State != GossipDead {
		t.Fatalf("crashed: %s, want dead", m.State)
	}
}

package cluster

import (
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
)

// TestGossipKeyRotation: a node that installed the new key (step one)
// reads a node that already sends with it (step two), and the other way
// round, since the old key stays installed.
func TestGossipKeyRotation(t *testing.T) {
	const oldToken, newToken = "0123456789abcdef-old", "0123456789abcdef-new"
	a, aAddr := startTestGossip(t, "a", oldToken, "1.0")
	b, _ := startTestGossip(t, "b", oldToken, "1.0")
	if _, err := b.join([]string{aAddr}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, "a sees b", func() (bool, string) { m := stateOf(a, "b"); return m.State == GossipAlive, m.State })
	na, nb := &Node{gossip: a}, &Node{gossip: b}
	for _, n := range []*Node{na, nb} {
		if err := n.InstallGossipKey(GossipKey(newToken)); err != nil {
			t.Fatal(err)
		}
		if !n.GossipPrimaryKey(GossipKey(oldToken)) {
			t.Fatal("installing a key changed the primary")
		}
	}
	if err := nb.UseGossipKey(GossipKey(newToken)); err != nil {
		t.Fatal(err)
	}
	b.setUnready("b sends with the new key")
	harness.Eventually(t, 10*time.Second, "a reads b's update sealed with the new key", func() (bool, string) {
		m := stateOf(a, "b")
		return m.Unready == "b sends with the new key", m.State + " " + m.Unready
	})
	a.setUnready("a sends with the old key")
	harness.Eventually(t, 10*time.Second, "b reads a's update sealed with the old key", func() (bool, string) {
		m := stateOf(b, "a")
		return m.Unready == "a sends with the old key", m.State + " " + m.Unready
	})
	if err := (&Node{}).InstallGossipKey(GossipKey(newToken)); err == nil {
		t.Error("a node without gossip installed a key")
	}
}

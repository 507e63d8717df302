package cluster

import (
	"cmp"
	"fmt"
	"slices"
)

// Readiness is whether this node can serve the VIPs: its VIP links have
// carrier, its tracked gateways answer, its kernel table is applied, its
// track scripts pass (the daemon composes it). Raft cannot see any of
// that, so a leader that lost its VIP link would keep leading and
// black-hole the clients; the leader hands leadership to a node that can
// serve instead.
type Readiness struct {
	Ready  bool
	Reason string // why not, when not ready
}

// readyServer is one voter as the leader sees it when it decides whether
// to hand leadership over for readiness.
type readyServer struct {
	ID      string
	Self    bool
	Voter   bool
	Gossip  string // GossipAlive, ...
	Applied uint64
	Ready   bool
}

// readyTarget returns the member that should lead instead of this
// unready leader, or "" and why no member should. A target is a voter
// that gossip sees alive, that says it is ready, and whose log is caught
// up; among several, the furthest applied, then the lowest ID, so that
// every evaluation picks the same one. When no member is ready the leader
// stays: moving leadership among nodes that cannot serve only moves the
// outage.
func readyTarget(self Readiness, servers []readyServer, commit uint64) (string, string) {
	if self.Ready {
		return "", ""
	}
	var cands []readyServer
	for _, s := range servers {
		if s.Self || !s.Voter || s.Gossip != GossipAlive || !s.Ready || s.Applied+MaxPromoteLag < commit {
			continue
		}
		cands = append(cands, s)
	}
	if len(cands) == 0 {
		return "", fmt.Sprintf("not ready (%s), and no other voter is ready, alive and caught up: keeping leadership", self.Reason)
	}
	slices.SortFunc(cands, func(a, b readyServer) int {
		if c := cmp.Compare(b.Applied, a.Applied); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return cands[0].ID, ""
}

// SetReadiness records whether this node can serve, gossips it to the
// others, and, on a leader that cannot serve, has the leader's loop look
// for a node that can at once.
func (n *Node) SetReadiness(r Readiness) {
	if r.Ready {
		r.Reason = ""
	} else if r.Reason == "" {
		r.Reason = "not ready"
	}
	old := n.readiness.Swap(&r)
	if old != nil && *old == r {
		return
	}
	n.log.Info("readiness changed", "node", n.cfg.NodeID, "ready", r.Ready, "reason", r.Reason)
	if n.gossip != nil {
		n.gossip.setUnready(r.Reason)
	}
	select {
	case n.readyChanged <- struct{}{}:
	default:
	}
}

// Readiness returns what SetReadiness last recorded (ready until told).
func (n *Node) Readiness() Readiness {
	if r := n.readiness.Load(); r != nil {
		return *r
	}
	return Readiness{Ready: true}
}

// readyView is the voters as the leader's readiness decision needs them.
func (n *Node) readyView() []readyServer {
	var out []readyServer
	members := map[string]GossipMember{}
	if n.gossip != nil {
		for _, m := range n.gossip.view() {
			members[m.ID] = m
		}
	}
	for _, s := range n.pilotView() {
		rs := readyServer{ID: s.ID, Self: s.Self, Voter: s.Voter, Gossip: s.Gossip, Applied: s.Applied}
		if m, ok := members[s.ID]; ok {
			rs.Ready = m.Unready == ""
		}
		out = append(out, rs)
	}
	return out
}

// handOverIfUnready runs on the leader's loop: an unready leader hands
// leadership to the member readyTarget names. said keeps the reason it
// last kept leadership, so that the log says it once per episode.
func (n *Node) handOverIfUnready(said *string) {
	to, keep := readyTarget(n.Readiness(), n.readyView(), n.raft.CommitIndex())
	if to == "" {
		if keep != "" && keep != *said {
			n.log.Warn("leader cannot serve", "node", n.cfg.NodeID, "decision", keep)
		}
		*said = keep
		return
	}
	*said = ""
	n.log.Warn("leader cannot serve; handing leadership to a node that can", "node", n.cfg.NodeID, "reason", n.Readiness().Reason, "to", to)
	if _, err := n.Transfer(to); err != nil {
		n.log.Warn("hand-over for readiness failed; retried on the next change or tick", "to", to, "err", err)
	}
}

package cluster

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// A node ID is one node's for good: its data dir, its certificate and the
// Raft configuration all name it. A join under an ID the configuration
// holds at another Raft address is therefore either a second process
// claiming a live node's name, which must change nothing (Raft would
// otherwise move the member's address to the newcomer and silently drop
// the real node from the configuration), or the explicit replacement of a
// dead node (ipvsmand --replace). This file decides which, from what the
// leader knows of the member: gossip, and its own Raft heartbeats.

// joinKind is what the leader does with a join.
type joinKind int

const (
	joinNew     joinKind = iota // an ID the configuration lacks: add it
	joinAgain                   // the ID at its own Raft address: a restart; keep its suffrage
	joinReplace                 // the ID of a dead member at another address, asked for: replace it
)

// heartbeatState is what the leader's own heartbeats say of a member.
type heartbeatState int

const (
	heartbeatUnknown heartbeatState = iota // not leading, or leading too briefly to tell
	heartbeatContact                       // the heartbeats reach it
	heartbeatFailing                       // the heartbeats fail
)

// liveness is what the leader knows of a member when a join claims its ID.
type liveness struct {
	Self        bool          // the member is the leader deciding
	Gossip      string        // GossipAlive, GossipSuspect, GossipDead, GossipLeft or GossipUnknown
	GossipFor   time.Duration // age of that gossip state
	GossipRaft  string        // the Raft address the member gossips ("": not told)
	Heartbeat   heartbeatState
	LastContact time.Duration // while failing: since the last heartbeat it answered (0: none this term)
}

// alive reports whether the member at oldAddr is up, and says how the
// leader knows, for the refusal or the replacement's log line. Gossip that
// reports the ID alive at the joining node's own address (newAddr) is the
// joining node itself, and says nothing of the member. With no evidence
// either way the member counts as alive: replacing a member is never done
// on a guess.
func (l liveness) alive(oldAddr, newAddr string) (bool, string) {
	gossipAlive := (l.Gossip == GossipAlive || l.Gossip == GossipSuspect) && l.GossipRaft != newAddr
	switch {
	case l.Self:
		return true, "it is the leader deciding this join"
	case gossipAlive && l.GossipRaft != "" && l.GossipRaft != oldAddr:
		return true, fmt.Sprintf("alive in gossip, which says it is at raft_addr %q", l.GossipRaft)
	case gossipAlive:
		return true, "alive in gossip"
	case l.Heartbeat == heartbeatContact:
		return true, "the leader's Raft heartbeats reach it"
	}
	var gossip string
	switch l.Gossip {
	case GossipDead, GossipLeft:
		gossip = fmt.Sprintf("%s in gossip for %s", l.Gossip, l.GossipFor.Round(100*time.Millisecond))
	case GossipUnknown, "":
		gossip = "unknown to gossip"
	default:
		gossip = "gossip sees only the joining node under that ID"
	}
	switch {
	case l.Heartbeat == heartbeatFailing && l.LastContact > 0:
		return false, fmt.Sprintf("%s, no answer to the leader's Raft heartbeats for %s", gossip, l.LastContact.Round(100*time.Millisecond))
	case l.Heartbeat == heartbeatFailing:
		return false, gossip + ", no answer to the leader's Raft heartbeats"
	case l.Gossip == GossipDead || l.Gossip == GossipLeft:
		return false, gossip
	}
	return true, gossip + ", and the leader has led too briefly for its Raft heartbeats to tell whether it is alive: retry in a few seconds"
}

// planJoin decides a join of node id at newAddr. known says whether the
// Raft configuration holds id, at oldAddr. A refusal is a RejectedError
// that names the ID and both addresses: nothing changes.
func planJoin(id, newAddr, oldAddr string, known, replace bool, live liveness) (joinKind, string, error) {
	if !known {
		return joinNew, "", nil
	}
	if oldAddr == newAddr {
		return joinAgain, "", nil
	}
	alive, why := live.alive(oldAddr, newAddr)
	if alive {
		return 0, why, &RejectedError{Reason: fmt.Sprintf("join of node %q at raft_addr %q refused: node %q is a live member at raft_addr %q (%s); node IDs must be unique: start this node with another --node-id (--replace takes over only a dead member's ID)", id, newAddr, id, oldAddr, why)}
	}
	if !replace {
		return 0, why, &RejectedError{Reason: fmt.Sprintf("join of node %q at raft_addr %q refused: node %q is a member at raft_addr %q (%s); to replace it with this node, make sure the old one stays down and start this node with --replace", id, newAddr, id, oldAddr, why)}
	}
	return joinReplace, why, nil
}

// heartbeats is the leader's record of the members its Raft heartbeats
// fail to reach, from Raft's observations: Raft does not expose a
// follower's last contact otherwise.
type heartbeats struct {
	mu      sync.Mutex
	since   time.Time            // when this node's leadership began; zero: not leading
	failing map[string]time.Time // ID → its last answer (zero: none) while the heartbeats fail
}

// settle is how long a leader must have led before a member that no
// heartbeat failure was observed for counts as reached: a heartbeat to a
// host that is gone fails only when its connection times out.
func (h *heartbeats) settle(heartbeat time.Duration) time.Duration {
	return raftIOTimeout + heartbeat
}

func (h *heartbeats) observe(o raft.Observation, self raft.ServerID, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch d := o.Data.(type) {
	case raft.LeaderObservation:
		h.failing = map[string]time.Time{}
		h.since = time.Time{}
		if d.LeaderID == self {
			h.since = now
		}
	case raft.FailedHeartbeatObservation:
		if h.failing == nil {
			h.failing = map[string]time.Time{}
		}
		h.failing[string(d.PeerID)] = d.LastContact
	case raft.ResumedHeartbeatObservation:
		delete(h.failing, string(d.PeerID))
	}
}

// forget drops what is known of id: its replication starts afresh.
func (h *heartbeats) forget(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.failing, id)
}

// state is what the heartbeats say of id now, and while they fail, how
// long since it last answered (0: not this term).
func (h *heartbeats) state(id string, now time.Time, settle time.Duration) (heartbeatState, time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if last, ok := h.failing[id]; ok {
		if last.IsZero() {
			return heartbeatFailing, 0
		}
		return heartbeatFailing, now.Sub(last)
	}
	if h.since.IsZero() || now.Sub(h.since) < settle {
		return heartbeatUnknown, 0
	}
	return heartbeatContact, 0
}

// watchHeartbeats feeds h from Raft's observations until the node stops.
func (n *Node) watchHeartbeats(ch <-chan raft.Observation, or *raft.Observer) {
	defer n.wg.Done()
	defer n.raft.DeregisterObserver(or)
	for {
		select {
		case <-n.done:
			return
		case o := <-ch:
			n.hb.observe(o, raft.ServerID(n.cfg.NodeID), time.Now())
		}
	}
}

// isHeartbeatNews selects the observations heartbeats records.
func isHeartbeatNews(o *raft.Observation) bool {
	switch o.Data.(type) {
	case raft.LeaderObservation, raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation:
		return true
	}
	return false
}

// liveness gathers what this (leading) node knows of member id.
func (n *Node) liveness(id string, now time.Time) liveness {
	l := liveness{Gossip: GossipUnknown, Self: id == n.cfg.NodeID}
	if m, ok := n.gossipMember(id); ok {
		l.Gossip, l.GossipFor, l.GossipRaft = m.State, now.Sub(m.Since), m.RaftAddr
	}
	l.Heartbeat, l.LastContact = n.hb.state(id, now, n.hb.settle(n.cfg.HeartbeatTimeout))
	return l
}

package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ipvsman/ipvsman/fsm"
)

// MinVoters is the smallest Raft configuration that removing a dead voter
// may leave. Below three voters one more failure stops the cluster, so a
// dead member of a three-node cluster is reported, never removed.
const MinVoters = 3

// MaxPromoteLag is how many log entries a non-voter may trail the leader's
// commit index and still count as caught up (its index reaches the leader
// through gossip, about once a second).
const MaxPromoteLag = 256

// pilotServer is one member of the Raft configuration as the leader sees
// it when it decides about promotions and removals.
type pilotServer struct {
	ID      string
	Voter   bool
	Self    bool
	Gossip  string    // GossipAlive, ..., GossipUnknown
	Since   time.Time // when the gossip state began
	Applied uint64    // gossiped applied index
}

// pilotAction is one change the leader makes to the Raft configuration.
type pilotAction struct {
	Promote bool // false: remove
	ID      string
	Why     string
}

// pilot decides promotions of caught-up non-voters and, when enabled,
// removals of long-dead members. It holds only the time each non-voter
// has been caught up since; the leader's loop calls plan periodically.
type pilot struct {
	PromoteAfter    time.Duration
	DeadAfter       time.Duration // a member dead this long is reported (once)
	RemoveDeadAfter time.Duration // 0: never remove
	healthySince    map[string]time.Time
	refused         map[string]string // last reason a dead member was kept, logged once
	reported        map[string]bool   // dead members reported in this episode
}

// plan returns at most one action: configuration changes go one at a time,
// each decided on the configuration the previous one left. notes report,
// once each, members dead for over DeadAfter and the reasons a dead member
// is kept.
func (p *pilot) plan(now time.Time, servers []pilotServer, commit uint64) (act *pilotAction, notes []string) {
	if p.healthySince == nil {
		p.healthySince, p.refused, p.reported = map[string]time.Time{}, map[string]string{}, map[string]bool{}
	}
	present := map[string]bool{}
	for _, s := range servers {
		present[s.ID] = true
		dead := !s.Self && s.Gossip == GossipDead && now.Sub(s.Since) >= p.DeadAfter
		if dead && !p.reported[s.ID] {
			suffrage := "non-voter"
			if s.Voter {
				suffrage = "voter"
			}
			notes = append(notes, fmt.Sprintf("%s (%s) dead for %s, over --dead-after %s", s.ID, suffrage, now.Sub(s.Since).Round(time.Second), p.DeadAfter))
		}
		if dead {
			p.reported[s.ID] = true
		} else {
			delete(p.reported, s.ID)
		}
		if s.Voter || s.Self {
			delete(p.healthySince, s.ID)
			continue
		}
		if s.Gossip != GossipAlive || s.Applied+MaxPromoteLag < commit {
			delete(p.healthySince, s.ID)
			continue
		}
		since, ok := p.healthySince[s.ID]
		if !ok {
			p.healthySince[s.ID] = now
			since = now
		}
		if act == nil && now.Sub(since) >= p.PromoteAfter {
			act = &pilotAction{Promote: true, ID: s.ID, Why: fmt.Sprintf("caught up (applied %d, commit %d) and alive for %s", s.Applied, commit, now.Sub(since).Round(time.Millisecond))}
		}
	}
	for id := range p.healthySince {
		if !present[id] {
			delete(p.healthySince, id)
		}
	}
	for id := range p.refused {
		if !present[id] {
			delete(p.refused, id)
		}
	}
	if act != nil || p.RemoveDeadAfter <= 0 {
		return act, notes
	}
	for _, s := range servers {
		if s.Self || s.Gossip != GossipDead || now.Sub(s.Since) < p.RemoveDeadAfter {
			delete(p.refused, s.ID)
			continue
		}
		if why := keepDead(s, servers); why != "" {
			if p.refused[s.ID] != why {
				p.refused[s.ID] = why
				notes = append(notes, fmt.Sprintf("%s dead for %s, kept: %s", s.ID, now.Sub(s.Since).Round(time.Second), why))
			}
			continue
		}
		return &pilotAction{ID: s.ID, Why: fmt.Sprintf("dead for %s (over --remove-dead-after %s)", now.Sub(s.Since).Round(time.Second), p.RemoveDeadAfter)}, notes
	}
	return nil, notes
}

// keepDead says why removing dead member s would endanger the cluster, or
// "" when it is safe: a non-voter always is; a voter only when at least
// MinVoters remain and a majority of them are alive.
func keepDead(s pilotServer, servers []pilotServer) string {
	if !s.Voter {
		return ""
	}
	voters, alive := 0, 0
	for _, o := range servers {
		if !o.Voter || o.ID == s.ID {
			continue
		}
		voters++
		if o.Self || o.Gossip == GossipAlive || o.Gossip == GossipSuspect {
			alive++
		}
	}
	if voters < MinVoters {
		return fmt.Sprintf("removing it would leave %d voters, fewer than %d", voters, MinVoters)
	}
	if alive < voters/2+1 {
		return fmt.Sprintf("only %d of the %d other voters are alive, not a majority", alive, voters)
	}
	return ""
}

// runPilot is the leader's loop over plan; it stops when leadership ends.
func (n *Node) runPilot(stop <-chan struct{}) {
	p := &pilot{PromoteAfter: n.cfg.PromoteAfter, DeadAfter: n.cfg.DeadAfter, RemoveDeadAfter: n.cfg.RemoveDeadAfter}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var kept string
	for {
		select {
		case <-stop:
			return
		case <-n.done:
			return
		case <-n.readyChanged:
			if n.IsLeader() {
				n.handOverIfUnready(&kept)
			}
			continue
		case <-tick.C:
		}
		if !n.IsLeader() {
			continue
		}
		n.handOverIfUnready(&kept)
		act, notes := p.plan(time.Now(), n.pilotView(), n.raft.CommitIndex())
		for _, note := range notes {
			n.log.Warn("dead member", "report", note)
		}
		if act != nil {
			n.pilotApply(*act)
		}
	}
}

func (n *Node) pilotView() []pilotServer {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	members := map[string]GossipMember{}
	if n.gossip != nil {
		for _, m := range n.gossip.view() {
			members[m.ID] = m
		}
	}
	var out []pilotServer
	for _, s := range f.Configuration().Servers {
		id := string(s.ID)
		ps := pilotServer{ID: id, Voter: s.Suffrage == raft.Voter, Self: id == n.cfg.NodeID, Gossip: GossipUnknown}
		if m, ok := members[id]; ok {
			ps.Gossip, ps.Since, ps.Applied = m.State, m.Since, m.Applied
		}
		out = append(out, ps)
	}
	return out
}

func (n *Node) pilotApply(a pilotAction) {
	if a.Promote {
		addr := n.addressOf(a.ID)
		if err := n.raft.AddVoter(raft.ServerID(a.ID), addr, 0, n.cfg.ApplyTimeout).Error(); err != nil {
			n.log.Warn("promotion failed", "node", a.ID, "err", err)
			return
		}
		n.log.Info("non-voter promoted to voter", "node", a.ID, "why", a.Why)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	if err := n.RemoveMember(ctx, a.ID, "ipvsmand@"+n.cfg.NodeID); err != nil {
		n.log.Warn("removal of a dead member failed", "node", a.ID, "err", err)
		return
	}
	n.log.Info("dead member removed", "node", a.ID, "why", a.Why)
}

// members returns the recorded member addresses by ID.
func (n *Node) members() map[string]fsm.Member {
	out := map[string]fsm.Member{}
	n.machine.view(func(s *fsm.State, _ uint64) {
		for k, v := range s.Members {
			out[k] = v
		}
	})
	return out
}

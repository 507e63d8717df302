package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ipvsman/ipvsman/cluster/release"
	"github.com/ipvsman/ipvsman/fsm"
)

// AddMember adds a node and records its addresses (leader only). With
// gossip a new node enters as a non-voter and the leader promotes it once
// it has caught up, so that a slow joiner never counts towards a quorum it
// cannot serve. A node already in the configuration at the same Raft
// address keeps its suffrage (only its other addresses are refreshed), so
// a restarted node may join again. A join under an ID the configuration
// holds at another Raft address is refused (identity.go): while that
// member is alive, since IDs are unique; once it is dead, unless the
// joining node asks to replace it (ReplaceMember).
func (n *Node) AddMember(ctx context.Context, m fsm.Member, actor string) error {
	return n.join(ctx, m, false, actor)
}

// ReplaceMember is AddMember for a node that may take over the ID of a
// dead member recorded at another Raft address (ipvsmand --replace). The
// dead member's address leaves the configuration and the node joins as a
// non-voter, promoted once caught up like any new node: a voter that lost
// its log must not vote before it has it again. A live member is never
// replaced.
func (n *Node) ReplaceMember(ctx context.Context, m fsm.Member, actor string) error {
	return n.join(ctx, m, true, actor)
}

func (n *Node) join(ctx context.Context, m fsm.Member, replace bool, actor string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	if m.ID == "" || m.RaftAddr == "" || m.APIAddr == "" {
		return &RejectedError{Reason: fmt.Sprintf("join of node %q: id, raft_addr and api_addr are required", m.ID)}
	}
	if err := fsm.ValidateNodeID(m.ID); err != nil {
		return &RejectedError{Reason: fmt.Sprintf("join: id: %v", err)}
	}
	for field, addr := range map[string]string{"raft_addr": m.RaftAddr, "gossip_addr": m.GossipAddr} {
		if addr == "" {
			continue
		}
		if _, err := net.ResolveTCPAddr("tcp", addr); err != nil {
			return &RejectedError{Reason: fmt.Sprintf("join of node %q: %s %q: %v", m.ID, field, addr, err)}
		}
	}
	// One decision at a time: two joins under one ID must not both be
	// judged against the configuration neither has changed yet.
	n.joinMu.Lock()
	defer n.joinMu.Unlock()
	suffrage, known := n.suffrage(m.ID)
	oldAddr := string(n.addressOf(m.ID))
	live := n.liveness(m.ID, time.Now())
	kind, why, err := planJoin(m.ID, m.RaftAddr, oldAddr, known, replace, live)
	if err != nil {
		n.log.Warn("join refused", "node", m.ID, "raft_addr", m.RaftAddr, "member_raft_addr", oldAddr, "member", why, "replace", replace, "actor", actor)
		return err
	}
	var f raft.IndexFuture
	switch {
	case kind == joinReplace:
		if err := n.raft.RemoveServer(raft.ServerID(m.ID), 0, n.cfg.ApplyTimeout).Error(); err != nil {
			return fmt.Errorf("replace %s: remove it at %s: %w", m.ID, oldAddr, err)
		}
		n.hb.forget(m.ID)
		if n.gossip != nil {
			f = n.raft.AddNonvoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, n.cfg.ApplyTimeout)
		} else {
			// Without gossip nothing would promote it.
			f = n.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, n.cfg.ApplyTimeout)
		}
	case known && suffrage == raft.Voter:
		f = n.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, n.cfg.ApplyTimeout)
	case known || n.gossip != nil:
		f = n.raft.AddNonvoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, n.cfg.ApplyTimeout)
	default:
		f = n.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, n.cfg.ApplyTimeout)
	}
	if err := f.Error(); err != nil {
		return fmt.Errorf("add %s at %s: %w", m.ID, m.RaftAddr, err)
	}
	now, _ := n.suffrage(m.ID)
	if kind == joinReplace {
		n.log.Info("member replaced", "node", m.ID, "old_raft_addr", oldAddr, "raft_addr", m.RaftAddr, "api_addr", m.APIAddr, "gossip_addr", m.GossipAddr,
			"suffrage", suffrageName(now), "old_member", why, "actor", actor)
	} else {
		n.log.Info("member added", "node", m.ID, "suffrage", suffrageName(now), "raft_addr", m.RaftAddr, "api_addr", m.APIAddr, "gossip_addr", m.GossipAddr, "rejoin", known)
	}
	if n.members()[m.ID] == m {
		return nil
	}
	_, err = n.Propose(ctx, fsm.CmdSetMember, fsm.SetMemberPayload{Member: m}, actor)
	return err
}

// InConfiguration reports whether node id is in this node's view of the
// Raft configuration, as a voter or not.
func (n *Node) InConfiguration(id string) bool {
	_, ok := n.suffrage(id)
	return ok
}

// RemoveMember removes another node from the Raft configuration (leader only).
func (n *Node) RemoveMember(ctx context.Context, id, actor string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	if id == n.cfg.NodeID {
		return &RejectedError{Reason: "the leader cannot remove itself: transfer leadership first"}
	}
	if _, ok := n.suffrage(id); !ok {
		return &RejectedError{Reason: fmt.Sprintf("node %q: not a member", id)}
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	n.log.Info("member removed", "node", id, "actor", actor)
	if _, recorded := n.members()[id]; !recorded {
		return nil
	}
	_, err := n.Propose(ctx, fsm.CmdRemoveMember, fsm.RemoveMemberPayload{ID: id}, actor)
	return err
}

func (n *Node) servers() []raft.Server {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	return f.Configuration().Servers
}

// suffrage reports id's suffrage and whether it is in the configuration.
func (n *Node) suffrage(id string) (raft.ServerSuffrage, bool) {
	for _, s := range n.servers() {
		if string(s.ID) == id {
			return s.Suffrage, true
		}
	}
	return 0, false
}

func suffrageName(s raft.ServerSuffrage) string {
	if s == raft.Voter {
		return "voter"
	}
	return "nonvoter"
}

func (n *Node) addressOf(id string) raft.ServerAddress {
	for _, s := range n.servers() {
		if string(s.ID) == id {
			return s.Address
		}
	}
	return ""
}

func (n *Node) voters() int {
	c := 0
	for _, s := range n.servers() {
		if s.Suffrage == raft.Voter {
			c++
		}
	}
	return c
}

// ProtocolGap is a member below the protocol a command needs.
type ProtocolGap struct {
	ID       string
	Version  string // "" when gossip has not seen it
	Protocol int
}

// MinProtocol is the lowest protocol among the members of the Raft
// configuration, as gossip reports them (this node's own is its build's),
// and the members at that level or unknown. A member gossip has never
// heard of counts as 0: a command newer than the oldest member must not
// enter the log on a guess.
func (n *Node) MinProtocol() (int, []ProtocolGap) {
	known := map[string]GossipMember{}
	if n.gossip != nil {
		for _, m := range n.gossip.view() {
			known[m.ID] = m
		}
	}
	lowest := fsm.CommandProtocol
	var all []ProtocolGap
	for _, s := range n.servers() {
		id := string(s.ID)
		g := ProtocolGap{ID: id, Version: release.Version, Protocol: fsm.CommandProtocol}
		if id != n.cfg.NodeID {
			m := known[id]
			g.Version, g.Protocol = m.Version, m.Protocol
		}
		all = append(all, g)
		lowest = min(lowest, g.Protocol)
	}
	var low []ProtocolGap
	for _, g := range all {
		if g.Protocol == lowest {
			low = append(low, g)
		}
	}
	return lowest, low
}

// Gate refuses a command type that some member's version could not apply.
// Commands of the base protocol are never gated: every build knows them.
func (n *Node) Gate(typ fsm.CommandType) error {
	return n.gate(typ.Since(), fmt.Sprintf("command %q", typ.String()))
}

// gate refuses what needs protocol need (what names it) while a member
// speaks less.
func (n *Node) gate(need int, what string) error {
	if need <= fsm.BaseCommandProtocol {
		return nil
	}
	have, _ := n.MinProtocol()
	if have >= need {
		return nil
	}
	var below []string
	for _, s := range n.servers() {
		id := string(s.ID)
		if id == n.cfg.NodeID {
			continue
		}
		m, ok := n.gossipMember(id)
		switch {
		case !ok || m.Version == "":
			below = append(below, id+" (version unknown: not seen in gossip)")
		case m.Protocol < need:
			below = append(below, fmt.Sprintf("%s (%s, protocol %d)", id, m.Version, m.Protocol))
		}
	}
	return &RejectedError{Reason: fmt.Sprintf("%s needs protocol %d on every member; below it: %s: upgrade them first", what, need, strings.Join(below, ", "))}
}

func (n *Node) gossipMember(id string) (GossipMember, bool) {
	if n.gossip == nil {
		return GossipMember{}, false
	}
	for _, m := range n.gossip.view() {
		if m.ID == id {
			return m, true
		}
	}
	return GossipMember{}, false
}

// gossipLoop keeps this node's gossiped applied index fresh and reconnects
// to recorded members that gossip does not see alive: a restarted node
// finds its peers in the file it kept of them (its replicated state is
// empty until the leader reaches it), and a healed partition is rejoined
// after memberlist has given up on the other side.
func (n *Node) gossipLoop() {
	defer n.wg.Done()
	peersFile := filepath.Join(n.cfg.DataDir, gossipPeersFile)
	joining := make(chan struct{}, 1)
	join := func(addrs []string) {
		select {
		case joining <- struct{}{}:
		default:
			return // the last attempt is still waiting for dead peers
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer func() { <-joining }()
			if k, err := n.gossip.join(addrs); k > 0 {
				n.log.Info("gossip joined", "node", n.cfg.NodeID, "contacted", k, "of", addrs)
			} else if err != nil {
				n.log.Debug("gossip join failed", "node", n.cfg.NodeID, "addrs", addrs, "err", err)
			}
		}()
	}
	if b, err := os.ReadFile(peersFile); err == nil {
		if addrs := strings.Fields(string(b)); len(addrs) > 0 {
			join(addrs)
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastJoin time.Time
	var kept string
	for {
		select {
		case <-n.done:
			return
		case <-tick.C:
		}
		n.gossip.setApplied(n.raft.AppliedIndex())
		alive := map[string]bool{n.cfg.NodeID: true}
		for _, m := range n.gossip.view() {
			if m.State == GossipAlive || m.State == GossipSuspect {
				alive[m.ID] = true
			}
		}
		var all, missing []string
		for id, m := range n.members() {
			if id == n.cfg.NodeID || m.GossipAddr == "" {
				continue
			}
			all = append(all, m.GossipAddr)
			if !alive[id] {
				missing = append(missing, m.GossipAddr)
			}
		}
		slices.Sort(all)
		if list := strings.Join(all, "\n"); list != kept && list != "" {
			if err := os.WriteFile(peersFile, []byte(list+"\n"), 0o600); err != nil {
				n.log.Warn("could not keep the gossip peers", "file", peersFile, "err", err)
			}
			kept = list
		}
		if len(missing) > 0 && time.Since(lastJoin) >= 5*time.Second {
			lastJoin = time.Now()
			slices.Sort(missing)
			join(missing)
		}
	}
}

// gossipPeersFile lists the other members' gossip addresses, one a line.
const gossipPeersFile = "gossip-peers"

// Draining reports whether this node is leaving the cluster.
func (n *Node) Draining() bool { return n.draining.Load() }

// BeginDrain makes this node give up every leader's duty for good: it
// tells Config.Leadership false (the VIPs go first) and, if it leads,
// hands leadership to the most up-to-date voter. It returns the leader
// afterwards. CancelDrain undoes the first part if the drain cannot go on.
func (n *Node) BeginDrain() (string, error) {
	if n.voters() <= 1 {
		if s, _ := n.suffrage(n.cfg.NodeID); s == raft.Voter {
			return "", &RejectedError{Reason: fmt.Sprintf("node %q is the only voter: nothing could take over", n.cfg.NodeID)}
		}
	}
	n.draining.Store(true)
	n.log.Info("draining", "node", n.cfg.NodeID, "leader", n.IsLeader())
	if !n.IsLeader() {
		_, lid := n.raft.LeaderWithID()
		return string(lid), nil
	}
	n.tell(false, "draining")
	to, err := n.Transfer("")
	if err != nil {
		return "", fmt.Errorf("drain of the leader: %w", err)
	}
	return to, nil
}

// CancelDrain lets the node lead again after a drain that failed.
func (n *Node) CancelDrain(why string) {
	n.draining.Store(false)
	n.log.Warn("drain cancelled", "node", n.cfg.NodeID, "why", why)
}

// FinishDrain is the last step, once the leader has removed this node
// from the configuration: it marks the data dir, leaves gossip and stops
// Raft. The process may stay up; nothing of it votes or leads any more.
func (n *Node) FinishDrain() error {
	marker := filepath.Join(n.cfg.DataDir, drainedFile)
	if err := os.WriteFile(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	if n.stopping() {
		return nil
	}
	err := n.stop()
	n.log.Info("node drained: out of the Raft configuration and gossip; stop this daemon", "node", n.cfg.NodeID)
	return err
}

const drainedFile = "drained"

// checkDrained refuses to start Raft on the log of a drained node: that
// node is no member any more, and its old configuration would have it
// call elections. With rejoin the old log is moved aside instead.
func checkDrained(dir string, rejoin bool, log *slog.Logger) error {
	b, err := os.ReadFile(filepath.Join(dir, drainedFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("data-dir %q: %w", dir, err)
	}
	when := strings.TrimSpace(string(b))
	if !rejoin {
		return fmt.Errorf("data-dir %q: this node was drained from the cluster at %s; start it with --join MEMBER_API to join again as a new member (the old log is then moved aside)", dir, when)
	}
	aside := filepath.Join(dir, "drained-"+time.Now().UTC().Format("20060102T150405"))
	if err := os.MkdirAll(aside, 0o700); err != nil {
		return fmt.Errorf("data-dir %q: %w", dir, err)
	}
	for _, name := range []string{"raft.db", "snapshots", drainedFile} {
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(aside, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("data-dir %q: move the drained log aside: %w", dir, err)
		}
	}
	log.Info("drained node rejoining: old log moved aside", "dir", aside, "drained_at", when)
	return nil
}

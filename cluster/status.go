package cluster

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ipvsman/ipvsman/cluster/release"
	"github.com/ipvsman/ipvsman/fsm"
)

// Status is one node's own view of the cluster.
type Status struct {
	ID            string         `json:"id"`
	State         string         `json:"state"` // Leader, Follower, Candidate, Shutdown
	Term          uint64         `json:"term"`
	LeaderID      string         `json:"leader_id"`
	AppliedIndex  uint64         `json:"applied_index"`
	CommitIndex   uint64         `json:"commit_index"`
	LastLogIndex  uint64         `json:"last_log_index"`
	ConfigVersion uint64         `json:"config_version"`
	Services      int            `json:"services"`
	RealServers   int            `json:"real_servers"`
	Servers       []ServerStatus `json:"servers"`
	IPVS          string         `json:"ipvs"` // the daemon's --ipvs mode

	Version     string `json:"version"`      // this build's release
	Protocol    int    `json:"protocol"`     // the newest command protocol this build speaks
	MinProtocol int    `json:"min_protocol"` // the oldest among the configuration's members, as gossip tells
	LastContact string `json:"last_contact"` // Raft: since this node last heard from a leader ("0" on the leader)
	Draining    bool   `json:"draining,omitempty"`
	Note        string `json:"note,omitempty"` // the cluster's note (a protocol 8 command of the simulated next release)
	// Gossip lists nodes gossip knows that are not in the Raft
	// configuration: drained or removed ones, and joiners not yet added.
	Gossip []ServerStatus `json:"gossip_only,omitempty"`
}

// ServerStatus is one entry of the Raft configuration as this node sees it.
type ServerStatus struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	Suffrage string `json:"suffrage"` // voter, nonvoter; "none" outside the Raft configuration
	Leader   bool   `json:"leader"`

	GossipAddr  string `json:"gossip_addr,omitempty"`
	Version     string `json:"version,omitempty"` // "" when gossip has not seen it
	Protocol    int    `json:"protocol"`
	GossipState string `json:"gossip"`        // alive, suspect, dead, left, unknown
	GossipForMS int64  `json:"gossip_for_ms"` // how long it has been in that state
	Applied     uint64 `json:"gossip_applied,omitempty"`
	// Ready is whether the member can serve the VIPs: "yes", "no" (with
	// Unready saying why), or "" when gossip has not told.
	Ready   string `json:"ready,omitempty"`
	Unready string `json:"unready,omitempty"`
}

// Status reports this node's role, indexes and the members it knows.
func (n *Node) Status() Status {
	st := n.raft.Stats()
	num := func(k string) uint64 { v, _ := strconv.ParseUint(st[k], 10, 64); return v }
	_, lid := n.raft.LeaderWithID()
	s := Status{
		ID: n.cfg.NodeID, State: n.raft.State().String(), Term: num("term"), LeaderID: string(lid),
		CommitIndex: num("commit_index"), LastLogIndex: num("last_log_index"),
	}
	var members map[string]fsm.Member
	s.AppliedIndex = n.raft.AppliedIndex()
	s.Version, s.Protocol, s.LastContact, s.Draining = release.Version, fsm.CommandProtocol, st["last_contact"], n.Draining()
	s.MinProtocol, _ = n.MinProtocol()
	n.machine.view(func(fs *fsm.State, _ uint64) {
		s.ConfigVersion = fs.Version
		s.Services = len(fs.Config.Services)
		for _, svc := range fs.Config.Services {
			s.RealServers += len(svc.Servers)
		}
		s.Note = fs.Annotations["note"]
		members = make(map[string]fsm.Member, len(fs.Members))
		for k, v := range fs.Members {
			members[k] = v
		}
	})
	gossiped := map[string]GossipMember{}
	if n.gossip != nil {
		for _, m := range n.gossip.view() {
			gossiped[m.ID] = m
		}
	}
	now := time.Now()
	withGossip := func(ss ServerStatus) ServerStatus {
		ss.GossipAddr, ss.GossipState = members[ss.ID].GossipAddr, GossipUnknown
		if m, ok := gossiped[ss.ID]; ok {
			ss.GossipAddr, ss.Version, ss.Protocol, ss.Applied = m.Addr, m.Version, m.Protocol, m.Applied
			ss.GossipState, ss.GossipForMS = m.State, now.Sub(m.Since).Milliseconds()
			if m.State == GossipAlive {
				ss.Ready, ss.Unready = readyWord(m.Unready == "", m.Unready)
			}
		}
		if ss.ID == n.cfg.NodeID {
			ss.Version, ss.Protocol = release.Version, fsm.CommandProtocol
			r := n.Readiness()
			ss.Ready, ss.Unready = readyWord(r.Ready, r.Reason)
			if n.gossip != nil {
				ss.GossipState = GossipAlive
			}
		}
		return ss
	}
	inConfig := map[string]bool{}
	for _, srv := range n.servers() {
		inConfig[string(srv.ID)] = true
		s.Servers = append(s.Servers, withGossip(ServerStatus{
			ID: string(srv.ID), RaftAddr: string(srv.Address), APIAddr: members[string(srv.ID)].APIAddr,
			Suffrage: suffrageName(srv.Suffrage), Leader: srv.ID == lid,
		}))
	}
	for id, m := range gossiped {
		if !inConfig[id] {
			ss := withGossip(ServerStatus{ID: id, RaftAddr: m.RaftAddr, APIAddr: m.APIAddr, Suffrage: "none"})
			if ss.GossipState == GossipDead {
				// Outside the configuration (drained, removed) and gone
				// from gossip: it left the cluster, however it stopped.
				ss.GossipState = GossipLeft
			}
			s.Gossip = append(s.Gossip, ss)
		}
	}
	slices.SortFunc(s.Gossip, func(a, b ServerStatus) int { return strings.Compare(a.ID, b.ID) })
	return s
}

// readyWord is readiness as status says it.
func readyWord(ready bool, reason string) (string, string) {
	if ready {
		return "yes", ""
	}
	return "no", reason
}

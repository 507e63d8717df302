package cluster

import (
	"strconv"

	"github.com/hashicorp/raft"

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
}

// ServerStatus is one entry of the Raft configuration as this node sees it.
type ServerStatus struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
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
	n.machine.view(func(fs *fsm.State, _ uint64) {
		s.ConfigVersion = fs.Version
		s.Services = len(fs.Config.Services)
		for _, svc := range fs.Config.Services {
			s.RealServers += len(svc.Servers)
		}
		members = make(map[string]fsm.Member, len(fs.Members))
		for k, v := range fs.Members {
			members[k] = v
		}
	})
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			suffrage := "voter"
			if srv.Suffrage != raft.Voter {
				suffrage = "nonvoter"
			}
			s.Servers = append(s.Servers, ServerStatus{
				ID: string(srv.ID), RaftAddr: string(srv.Address), APIAddr: members[string(srv.ID)].APIAddr,
				Suffrage: suffrage, Leader: srv.ID == lid,
			})
		}
	}
	return s
}

package server

import (
	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/director/health"
	"github.com/ipvsman/ipvsman/vip"
)

// The node's status types become their wire mirrors in cluster/api here,
// field for field (TestWireMirrorsEncodeAlike holds them to the same JSON).

func wireStatus(s cluster.Status) api.Status {
	return api.Status{
		ID: s.ID, State: s.State, Term: s.Term, LeaderID: s.LeaderID,
		AppliedIndex: s.AppliedIndex, CommitIndex: s.CommitIndex, LastLogIndex: s.LastLogIndex,
		ConfigVersion: s.ConfigVersion, Services: s.Services, RealServers: s.RealServers,
		Servers: wireServers(s.Servers), IPVS: s.IPVS,
		Version: s.Version, Protocol: s.Protocol, MinProtocol: s.MinProtocol, LastContact: s.LastContact,
		Draining: s.Draining, Note: s.Note, Gossip: wireServers(s.Gossip),
	}
}

func wireServers(in []cluster.ServerStatus) []api.ServerStatus {
	if in == nil {
		return nil
	}
	out := make([]api.ServerStatus, len(in))
	for i, s := range in {
		out[i] = api.ServerStatus(s)
	}
	return out
}

func wireReport(r *director.Report) *api.Report {
	if r == nil {
		return nil
	}
	w := api.Report(*r)
	return &w
}

func wireSync(r *director.SyncReport) *api.SyncReport {
	if r == nil {
		return nil
	}
	w := api.SyncReport{At: r.At, Err: r.Err, Why: r.Why, Conns: r.Conns, Synced: r.Synced}
	if r.Threads != nil {
		w.Threads = make([]api.SyncThread, len(r.Threads))
		for i, t := range r.Threads {
			w.Threads[i] = api.SyncThread(t)
		}
	}
	return &w
}

func wireConns(in []director.Conn) []api.Conn {
	if in == nil {
		return nil
	}
	out := make([]api.Conn, len(in))
	for i, c := range in {
		out[i] = api.Conn(c)
	}
	return out
}

func wireChecks(in []health.Status) []api.CheckStatus {
	if in == nil {
		return nil
	}
	out := make([]api.CheckStatus, len(in))
	for i, c := range in {
		out[i] = api.CheckStatus(c)
	}
	return out
}

func wireVIPs(s vip.Stats) *api.VIPStats {
	w := api.VIPStats(s)
	return &w
}

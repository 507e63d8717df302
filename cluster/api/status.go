package api

import (
	"net/netip"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// The status a node reports, as it travels. Each type mirrors the one the
// node keeps (named on each) field for field, with the same JSON, so that
// the API's clients link none of the node's packages; the daemon's server
// converts, and a test there checks that both encode alike.

// Status is the node's Raft view (cluster.Status).
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

// ServerStatus is one entry of the Raft configuration as the node sees it
// (cluster.ServerStatus).
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

// Report is the node's last reconcile of its kernel table
// (director.Report).
type Report struct {
	Index   uint64 `json:"index"`
	Version uint64 `json:"version"`
	// Fingerprint of the managed kernel table as read back from the kernel
	// by the last drift-repair round or full pass; KernelIndex is the applied index whose table
	// the kernel should have held then (0: not known), and Drift names the
	// services where it held something else (Drifted counts them all).
	Fingerprint string    `json:"fingerprint"`
	KernelIndex uint64    `json:"kernel_index"`
	KernelAt    time.Time `json:"kernel_at,omitzero"`
	Drift       []string  `json:"drift,omitempty"`
	Drifted     int       `json:"drifted,omitempty"`
	// TargetFingerprint is the table the last pass meant to program, once
	// every operation succeeded; empty after a failure.
	TargetFingerprint string    `json:"target_fingerprint"`
	Services          int       `json:"services"`
	Ops               int       `json:"ops"`
	Failed            int       `json:"failed"`
	Errors            []string  `json:"errors,omitempty"`
	At                time.Time `json:"at"`
	Took              string    `json:"took"`
}

// SyncReport is the node's connection sync threads (director.SyncReport).
type SyncReport struct {
	Threads []SyncThread `json:"threads"`
	At      time.Time    `json:"at,omitzero"`
	Err     string       `json:"error,omitempty"` // the last pass failed; retried
	// Why is why there are no threads although sync is on ("" else).
	Why string `json:"why,omitempty"`
	// Conns and Synced count the connection table's entries, and those
	// learnt from another node's master.
	Conns  int `json:"connections"`
	Synced int `json:"synced"`
}

// SyncThread is one running sync thread (director.SyncThread).
type SyncThread struct {
	State  string `json:"state"` // master or backup
	Iface  string `json:"interface"`
	SyncID uint32 `json:"sync_id"`
	Group  string `json:"group"`
	MaxLen uint16 `json:"max_len"`
}

// Conn is one entry of the kernel's connection table (director/table.Conn,
// which converts to and from it).
type Conn struct {
	Protocol              string
	Client, Virtual, Dest netip.AddrPort
	State                 string
	Expires               time.Duration
	Synced                bool
	PEName, PEData        string
}

// CheckStatus is one health check as the leader runs it (health.Status).
type CheckStatus struct {
	Service string        `json:"service"`
	Server  string        `json:"server"`
	Type    string        `json:"type"`
	Target  string        `json:"target"`
	Health  fsm.Health    `json:"health"`
	OK      bool          `json:"ok"` // the last check
	Detail  string        `json:"detail,omitempty"`
	Latency time.Duration `json:"latency_ns"`
	At      time.Time     `json:"at,omitzero"`
	Checks  uint64        `json:"checks"`
}

// VIPStats is what a node holds and its announcement counters (vip.Stats).
type VIPStats struct {
	Held []string `json:"held"`
	// ECMP lists those of Held that are ecmp VIPs, which every node holds.
	ECMP []string `json:"ecmp,omitempty"`
	// Adds and Removes count address changes on the interfaces.
	Adds    uint64 `json:"adds"`
	Removes uint64 `json:"removes"`
	// Announcements counts rounds sent; AnnounceErrors those that failed.
	Announcements  uint64 `json:"announcements"`
	AnnounceErrors uint64 `json:"announce_errors"`
	// Errors counts failed address changes (each is retried).
	Errors     uint64 `json:"errors"`
	LastChange string `json:"last_change,omitempty"`
	LastError  string `json:"last_error,omitempty"`
}

// ForwardingOff is an IP forwarding sysctl that is off on a node (or
// could not be read) although masquerading services of its address family
// exist: the real servers answer through the director, and their replies
// are forwarded back to the clients only with forwarding on. The daemon's
// check; no Raft or director type mirrors it.
type ForwardingOff struct {
	Sysctl   string `json:"sysctl"`          // net.ipv4.ip_forward, net.ipv6.conf.all.forwarding
	Value    string `json:"value,omitempty"` // what the kernel holds ("0"); "" when unreadable
	Error    string `json:"error,omitempty"` // why it could not be read
	Services int    `json:"services"`        // masquerading services of that family
	Example  string `json:"example"`         // one of them, by key
}

// Package api is the one door into a node, as its callers see it: the
// HTTP + JSON wire types and the client for the CLI, the console, joins and
// scripts. The server is the daemon's (cmd/ipvsmand/internal/server), and
// its tests drive this client.
//
// It is the wire alone: it imports only the model's packages (fsm,
// fsm/ipvsadm) and links no server-side module (Raft, its stores, gossip,
// netlink), so that the CLI built on it carries none of them.
package api

import (
	"time"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// NodeStatus is GET /v1/status: the node's Raft view and, with --ipvs=on,
// its last reconcile of the kernel table.
type NodeStatus struct {
	Status
	Director *Report `json:"director,omitempty"`
	// Sync is this node's connection sync threads; nil with --ipvs=off.
	Sync *SyncReport `json:"sync,omitempty"`
	// VIPs is what this node holds and its announcement counters; nil with
	// --vips=off.
	VIPs *VIPStats `json:"vips,omitempty"`
	// BGP is this node's BGP speaker and its ecmp announcements (bgp.go);
	// nil with BGP off and no ecmp VIP in the model.
	BGP *BGPStatus `json:"bgp,omitempty"`
	// ForwardingOff lists the forwarding sysctls masquerading services
	// need that are off on this node, read when the status is asked for;
	// empty when none is (and with --ipvs=off, which programs no kernel).
	ForwardingOff []ForwardingOff `json:"forwarding_off,omitempty"`
}

// HealthResponse is GET /v1/health: every check the leader runs.
type HealthResponse struct {
	Checks []CheckStatus `json:"checks"`
	// InFlightLimit below InFlightMax: the leader holds checks back (its
	// goroutines short of CPU, or its loop's checks of answering servers
	// timing out), so their intervals stretch.
	InFlightLimit int `json:"in_flight_limit"`
	InFlightMax   int `json:"in_flight_max"`
}

// Headers the client sets.
const (
	// HeaderActor is who the client says it is (user@host). Nothing
	// checks it: the history records it as claimed, beside the principal
	// the node authenticated (fsm.Actor).
	HeaderActor = "X-Ipvsman-Actor"
	// HeaderForwarded is set on a request a follower passed to the leader.
	// It counts only on a request authenticated as a node's (see
	// HeaderNodeKey); from anyone else it is refused (TLS) or ignored.
	HeaderForwarded = "X-Ipvsman-Forwarded"
	// HeaderPrincipal is the principal a node authenticated, on a request
	// it passes on for a client (a forwarded write, a join for join-via, a
	// drain's leave). It counts only on a request authenticated as a
	// node's; from anyone else it is ignored.
	HeaderPrincipal = "X-Ipvsman-Principal"
	// HeaderNodeKey is what a node of a plain (loopback) cluster sends to
	// prove that it is a node: a key derived from the cluster token,
	// which no client sends. A TLS cluster ignores it: there a node
	// proves itself with its certificate.
	HeaderNodeKey = "X-Ipvsman-Node-Key"
	// HeaderRequest is the client's ID for a write; every retry of the
	// write carries the same one, so the cluster applies it at most once.
	HeaderRequest = "X-Ipvsman-Request"
	// HeaderTimeout is how long, in milliseconds, the client waits for a
	// write's answer; the node answers within it (capped by its
	// --max-write-wait).
	HeaderTimeout = "X-Ipvsman-Timeout"
)

// Defaults of how long a write may wait for the cluster.
const (
	// DefaultWriteWait is the wait of a request that names no deadline.
	DefaultWriteWait = 10 * time.Second
	// DefaultMaxWriteWait caps the deadline a client asks for.
	DefaultMaxWriteWait = 5 * time.Minute
)

// KindOutcomeUnknown is the error kind of a write that was handed to Raft
// but whose outcome could not be learned before the deadline: it may have
// been committed. `ipvsman history` shows its request ID if it was.
const KindOutcomeUnknown = "outcome-unknown"

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
	Kind  string `json:"kind"` // rejected, unauthorized, forbidden, rate-limited, no-leader (not committed), outcome-unknown, internal
}

// ConfigResponse is GET /v1/config.
type ConfigResponse struct {
	Version  uint64                 `json:"version"`
	Config   *fsm.Config            `json:"config"`
	Verdicts map[string]fsm.Verdict `json:"verdicts"`
	// QuorumUp is the quorum state of every service with a quorum
	// (fsm.State.QuorumUp): true while it holds it.
	QuorumUp map[string]bool `json:"quorum_up,omitempty"`
	Node     string          `json:"node"`
	Applied  uint64          `json:"applied_index"`
	Stale    string          `json:"stale,omitempty"` // why the read may miss recent writes
}

// WriteResponse answers every committed write.
type WriteResponse struct {
	Result fsm.Result `json:"result"`
	Leader string     `json:"leader"`
}

// OpsRequest is POST /v1/ops: ipvsadm commands, applied atomically.
type OpsRequest struct {
	Ops []fsm.Op `json:"ops"`
	// AllowEmpty lets the ops leave no service where there were some
	// (ipvsadm -C, --allow-empty); without it such a write is refused.
	AllowEmpty bool `json:"allow_empty,omitempty"`
}

// ApplyRequest is POST /v1/config: replace the whole topology.
type ApplyRequest struct {
	Config *fsm.Config `json:"config"`
	Reason string      `json:"reason,omitempty"`
	DryRun bool        `json:"dry_run,omitempty"`
	// AllowEmpty lets a topology with no services replace one that has
	// some; without it such a write is refused.
	AllowEmpty bool `json:"allow_empty,omitempty"`
}

// ApplyResponse lists what changed (or would change, for a dry run).
type ApplyResponse struct {
	Diff   []string   `json:"diff"`
	DryRun bool       `json:"dry_run"`
	Result fsm.Result `json:"result"`
	// Counts tallies what the write adds, removes and changes (nil: no
	// change, or a retry answered with its first outcome).
	Counts *fsm.Tally `json:"counts,omitempty"`
}

// RollbackRequest is POST /v1/rollback.
type RollbackRequest struct {
	Version uint64 `json:"version"`
	DryRun  bool   `json:"dry_run,omitempty"`
}

// HistoryItem is one version without its config.
type HistoryItem struct {
	Version uint64 `json:"version"`
	Time    int64  `json:"time"`
	// Actor is who made the change, as recorded: "admin-token (claimed
	// alice@host)" (fsm.Actor). Principal and Claimed are its parts; both
	// are empty for an actor that names no principal (the leader's own
	// changes, ipvsmand@NODE, and changes recorded before principals were).
	Actor     string `json:"actor"`
	Principal string `json:"principal,omitempty"`
	Claimed   string `json:"claimed,omitempty"`
	Request   string `json:"request,omitempty"` // the request ID of the write that made it
	Summary   string `json:"summary"`
}

// JoinRequest is POST /v1/cluster/join: the joining node's ID and
// addresses. Replace lets it take over the ID of a dead member recorded
// at another Raft address (ipvsmand --replace); without it such a join is
// refused, and a join under the ID of a live member at another address is
// refused either way. Omitted when false, so that a plain join is the
// body older builds know.
type JoinRequest struct {
	fsm.Member
	Replace bool `json:"replace,omitempty"`
}

// JoinViaRequest asks a node to join the cluster through a member's API.
type JoinViaRequest struct {
	Member string `json:"member"`
}

// NodeRequest names a node for leave and transfer ("" = this node / any).
type NodeRequest struct {
	ID string `json:"id"`
}

// ZeroRequest is POST /v1/zero.
type ZeroRequest struct {
	Service string `json:"service,omitempty"`
}

// NodeView is one member's status as fetched by GET /v1/cluster/status.
type NodeView struct {
	ID        string      `json:"id"`
	APIAddr   string      `json:"api_addr"`
	Reachable bool        `json:"reachable"`
	Error     string      `json:"error,omitempty"`
	Status    *NodeStatus `json:"status,omitempty"`
}

// ClusterStatus is GET /v1/cluster/status.
type ClusterStatus struct {
	Via         string       `json:"via"` // the node that answered
	Nodes       []NodeView   `json:"nodes"`
	Members     []MemberView `json:"members"`
	MinProtocol int          `json:"min_protocol"`
	Note        string       `json:"note,omitempty"`
}

// KernelResponse is GET /v1/kernel: this node's own kernel IPVS table, with
// the kernel's counters, formatted like the model by the CLI.
// ConnsResponse is GET /v1/kernel/connections: one node's own connection
// table, the synced entries included.
type ConnsResponse struct {
	Node  string `json:"node"`
	Conns []Conn `json:"connections"`
}

type KernelResponse struct {
	Node   string        `json:"node"`
	Config *fsm.Config   `json:"config"`
	Stats  ipvsadm.Stats `json:"stats"`
}

// DrainResponse answers POST /v1/node/drain.
type DrainResponse struct {
	Node   string `json:"node"`
	Leader string `json:"leader"` // the leader that removed it
}

// MemberView is one member in GET /v1/cluster/status: the answering
// node's Raft configuration and gossip, with the member's own Raft last
// contact.
type MemberView struct {
	ID            string `json:"id"`
	Suffrage      string `json:"suffrage"` // voter, nonvoter, none (gossip only)
	Leader        bool   `json:"leader"`
	Version       string `json:"version"`
	Protocol      int    `json:"protocol"`
	Gossip        string `json:"gossip"`
	GossipSinceMS int64  `json:"gossip_since_ms"`
	LastContact   string `json:"last_contact"` // from the member itself; "" when unreachable
	RaftAddr      string `json:"raft_addr"`
	GossipAddr    string `json:"gossip_addr"`
	// Ready is whether it can serve the VIPs: yes, no (Unready says why)
	// or unknown (gossip has not told).
	Ready   string `json:"ready"`
	Unready string `json:"unready,omitempty"`
}

// Package cluster runs the Raft node that replicates the fsm model: the log
// and stable store in raft-boltdb/v2, file snapshots, a TCP or mutual-TLS
// transport (tls.go), bootstrap, membership (gossip, joins, promotions,
// drain), leadership transfer and the write path (validate, stamp,
// propose).
//
// It never touches the kernel and imports nothing of director or vip: it
// tells whether this node leads through Config.Leadership and hears whether
// the node can serve through SetReadiness, both wired by the daemon, so that
// Raft is tested without netlink and the kernel side without Raft.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/ipvsman/ipvsman/cluster/release"
	"github.com/ipvsman/ipvsman/fsm"
)

// Config of a node. Timing defaults are tuned for fast failover on a LAN:
// a new leader in well under a second after the old one is cut off, and a
// new leader waits vipFence before acting, so that an isolated leader has
// stepped down (one lease after its last contact) before any other acts.
type Config struct {
	NodeID   string
	DataDir  string
	RaftAddr string // host:port to listen on and advertise
	APIAddr  string // advertised API address (host:port) for forwarding
	// TLS, when set, runs Raft over mutual TLS with this material; nil is
	// plain TCP (loopback clusters and tests only: ipvsmand refuses a
	// non-loopback address without it).
	TLS                *TLS
	Bootstrap          bool
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	ApplyTimeout       time.Duration
	Logger             *slog.Logger
	Fatal              func(error)      // called when the log holds what this build must not skip
	Clock              func() time.Time // stamps commands; time.Now when nil
	// Leadership, when set, is told of every leadership change: false
	// before anything else is done about a loss, true only once the log is
	// applied (after a Barrier). Calls are serialized; while one runs, the
	// next change waits.
	Leadership func(leader bool, reason string)
	// Admit, when set, is shown every configuration a write would leave
	// (next) beside the current one, on the leader, before the write is
	// proposed, and may refuse it: a policy of this node's own, such as
	// the daemon's check directory, which fsm cannot apply since Apply
	// must give every node the same answer. A refusal is a
	// *RejectedError; nothing is proposed.
	Admit func(cur, next *fsm.Config) error

	// Gossip configures memberlist; an empty Gossip.Addr runs without it
	// (then joins add voters directly and no versions are known).
	Gossip          GossipConfig
	PromoteAfter    time.Duration // a caught-up non-voter becomes a voter after this long
	DeadAfter       time.Duration // report a member gossip has seen dead this long
	RemoveDeadAfter time.Duration // remove a member gossip has seen dead this long; 0: never
	// Rejoin lets a drained node start again: its old log is moved aside
	// and it joins as a new member.
	Rejoin bool
	// SnapshotBytes: take a snapshot once this many bytes of log entries
	// have been applied since the last one (DefaultSnapshotBytes when 0;
	// negative: only Raft's count of entries).
	SnapshotBytes int64
	// Bulk, when set, runs the node's CPU-heavy work: planning and
	// encoding a write, applying a large entry, a snapshot, a restore.
	// The daemon runs it at ordinary priority when it runs real-time, so
	// that the work cannot hold a CPU for a whole round-robin slice
	// against Raft's heartbeats. Nil runs it as is.
	Bulk func(func())
}

// The timing defaults, written here only: DefaultTiming and the daemon's
// flags read them. docs/timing.md has the measurements they come from.
const (
	DefaultHeartbeatTimeout   = 150 * time.Millisecond
	DefaultElectionTimeout    = 150 * time.Millisecond
	DefaultLeaderLeaseTimeout = 150 * time.Millisecond
	DefaultCommitTimeout      = 20 * time.Millisecond
	DefaultApplyTimeout       = 10 * time.Second
	DefaultPromoteAfter       = 3 * time.Second
	DefaultDeadAfter          = 30 * time.Second
)

// DefaultTiming fills zero timings with the defaults.
func (c *Config) DefaultTiming() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&c.ElectionTimeout, DefaultElectionTimeout)
	def(&c.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout)
	def(&c.CommitTimeout, DefaultCommitTimeout)
	def(&c.ApplyTimeout, DefaultApplyTimeout)
	def(&c.PromoteAfter, DefaultPromoteAfter)
	def(&c.DeadAfter, DefaultDeadAfter)
}

var (
	// ErrNotLeader means the write must go to the leader.
	ErrNotLeader = errors.New("this node is not the leader")
	// ErrNoLeader means no leader is known right now; retry.
	ErrNoLeader = errors.New("no leader elected")
	// ErrStopped means the node stopped (Shutdown or FinishDrain) while
	// the call waited.
	ErrStopped = errors.New("node stopped")
)

// RejectedError is a write that failed validation: nothing was committed.
type RejectedError struct{ Reason string }

func (e *RejectedError) Error() string { return e.Reason }

// Node is one member of the cluster.
type Node struct {
	cfg       Config
	log       *slog.Logger
	raft      *raft.Raft
	machine   *machine
	store     *raftboltdb.BoltStore
	logs      raft.LogStore // store, behind raft's cache
	transport *raft.NetworkTransport
	notifyCh  chan bool
	gossip    *gossip // nil without Config.Gossip.Addr
	vipFence  time.Duration

	hb     heartbeats // the leader's Raft heartbeats: who they fail to reach
	joinMu sync.Mutex // serializes join decisions (identity.go)

	tellMu   sync.Mutex  // serializes Config.Leadership calls
	draining atomic.Bool // leaving: never take leadership's duties again

	writeMu sync.Mutex // serializes Check+Apply so that validation sees the state the command applies to
	// readyTerm is the term whose barrier has completed on this leader: from
	// then on its state holds every entry of earlier terms.
	readyTerm atomic.Uint64
	inFlight  <-chan struct{} // closed when a write whose caller gave up is resolved; under writeMu
	done      chan struct{}   // closed when the node stops
	wg        sync.WaitGroup  // every goroutine the node started
	stopOnce  sync.Once       // a Shutdown racing a FinishDrain stops once; both wait for it
	stopErr   error

	readiness    atomic.Pointer[Readiness]
	readyChanged chan struct{} // SetReadiness wakes the leader's loop
}

// Open starts the node: it opens (or creates) the data directory, starts
// Raft, and bootstraps a new single-node cluster if asked and nothing exists.
func Open(cfg Config) (*Node, error) {
	cfg.DefaultTiming()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Fatal == nil {
		cfg.Fatal = func(err error) { cfg.Logger.Error("fatal", "err", err); os.Exit(3) }
	}
	if err := checkNodeID(cfg.DataDir, cfg.NodeID); err != nil {
		return nil, err
	}
	if err := checkDrained(cfg.DataDir, cfg.Rejoin, cfg.Logger); err != nil {
		return nil, err
	}
	if err := checkStore(cfg.DataDir); err != nil {
		return nil, err
	}
	hl := NewHCLog(cfg.Logger, "raft", hclog.Warn)

	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(cfg.DataDir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: 2 * time.Second},
	})
	if err != nil {
		return nil, fmt.Errorf("open raft store %s: %w (is another ipvsmand using this data dir?)", filepath.Join(cfg.DataDir, "raft.db"), err)
	}
	fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hl)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open snapshot store: %w", err)
	}
	snaps := indexedSnapshots{fileSnaps}
	addr, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("raft-addr %q: %w", cfg.RaftAddr, err)
	}
	if addr.IP == nil || addr.IP.IsUnspecified() {
		store.Close()
		return nil, fmt.Errorf("raft-addr %q: give an address the other nodes can reach, not a wildcard", cfg.RaftAddr)
	}
	transport, stream, err := newTransport(cfg, addr, hl)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("raft-addr %q: %w", cfg.RaftAddr, err)
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.Logger = hl
	notifyCh := make(chan bool, 16)
	rc.NotifyCh = notifyCh
	if err := raft.ValidateConfig(rc); err != nil {
		transport.Close()
		store.Close()
		return nil, fmt.Errorf("raft timing: %w", err)
	}
	if err := checkLease(cfg.LeaderLeaseTimeout, cfg.HeartbeatTimeout); err != nil {
		transport.Close()
		store.Close()
		return nil, err
	}

	n := &Node{cfg: cfg, log: cfg.Logger, store: store, transport: transport, notifyCh: notifyCh, done: make(chan struct{}), readyChanged: make(chan struct{}, 1),
		vipFence: vipFence(cfg.LeaderLeaseTimeout, cfg.HeartbeatTimeout)}
	snapBytes := cfg.SnapshotBytes
	if snapBytes == 0 {
		snapBytes = DefaultSnapshotBytes
	}
	n.machine = newMachine(cfg.Logger, cfg.Fatal, snapBytes)
	n.machine.self = cfg.NodeID
	n.machine.pooled = func() bool {
		p, _ := n.MinProtocol()
		return p >= fsm.PooledProtocol
	}
	if cfg.Bulk != nil {
		n.machine.bulk = cfg.Bulk
	}

	existing, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		transport.Close()
		store.Close()
		return nil, fmt.Errorf("inspect raft state: %w", err)
	}
	// Replication reads recent entries back from the log store; the cache
	// spares decoding a large entry from bolt again for every follower and
	// every retry.
	logs, err := raft.NewLogCache(logCacheEntries, store)
	if err != nil {
		transport.Close()
		store.Close()
		return nil, fmt.Errorf("log cache: %w", err)
	}
	n.logs = logs
	r, err := raft.NewRaft(rc, n.machine, logs, store, snaps, unpipelined{transport})
	if err != nil {
		transport.Close()
		store.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	n.raft = r
	if stream != nil {
		stream.raft.Store(r)
	}
	obs := make(chan raft.Observation, 64)
	or := raft.NewObserver(obs, false, isHeartbeatNews)
	r.RegisterObserver(or)
	n.wg.Add(1)
	go n.watchHeartbeats(obs, or)
	if cfg.Gossip.Addr != "" {
		g, err := startGossip(cfg.NodeID, cfg.Gossip, Meta{RaftAddr: cfg.RaftAddr, APIAddr: cfg.APIAddr, Version: release.Version, Protocol: fsm.CommandProtocol}, cfg.Logger)
		if err != nil {
			r.Shutdown().Error()
			transport.Close()
			store.Close()
			return nil, err
		}
		n.gossip = g
		n.wg.Add(1)
		go n.gossipLoop()
	}
	if cfg.Bootstrap && !existing {
		f := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: transport.LocalAddr()}}})
		if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			n.Shutdown(context.Background())
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
		n.log.Info("bootstrapped a new cluster", "node", cfg.NodeID, "raft_addr", cfg.RaftAddr)
	}
	n.wg.Add(2)
	go n.watchLeadership()
	go n.snapshotLoop()
	return n, nil
}

// snapshotLoop takes the snapshots the machine asks for when large entries
// have accumulated (see machine.snapshotDue).
func (n *Node) snapshotLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.done:
			return
		case <-n.machine.snapshotDue:
		}
		start := time.Now()
		if err := n.raft.Snapshot().Error(); err != nil {
			n.log.Warn("snapshot after large entries failed", "node", n.cfg.NodeID, "err", err)
			continue
		}
		n.log.Info("snapshot taken after large entries", "node", n.cfg.NodeID, "took", time.Since(start).String())
	}
}

// unpipelined is Raft's network transport without pipelined replication.
// hashicorp/raft's pipeline can deadlock after a follower refuses an
// append (the send loop parks on a full in-flight queue while the decoder
// waits to hand over a response), which leaves replication to that peer
// stuck and Raft's shutdown waiting on it for good (seen here as a
// SIGTERM that hung until the watchdog, and reported by others:
// grafana/pyroscope#5518). Writes here are committed one at a time, so
// pipelining gains nothing.
type unpipelined struct{ *raft.NetworkTransport }

func (unpipelined) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

// logCacheEntries is how many of the latest log entries stay decoded in
// memory for replication.
const logCacheEntries = 64

// newTransport is Raft's TCP transport, or the same over mutual TLS when
// cfg.TLS is set (then stream is its TLS layer).
func newTransport(cfg Config, addr *net.TCPAddr, hl hclog.Logger) (_ *raft.NetworkTransport, stream *tlsStreamLayer, err error) {
	if cfg.TLS == nil {
		t, err := raft.NewTCPTransportWithLogger(cfg.RaftAddr, addr, 3, raftIOTimeout, hl)
		return t, nil, err
	}
	stream, err = newTLSStreamLayer(cfg.RaftAddr, addr, cfg.TLS, cfg.Logger)
	if err != nil {
		return nil, nil, err
	}
	return raft.NewNetworkTransportWithLogger(stream, 3, raftIOTimeout, hl), stream, nil
}

// raftIOTimeout bounds a Raft connection's dial and each of its reads and
// writes.
const raftIOTimeout = 5 * time.Second

// checkNodeID refuses a data dir that belongs to another node: its Raft log
// would make this node impersonate that one.
func checkNodeID(dir, id string) error {
	if id == "" {
		return fmt.Errorf("node-id: missing")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data-dir %q: %w", dir, err)
	}
	p := filepath.Join(dir, "node-id")
	b, err := os.ReadFile(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.WriteFile(p, []byte(id+"\n"), 0o600); err != nil {
			return fmt.Errorf("data-dir %q: %w", dir, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("data-dir %q: %w", dir, err)
	}
	if have := strings.TrimSpace(string(b)); have != id {
		return fmt.Errorf("data-dir %q belongs to node %q, not %q", dir, have, id)
	}
	return nil
}

// recordSelf makes sure the member record of the leader itself is current,
// so followers can forward writes to it.
func (n *Node) recordSelf() {
	me := fsm.Member{ID: n.cfg.NodeID, RaftAddr: string(n.transport.LocalAddr()), APIAddr: n.cfg.APIAddr, GossipAddr: n.cfg.Gossip.Addr}
	var have fsm.Member
	n.machine.view(func(s *fsm.State, _ uint64) { have = s.Members[me.ID] })
	if have == me {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	if _, err := n.Propose(ctx, fsm.CmdSetMember, fsm.SetMemberPayload{Member: me}, "ipvsmand@"+me.ID); err != nil {
		n.log.Warn("could not record own addresses", "node", me.ID, "err", err)
	}
}

// Preview reports the configuration diff a command would make now.
func (n *Node) Preview(typ fsm.CommandType, payload any) ([]string, error) {
	cmd, err := fsm.NewCommand(typ, 0, "", payload)
	if err != nil {
		return nil, err
	}
	var diff []string
	n.machine.view(func(s *fsm.State, _ uint64) { diff, err = s.Preview(cmd) })
	if err != nil {
		return nil, &RejectedError{Reason: err.Error()}
	}
	return diff, nil
}

// View runs f with the replicated state read-locked.
func (n *Node) View(f func(s *fsm.State, applied uint64)) { n.machine.view(f) }

// Subscribe returns a channel signalled (coalesced) after each state change.
func (n *Node) Subscribe() <-chan struct{} { return n.machine.subscribe() }

// ID is this node's ID.
func (n *Node) ID() string { return n.cfg.NodeID }

// IsLeader reports whether this node is the Raft leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// LeaderAPI returns the leader's ID and API address, or ErrNoLeader.
func (n *Node) LeaderAPI() (id, api string, err error) {
	_, lid := n.raft.LeaderWithID()
	if lid == "" {
		return "", "", ErrNoLeader
	}
	n.machine.view(func(s *fsm.State, _ uint64) { api = s.Members[string(lid)].APIAddr })
	if api == "" {
		return string(lid), "", fmt.Errorf("%w: leader %s has not recorded its API address yet", ErrNoLeader, lid)
	}
	return string(lid), api, nil
}

// Transfer hands leadership to id, or to the most up-to-date follower when
// id is empty (leader only), and returns the new leader's ID.
//
// Raft gives a transfer one election timeout to bring the target up to
// date; a target that was just restarted or reconnected may need more (its
// replication restarts from a backoff), so a timed-out transfer is retried
// while this node still leads, for up to 20 election timeouts.
func (n *Node) Transfer(id string) (string, error) {
	if !n.IsLeader() {
		return "", ErrNotLeader
	}
	var addr raft.ServerAddress
	if id != "" {
		if id == n.cfg.NodeID {
			return "", &RejectedError{Reason: fmt.Sprintf("node %q is already the leader", id)}
		}
		if addr = n.addressOf(id); addr == "" {
			return "", &RejectedError{Reason: fmt.Sprintf("node %q: not a member", id)}
		}
		if s, _ := n.suffrage(id); s != raft.Voter {
			return "", &RejectedError{Reason: fmt.Sprintf("node %q is a non-voter (not yet promoted): it cannot lead", id)}
		}
	}
	start := time.Now()
	deadline := start.Add(20 * n.cfg.ElectionTimeout)
	for attempt := 1; ; attempt++ {
		var f raft.Future
		if id == "" {
			f = n.raft.LeadershipTransfer()
		} else {
			f = n.raft.LeadershipTransferToServer(raft.ServerID(id), addr)
		}
		err := f.Error()
		if err == nil {
			break
		}
		if n.stopping() {
			return "", fmt.Errorf("leadership transfer: %w", ErrStopped)
		}
		if !n.IsLeader() {
			// Raft gives up on a target that has not won within one
			// election timeout, but the target may win just after: the
			// answer says where leadership went, not that Raft timed out.
			n.log.Info("leadership transfer reported an error, but this node no longer leads; waiting for the new leader", "to", id, "attempt", attempt, "err", err)
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("leadership transfer (attempt %d): %w", attempt, err)
		}
		n.log.Warn("leadership transfer failed; retrying", "to", id, "attempt", attempt, "err", err)
	}
	// The transfer completes when the target starts its election; wait for
	// the new leader to be known so the caller can be told who it is.
	deadline = time.Now().Add(10 * n.cfg.ElectionTimeout)
	for {
		_, lid := n.raft.LeaderWithID()
		if lid != "" && string(lid) != n.cfg.NodeID {
			n.log.Info("leadership transferred", "from", n.cfg.NodeID, "to", string(lid), "took", time.Since(start).String())
			return string(lid), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("leadership transfer: no new leader within %s", 10*n.cfg.ElectionTimeout)
		}
		select {
		case <-n.done:
			return "", fmt.Errorf("leadership transfer: %w", ErrStopped)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stopping reports whether the node is stopping or stopped.
func (n *Node) stopping() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// Shutdown hands leadership over when this node leads and others can take
// it, then stops Raft and closes the stores.
func (n *Node) Shutdown(ctx context.Context) error {
	if n.stopping() {
		return nil
	}
	if n.IsLeader() && n.voters() > 1 {
		f := n.raft.LeadershipTransfer()
		errc := make(chan error, 1)
		// Raft answers the future within an election timeout, or when
		// it shuts down: stop's wait covers this goroutine too.
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			errc <- f.Error()
		}()
		select {
		case err := <-errc:
			if err != nil {
				n.log.Warn("leadership hand-over before shutdown failed", "err", err)
			} else {
				n.log.Info("leadership handed over before shutdown", "node", n.cfg.NodeID)
			}
		case <-ctx.Done():
			n.log.Warn("leadership hand-over before shutdown timed out")
		}
	}
	return n.stop()
}

// stop ends the node for good: it leaves gossip, stops Raft and its
// watchers, and closes the transport and the stores. It returns only once
// every goroutine the node started has exited (the leadership watcher, the
// leader's pilot, a draining node's hand-over, the snapshot and gossip
// loops and the gossip joins they started).
func (n *Node) stop() error {
	n.stopOnce.Do(func() { n.stopErr = n.stopNow() })
	return n.stopErr
}

func (n *Node) stopNow() error {
	close(n.done)
	if n.gossip != nil {
		n.gossip.leave(time.Second)
	}
	err := n.raft.Shutdown().Error()
	n.wg.Wait()
	if cerr := n.transport.Close(); err == nil {
		err = cerr
	}
	if cerr := n.store.Close(); err == nil {
		err = cerr
	}
	return err
}

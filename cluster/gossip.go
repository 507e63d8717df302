package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Gossip states of a member, as status reports them.
const (
	GossipAlive   = "alive"
	GossipSuspect = "suspect" // not reported: memberlist does not expose it
	GossipDead    = "dead"
	GossipLeft    = "left"
	GossipUnknown = "unknown" // in the Raft configuration, never heard of in gossip
)

// Meta is what every node gossips about itself. Raft decides who leads and
// who votes; gossip only tells who is up, where, and which version it runs.
type Meta struct {
	RaftAddr string `json:"raft"`
	APIAddr  string `json:"api"`
	Version  string `json:"ver"`
	Protocol int    `json:"proto"`
	Applied  uint64 `json:"applied"` // the node's applied Raft index, refreshed about once a second
	// Leaving is set just before a graceful leave: memberlist reports a
	// departure the same way for a leave and a death, so the others tell
	// them apart by this last word.
	Leaving bool `json:"leaving,omitempty"`
	// Boot is random per process: a message from a process that said it
	// was leaving is told from a restarted node by it.
	Boot string `json:"boot"`
	// Unready says why the node cannot serve the VIPs ("": it can, and
	// what a build that predates readiness says).
	Unready string `json:"unready,omitempty"`
}

// GossipMember is one node as gossip last saw it.
type GossipMember struct {
	Meta
	ID    string
	Addr  string // gossip address
	State string // GossipAlive, GossipSuspect, GossipDead or GossipLeft
	Since time.Time
}

// GossipConfig configures the memberlist side of a node.
type GossipConfig struct {
	Addr    string // host:port to bind and advertise
	Key     []byte // 32 bytes (AES-256); see GossipKey
	Profile string // "lan" (default) or "local" (faster failure detection, for tests)
}

// GossipKey derives the gossip encryption key from the cluster token, so
// that one shared secret admits a node to both the API and the gossip.
func GossipKey(token string) []byte {
	k := sha256.Sum256([]byte("ipvsman gossip key v1\x00" + token))
	return k[:]
}

// gossip wraps memberlist: it keeps the last known state of every member
// (memberlist itself forgets dead ones) and serves this node's meta.
type gossip struct {
	id   string
	ml   *memberlist.Memberlist
	keys *memberlist.Keyring // see gossipkey.go
	log  *slog.Logger

	// dials bounds every connection memberlist dials: a join waiting on
	// a dead peer's TCP timeout (10 s on a LAN) ends when gossip stops,
	// so the node's shutdown need not wait it out.
	dials     context.Context
	stopDials context.CancelFunc

	mu      sync.Mutex
	self    Meta
	members map[string]*GossipMember
	said    map[string]string // members that said they are leaving: their Boot
	clock   func() time.Time
}

func startGossip(id string, cfg GossipConfig, self Meta, lg *slog.Logger) (*gossip, error) {
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("gossip-addr %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("gossip-addr %q: port %q: want 1-65535", cfg.Addr, portStr)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		return nil, fmt.Errorf("gossip-addr %q: give an IP address the other nodes can reach", cfg.Addr)
	}
	var mc *memberlist.Config
	switch cfg.Profile {
	case "", "lan":
		mc = memberlist.DefaultLANConfig()
	case "local":
		mc = memberlist.DefaultLocalConfig()
	default:
		return nil, fmt.Errorf("gossip-profile %q: want lan or local", cfg.Profile)
	}
	boot := make([]byte, 8)
	rand.Read(boot)
	self.Boot = hex.EncodeToString(boot)
	g := &gossip{id: id, log: lg, self: self, members: map[string]*GossipMember{}, said: map[string]string{}, clock: time.Now}
	g.dials, g.stopDials = context.WithCancel(context.Background())
	mc.Name = id
	// A node replaced at another address (ipvsmand --replace, or a node
	// moved with its data dir) gossips under its old name: memberlist
	// refuses a dead name a new address until this has passed since the
	// death (by default for good, until it forgets the dead node after
	// GossipToTheDeadTime), which would keep the replacement out of
	// gossip and so unpromoted. A live name is never taken over; who a
	// member is, is the Raft configuration's to say, not gossip's.
	mc.DeadNodeReclaimTime = time.Second
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = host, port
	mc.SecretKey = cfg.Key
	mc.Delegate = (*gossipDelegate)(g)
	mc.Events = (*gossipEvents)(g)
	mc.Logger = log.New(&memberlistLog{log: lg}, "", 0)
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port, Logger: mc.Logger})
	if err != nil {
		g.stopDials()
		return nil, fmt.Errorf("gossip on %s: %w", cfg.Addr, err)
	}
	mc.Transport = &cancelDials{NetTransport: nt, ctx: g.dials}
	ml, err := memberlist.Create(mc)
	if err != nil {
		nt.Shutdown()
		g.stopDials()
		return nil, fmt.Errorf("gossip on %s: %w", cfg.Addr, err)
	}
	g.ml, g.keys = ml, mc.Keyring // Create made the keyring from SecretKey
	return g, nil
}

// join contacts the given gossip addresses; reaching one is enough.
func (g *gossip) join(addrs []string) (int, error) {
	if len(addrs) == 0 {
		return 0, nil
	}
	return g.ml.Join(addrs)
}

// setApplied refreshes the applied index this node gossips. Each change is
// a broadcast, so it is rate limited by the caller.
func (g *gossip) setApplied(applied uint64) {
	g.update(func(m *Meta) bool {
		changed := m.Applied != applied
		m.Applied = applied
		return changed
	})
}

// setUnready gossips why this node cannot serve ("": it can).
func (g *gossip) setUnready(reason string) {
	g.update(func(m *Meta) bool {
		changed := m.Unready != reason
		m.Unready = reason
		return changed
	})
}

// update changes this node's meta and, if change says it changed,
// broadcasts it.
func (g *gossip) update(change func(*Meta) bool) {
	g.mu.Lock()
	changed := change(&g.self)
	g.mu.Unlock()
	if changed {
		if err := g.ml.UpdateNode(time.Second); err != nil {
			g.log.Debug("gossip meta update", "err", err)
		}
	}
}

// view returns every member gossip has heard of, sorted by ID.
func (g *gossip) view() []GossipMember {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]GossipMember, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b GossipMember) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// leave announces a graceful departure and stops gossiping. memberlist's
// own Leave broadcasts a message the others cannot tell from a death, and
// it may overtake the update that says otherwise. So the node only
// gossips "leaving" in its meta (UpdateNode returns once that broadcast is
// out) and stops: the others see the leaving process as left at once, and
// when their probes find it gone, it stays left.
func (g *gossip) leave(timeout time.Duration) {
	g.mu.Lock()
	g.self.Leaving = true
	g.mu.Unlock()
	if err := g.ml.UpdateNode(timeout); err != nil {
		g.log.Warn("gossip: announcing the leave", "err", err)
	}
	g.shutdown()
}

func (g *gossip) shutdown() {
	g.stopDials() // a join waiting on a dead peer gives up now
	if err := g.ml.Shutdown(); err != nil {
		g.log.Warn("gossip shutdown", "err", err)
	}
}

// record notes a member's state; a change of state is one log line.
func (g *gossip) record(n *memberlist.Node, state string) {
	if n.Name == g.id {
		return // this node's own state is its process's, not gossip's
	}
	var meta Meta
	if len(n.Meta) > 0 {
		if err := json.Unmarshal(n.Meta, &meta); err != nil {
			g.log.Warn("gossip: unreadable member metadata", "member", n.Name, "err", err)
		}
	}
	g.mu.Lock()
	old, had := g.members[n.Name]
	m := &GossipMember{Meta: meta, ID: n.Name, Addr: n.Address(), State: state, Since: g.clock()}
	if state != GossipAlive && len(n.Meta) == 0 && had {
		m.Meta = old.Meta
	}
	if m.Leaving {
		g.said[n.Name] = m.Boot
	}
	if boot, ok := g.said[n.Name]; ok {
		if m.Boot != "" && m.Boot != boot {
			delete(g.said, n.Name) // a new process: it came back
		} else {
			state, m.State = GossipLeft, GossipLeft // the leaving process, late
		}
	}
	if had && old.State == state {
		m.Since = old.Since
	}
	g.members[n.Name] = m
	g.mu.Unlock()
	if !had || old.State != state || old.Version != m.Version {
		g.log.Info("gossip: member "+state, "member", n.Name, "addr", m.Addr, "version", m.Version, "protocol", m.Protocol)
	}
}

type gossipDelegate gossip

func (d *gossipDelegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	b, _ := json.Marshal(d.self)
	d.mu.Unlock()
	if len(b) > limit {
		// Addresses and a version fit in memberlist's 512 bytes; if not,
		// gossip without meta rather than crash memberlist.
		return nil
	}
	return b
}
func (d *gossipDelegate) NotifyMsg([]byte)                {}
func (d *gossipDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d *gossipDelegate) LocalState(bool) []byte          { return nil }
func (d *gossipDelegate) MergeRemoteState([]byte, bool)   {}

type gossipEvents gossip

func (e *gossipEvents) NotifyJoin(n *memberlist.Node)   { (*gossip)(e).record(n, GossipAlive) }
func (e *gossipEvents) NotifyUpdate(n *memberlist.Node) { (*gossip)(e).record(n, GossipAlive) }
func (e *gossipEvents) NotifyLeave(n *memberlist.Node) {
	state := GossipDead
	if n.State == memberlist.StateLeft {
		state = GossipLeft
	}
	(*gossip)(e).record(n, state)
}

// memberlistLog turns memberlist's "[LEVEL] memberlist: ..." lines into slog
// records; its DEBUG lines are dropped.
type memberlistLog struct{ log *slog.Logger }

func (w *memberlistLog) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	for prefix, lv := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug - 4, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError} {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			line, level = strings.TrimSpace(rest), lv
			break
		}
	}
	if strings.Contains(line, "use of closed network connection") {
		level = slog.LevelDebug // this node is leaving: its sockets are closed
	}
	if level < slog.LevelDebug {
		return len(p), nil
	}
	w.log.Log(nil, level, line, "component", "memberlist")
	return len(p), nil
}

// cancelDials is memberlist's TCP and UDP transport whose dials and
// streams end when ctx does (gossip stopping), not only at their timeout.
type cancelDials struct {
	*memberlist.NetTransport
	ctx context.Context
}

func (t *cancelDials) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout dials a; the connection is closed when ctx ends, so
// that an exchange with a peer that stopped answering ends too.
func (t *cancelDials) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(t.ctx, "tcp", a.Addr)
	if err != nil {
		return nil, err
	}
	return &ownedConn{Conn: c, stop: context.AfterFunc(t.ctx, func() { c.Close() })}, nil
}

// ownedConn is a connection closed early when gossip stops.
type ownedConn struct {
	net.Conn
	stop func() bool
}

func (c *ownedConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

package vip

import (
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// Addrs puts addresses on interfaces (Netlink, or a recording fake).
type Addrs interface {
	Add(iface string, p netip.Prefix) error
	Del(iface string, p netip.Prefix) error
	Has(iface string, p netip.Prefix) (bool, error)
}

// Announcer tells the segment that this node now answers for an address
// (Wire, or a recording fake).
type Announcer interface {
	Announce(iface string, a netip.Addr) error
}

// DefaultSchedule is when, after an address is added, it is announced: a
// burst, for neighbours that miss the first frame, then once a second for
// five seconds, for switches and neighbours that were briefly unreachable
// (a healing partition) or that rate-limit ARP updates.
var DefaultSchedule = []time.Duration{
	0, 50 * time.Millisecond, 250 * time.Millisecond,
	time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second,
}

// Want lists the addresses node holds for vips while it leads.
func Want(node string, vips map[string]fsm.VIP) []Addr {
	out := make([]Addr, 0, len(vips))
	for _, v := range vips {
		out = append(out, Addr{Prefix: v.Prefix, Interface: v.InterfaceOn(node)})
	}
	slices.SortFunc(out, compareAddr)
	return out
}

// Stats is what a node tells about its VIPs (the API's status).
type Stats struct {
	Held []string `json:"held"`
	// Adds and Removes count address changes on the interfaces.
	Adds    uint64 `json:"adds"`
	Removes uint64 `json:"removes"`
	// Announcements counts rounds sent (one round: a gratuitous ARP request
	// and reply, or one neighbour advertisement); AnnounceErrors those that
	// failed.
	Announcements  uint64 `json:"announcements"`
	AnnounceErrors uint64 `json:"announce_errors"`
	// Errors counts failed address changes (each is retried).
	Errors     uint64 `json:"errors"`
	LastChange string `json:"last_change,omitempty"`
	LastError  string `json:"last_error,omitempty"`
}

// Manager holds the VIPs while told this node leads and drops them the
// moment it is told otherwise. Its methods are safe for concurrent use;
// each returns once the interfaces are changed.
type Manager struct {
	Node      string
	Addrs     Addrs
	Announcer Announcer
	// StateFile records the addresses this node may hold (see record).
	StateFile string
	Log       *slog.Logger
	// Schedule of announcements after an add (default DefaultSchedule).
	Schedule []time.Duration
	// IsLeader, when set, is asked on every Tick while addresses are held:
	// a second path to dropping them should a leadership notification be
	// late.
	IsLeader func() bool
	// RetryEvery paces retries of failed address changes (default 1 s).
	RetryEvery time.Duration

	mu        sync.Mutex
	stale     []Addr // left by an earlier process, not yet removed
	leader    bool
	closed    bool
	want      []Addr
	wantKnown bool
	held      map[Addr]*holding
	failing   bool
	lastTry   time.Time
	stats     Stats
}

type holding struct {
	since time.Time
	next  int // index into Schedule of the next announcement
}

func (m *Manager) schedule() []time.Duration {
	if m.Schedule != nil {
		return m.Schedule
	}
	return DefaultSchedule
}

func (m *Manager) rec() record { return record{path: m.StateFile} }

// Start removes every address a previous process of this node recorded:
// on start-up the node is not leader, whatever it was before a crash. What
// cannot be removed now is reported and retried by Tick.
func (m *Manager) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	stale, err := m.rec().load()
	if err != nil {
		m.fail("read", Addr{}, "start-up", err)
		return err
	}
	m.stale = stale
	m.sync("start-up: left by an earlier process")
	if len(m.stale) > 0 {
		return fmt.Errorf("vip: start-up: %d address(es) not removed yet: %s", len(m.stale), m.stats.LastError)
	}
	return nil
}

// Lead adds the VIPs: call it once this node is leader and has applied
// the log (Barrier).
func (m *Manager) Lead(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leader = true
	m.sync(reason)
}

// Follow drops the VIPs: call it first when leadership is lost.
func (m *Manager) Follow(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leader = false
	m.sync(reason)
}

// Close drops the VIPs for good (shutdown): later calls add nothing.
func (m *Manager) Close(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.sync(reason)
}

// Update sets the VIPs of the replicated model. A leader adds and removes
// what changed; a follower makes sure it holds none of them, whoever put
// them there.
func (m *Manager) Update(vips map[string]fsm.VIP) {
	want := Want(m.Node, vips)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.wantKnown && slices.Equal(want, m.want) {
		return
	}
	m.want, m.wantKnown = want, true
	m.sync("configuration changed")
}

// dropStrays removes VIP addresses this node holds without being leader:
// put there by hand, or left by a process whose state file was lost.
func (m *Manager) dropStrays(reason string) {
	for _, a := range m.want {
		has, err := m.Addrs.Has(a.Interface, a.Prefix)
		if err != nil {
			m.fail("check", a, reason, err)
			continue
		}
		if !has {
			continue
		}
		start := time.Now()
		if err := m.Addrs.Del(a.Interface, a.Prefix); err != nil {
			m.fail("remove", a, reason, err)
			continue
		}
		m.stats.Removes++
		m.changed("removed", a, reason+": held without being leader", start)
	}
}

// Tick sends the announcements that are due, drops the VIPs if IsLeader
// says this node no longer leads, and retries failed changes. Run calls it.
func (m *Manager) Tick(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.held) > 0 && m.leader && m.IsLeader != nil && !m.IsLeader() {
		m.leader = false
		m.sync("raft state is no longer leader")
	}
	if m.failing && now.Sub(m.lastTry) >= m.retryEvery() {
		m.sync("retry")
	}
	sched := m.schedule()
	for _, a := range slices.SortedFunc(maps.Keys(m.held), compareAddr) {
		h := m.held[a]
		due := false
		for h.next < len(sched) && now.Sub(h.since) >= sched[h.next] {
			h.next++
			due = true
		}
		// A late tick sends one round, not a backlog of stale ones.
		if due {
			m.announce(a)
		}
	}
}

func (m *Manager) retryEvery() time.Duration {
	if m.RetryEvery > 0 {
		return m.RetryEvery
	}
	return time.Second
}

// Run calls Tick every interval until done is closed.
func (m *Manager) Run(done <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			m.Tick(now)
		}
	}
}

// Stats returns the counters and the addresses held now.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.Held = []string{}
	for _, a := range slices.SortedFunc(maps.Keys(m.held), compareAddr) {
		s.Held = append(s.Held, a.String())
	}
	return s
}

// sync makes the interfaces hold want (leader) or nothing (otherwise).
// Removals come first: an address moving between interfaces must never be
// on two at once.
func (m *Manager) sync(reason string) {
	if m.held == nil {
		m.held = map[Addr]*holding{}
	}
	m.lastTry = time.Now()
	m.failing = false
	var want []Addr
	if m.leader && !m.closed {
		want = m.want
	}
	var left []Addr
	for _, a := range m.stale {
		start := time.Now()
		if err := m.Addrs.Del(a.Interface, a.Prefix); err != nil {
			m.fail("remove", a, reason, err)
			left = append(left, a)
			continue
		}
		m.stats.Removes++
		m.changed("removed", a, reason, start)
	}
	m.stale = left
	for _, a := range slices.SortedFunc(maps.Keys(m.held), compareAddr) {
		if slices.Contains(want, a) {
			continue
		}
		start := time.Now()
		if err := m.Addrs.Del(a.Interface, a.Prefix); err != nil {
			m.fail("remove", a, reason, err)
			continue
		}
		delete(m.held, a)
		m.stats.Removes++
		m.changed("removed", a, reason, start)
	}
	if err := m.rec().store(append(slices.Collect(maps.Keys(m.held)), m.stale...)); err != nil {
		m.fail("record", Addr{}, reason, err)
	}
	if !m.leader || m.closed {
		m.dropStrays(reason)
		return
	}
	for _, a := range want {
		if _, ok := m.held[a]; ok {
			continue
		}
		// Recorded before it exists, so a crash in between still leaves
		// it to the next start-up's cleanup.
		if err := m.rec().store(append(append(slices.Collect(maps.Keys(m.held)), m.stale...), a)); err != nil {
			m.fail("record", a, reason, err)
			continue
		}
		start := time.Now()
		if err := m.Addrs.Add(a.Interface, a.Prefix); err != nil {
			m.fail("add", a, reason, err)
			continue
		}
		m.held[a] = &holding{since: start}
		m.stats.Adds++
		m.changed("added", a, reason, start)
	}
	// The first round goes out now, not at the next tick.
	sched := m.schedule()
	for _, a := range want {
		if h, ok := m.held[a]; ok && h.next == 0 && len(sched) > 0 && sched[0] == 0 {
			h.next = 1
			m.announce(a)
		}
	}
}

func (m *Manager) announce(a Addr) {
	if err := m.Announcer.Announce(a.Interface, a.Prefix.Addr()); err != nil {
		m.stats.AnnounceErrors++
		m.stats.LastError = err.Error()
		m.log().Warn("vip announcement failed", "vip", a.Prefix.String(), "interface", a.Interface, "err", err)
		return
	}
	m.stats.Announcements++
}

func (m *Manager) changed(what string, a Addr, reason string, start time.Time) {
	took := time.Since(start)
	m.stats.LastChange = fmt.Sprintf("%s %s: %s (%s)", what, a, reason, took.Round(time.Microsecond))
	m.log().Info("vip "+what, "node", m.Node, "vip", a.Prefix.String(), "interface", a.Interface, "reason", reason, "took", took.String())
}

func (m *Manager) fail(op string, a Addr, reason string, err error) {
	m.failing = true
	m.stats.Errors++
	m.stats.LastError = err.Error()
	m.log().Error("vip change failed; will retry", "node", m.Node, "op", op, "vip", a.Prefix.String(), "interface", a.Interface, "reason", reason, "err", err)
}

func (m *Manager) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.Default()
}

package vip

import (
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
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

// Want lists the addresses node holds for vips while it leads (WantECMP
// those it holds in both roles).
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
	// ECMP lists those of Held that are ecmp VIPs: held by every node by
	// design, so not a second owner (ecmp.go).
	ECMP []string `json:"ecmp,omitempty"`
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
// each change (Start, Lead, Follow, Close, Update) returns once the
// interfaces are changed.
//
// Two locks, so that no reader waits on I/O. Changes are made by one
// caller at a time under opMu, which is held across netlink, the state
// file's fsync and ARP; only the changers take it. What callers tell the
// manager (leader or not, closed, the VIPs wanted) and what it reports
// (Stats) sit under mu, which is never held across I/O: telling takes mu
// only, so the last call told is what every change in progress works
// towards, and Stats never waits for a change.
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
	// OnChange, when set, is told of every address added or removed, after
	// the change; it must not block (the daemon's notify hooks queue).
	OnChange func(added bool, a Addr, reason string)
	// Prober, when set, is asked before each add whether another node
	// still answers for the address: a former leader that has not yet let
	// go (stalled, or slow to hear it lost), whatever Raft's timing says.
	// Such an address is left to it, probed again, and taken once nobody
	// answers or after ProbeLimit.
	Prober Prober
	// ProbeWait is how long a probe listens (default DefaultProbeWait);
	// ProbeLimit how long an answered address is left to the other node
	// (default DefaultProbeLimit).
	ProbeWait  time.Duration
	ProbeLimit time.Duration

	// The changer's: under opMu.
	opMu    sync.Mutex
	stale   []Addr // left by an earlier process, not yet removed
	held    map[Addr]*holding
	failing bool
	lastTry time.Time
	synced  uint64 // the told generation the last change worked towards
	// contested: wanted addresses another node still answered for at the
	// last probe, and since when.
	contested map[Addr]*contest

	// Told and reported: under mu, never held across I/O.
	mu        sync.Mutex
	told      uint64 // generation: bumped by every call that changes what is wanted
	why       string // the reason the last call gave
	leader    bool
	closed    bool
	want      []Addr
	ecmp      []Addr // of want: held in both roles (ecmp.go)
	wantKnown bool
	heldNow   []string // the addresses held, sorted, as of the last change
	ecmpNow   []string // of heldNow, the ecmp VIPs
	stats     Stats
	quit      chan struct{} // closed by Close: Run returns
	wake      chan struct{} // poked after every change: Run may have work again
	runs      sync.WaitGroup
	ticks     atomic.Int64 // Ticks Run made (tests)
}

type holding struct {
	since time.Time
	next  int  // index into Schedule of the next announcement
	ecmp  bool // held in both roles, never announced (ecmp.go)
}

// intent is what the manager was last told, and when (its generation).
type intent struct {
	gen    uint64
	leader bool // and not closed: the VIPs are to be held
	closed bool // nothing is to be held, not even the ecmp VIPs
	want   []Addr
	ecmp   []Addr // of want: held by a follower too
	why    string
}

func (m *Manager) intent() intent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return intent{gen: m.told, leader: m.leader && !m.closed, closed: m.closed, want: m.want, ecmp: m.ecmp, why: m.why}
}

// tell records what a caller says, and why, under mu only.
func (m *Manager) tell(why string, f func()) {
	m.mu.Lock()
	f()
	m.told++
	m.why = why
	m.mu.Unlock()
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
	m.opMu.Lock()
	defer m.opMu.Unlock()
	stale, err := m.rec().load()
	if err != nil {
		m.fail("read", Addr{}, "start-up", err)
		return err
	}
	m.stale = stale
	defer m.poke()
	m.sync("start-up: left by an earlier process")
	if len(m.stale) > 0 {
		return fmt.Errorf("vip: start-up: %d address(es) not removed yet: %s", len(m.stale), m.Stats().LastError)
	}
	return nil
}

// Lead adds the VIPs: call it once this node is leader and has applied
// the log (Barrier).
func (m *Manager) Lead(reason string) {
	m.tell(reason, func() { m.leader = true })
	m.change()
}

// Follow drops the VIPs: call it first when leadership is lost. A Lead
// still adding addresses stops at the next one and the VIPs are dropped.
func (m *Manager) Follow(reason string) {
	m.tell(reason, func() { m.leader = false })
	m.change()
}

// Close drops the VIPs for good (shutdown): later calls add nothing. It
// stops Run and returns once the VIPs are dropped and every Run has
// returned.
func (m *Manager) Close(reason string) {
	m.tell(reason, func() {
		if !m.closed {
			m.closed = true
			m.quitCh()
			close(m.quit)
		}
	})
	m.change()
	m.runs.Wait()
}

// quitCh is the channel Close closes; under mu.
func (m *Manager) quitCh() chan struct{} {
	if m.quit == nil {
		m.quit = make(chan struct{})
	}
	return m.quit
}

// Update sets the VIPs of the replicated model. A leader adds and removes
// what changed; a follower holds the ecmp VIPs and makes sure it holds
// none of the others, whoever put them there.
func (m *Manager) Update(vips map[string]fsm.VIP) {
	want, ecmp := Want(m.Node, vips), WantECMP(m.Node, vips)
	m.mu.Lock()
	if m.wantKnown && slices.Equal(want, m.want) && slices.Equal(ecmp, m.ecmp) {
		m.mu.Unlock()
		return
	}
	m.want, m.ecmp, m.wantKnown = want, ecmp, true
	m.told++
	m.why = "configuration changed"
	m.mu.Unlock()
	m.change()
}

// change makes the interfaces follow what the manager was told, one
// changer at a time.
func (m *Manager) change() {
	defer m.poke()
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.sync("")
}

// poke tells Run that a change was made: it may have work again.
func (m *Manager) poke() {
	m.mu.Lock()
	w := m.wakeCh()
	m.mu.Unlock()
	select {
	case w <- struct{}{}:
	default: // a poke is pending already
	}
}

// wakeCh is the channel poke signals; under mu.
func (m *Manager) wakeCh() chan struct{} {
	if m.wake == nil {
		m.wake = make(chan struct{}, 1)
	}
	return m.wake
}

// busy reports whether a Tick could do anything: addresses held that are
// announced (their announcements, and the leadership guard; not the ecmp
// VIPs, which need neither), a failed change to retry or one told but not
// yet worked on, an address another node still answered for, or one an
// earlier process left. A change under way counts as busy.
func (m *Manager) busy() bool {
	if !m.opMu.TryLock() {
		return true
	}
	defer m.opMu.Unlock()
	return m.announcing() || m.failing || len(m.contested) > 0 || len(m.stale) > 0 || m.intent().gen != m.synced
}

// dropStrays removes VIP addresses this node holds without being leader:
// put there by hand, or left by a process whose state file was lost.
func (m *Manager) dropStrays(want []Addr, reason string) {
	for _, a := range want {
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
		m.changed("removed", a, reason+": held without being leader", start)
	}
}

// Tick sends the announcements that are due, drops the VIPs if IsLeader
// says this node no longer leads, and retries failed changes. Run calls it.
//
// It never waits for a change in progress: it tells the manager that this
// node no longer leads (mu only), and if another caller is changing the
// interfaces, that change acts on it, and the announcements due go out
// on the next tick.
func (m *Manager) Tick(now time.Time) {
	if m.IsLeader != nil {
		m.mu.Lock()
		holding := m.leader && len(m.heldNow) > 0
		m.mu.Unlock()
		if holding && !m.IsLeader() {
			m.tell("raft state is no longer leader", func() { m.leader = false })
		}
	}
	if !m.opMu.TryLock() {
		return
	}
	defer m.opMu.Unlock()
	switch {
	case m.intent().gen != m.synced:
		m.sync("") // told while another change ran, which gave way
	case m.failing && now.Sub(m.lastTry) >= m.retryEvery():
		m.sync("retry")
	case len(m.contested) > 0 && now.Sub(m.lastTry) >= 2*m.probeWait():
		m.sync("probe again")
	}
	sched := m.schedule()
	for _, a := range slices.SortedFunc(maps.Keys(m.held), compareAddr) {
		h := m.held[a]
		if h.ecmp {
			continue // every node holds it: nothing to tell the segment
		}
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

// Run calls Tick every interval while a Tick has anything to do (busy),
// and otherwise waits for the next change, until done is closed or Close
// is called; Close returns only once Run has.
func (m *Manager) Run(done <-chan struct{}, interval time.Duration) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.runs.Add(1)
	quit, wake := m.quitCh(), m.wakeCh()
	m.mu.Unlock()
	defer m.runs.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if !m.busy() {
			// Nothing held and nothing pending (every follower, and a
			// leader without VIPs): no tick until a change pokes, rather
			// than a wake-up every interval for nothing.
			t.Stop()
			select {
			case <-done:
				return
			case <-quit:
				return
			case <-wake:
			}
			t.Reset(interval)
		}
		select {
		case <-done:
			return
		case <-quit:
			return
		case now := <-t.C:
			m.ticks.Add(1)
			m.Tick(now)
		}
	}
}

// Stats returns the counters and the addresses held now. It never waits
// for a change in progress: it reports the state after the last step.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.Held = append([]string{}, m.heldNow...)
	s.ECMP = slices.Clone(m.ecmpNow)
	return s
}

// publishHeld updates what Stats reports as held; after every change to
// m.held.
func (m *Manager) publishHeld() {
	now := make([]string, 0, len(m.held))
	var ecmp []string
	for _, a := range slices.SortedFunc(maps.Keys(m.held), compareAddr) {
		now = append(now, a.String())
		if m.held[a].ecmp {
			ecmp = append(ecmp, a.String())
		}
	}
	m.mu.Lock()
	m.heldNow, m.ecmpNow = now, ecmp
	m.mu.Unlock()
}

// sync makes the interfaces hold what the manager was last told: the
// wanted VIPs (leader) or nothing (otherwise). When it is told something
// else meanwhile it starts again on that, until what it did is what it
// was last told. A pass on something newly told logs its caller's reason;
// a pass on nothing new (start-up, a retry), the reason given. Under opMu.
func (m *Manager) sync(reason string) {
	for {
		in := m.intent()
		why := reason
		if in.gen != m.synced || why == "" {
			why = in.why
		}
		m.syncTo(in, why)
		m.synced = in.gen
		if m.intent().gen == in.gen {
			return
		}
	}
}

// syncTo makes one pass towards in. Removals come first: an address
// moving between interfaces must never be on two at once. Adds stop as
// soon as the manager is told something newer.
func (m *Manager) syncTo(in intent, reason string) {
	if m.held == nil {
		m.held = map[Addr]*holding{}
	}
	m.lastTry = time.Now()
	m.failing = false
	want := in.wanted()
	var left []Addr
	for _, a := range m.stale {
		start := time.Now()
		if err := m.Addrs.Del(a.Interface, a.Prefix); err != nil {
			m.fail("remove", a, reason, err)
			left = append(left, a)
			continue
		}
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
		m.publishHeld()
		m.changed("removed", a, reason, start)
	}
	if err := m.rec().store(append(slices.Collect(maps.Keys(m.held)), m.stale...)); err != nil {
		m.fail("record", Addr{}, reason, err)
	}
	m.forgetContests(want)
	m.setModes(in)
	if !in.leader {
		m.dropStrays(in.leaderOnly(), reason)
	}
	for _, a := range want {
		if _, ok := m.held[a]; ok {
			continue
		}
		if m.intent().gen != in.gen {
			return // told something newer: sync starts again on it
		}
		ecmp := slices.Contains(in.ecmp, a)
		// Another node answering for an ecmp VIP is the mode working.
		if !ecmp && !m.free(a) {
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
		m.held[a] = &holding{since: start, ecmp: ecmp}
		m.publishHeld()
		m.changed("added", a, reason, start)
	}
	// The first round goes out now, not at the next tick.
	sched := m.schedule()
	for _, a := range want {
		if m.intent().gen != in.gen {
			return
		}
		if h, ok := m.held[a]; ok && !h.ecmp && h.next == 0 && len(sched) > 0 && sched[0] == 0 {
			h.next = 1
			m.announce(a)
		}
	}
}

func (m *Manager) announce(a Addr) {
	err := m.Announcer.Announce(a.Interface, a.Prefix.Addr())
	m.mu.Lock()
	if err != nil {
		m.stats.AnnounceErrors++
		m.stats.LastError = err.Error()
	} else {
		m.stats.Announcements++
	}
	m.mu.Unlock()
	if err != nil {
		m.log().Warn("vip announcement failed", "vip", a.Prefix.String(), "interface", a.Interface, "err", err)
	}
}

// changed counts and reports an address added or removed.
func (m *Manager) changed(what string, a Addr, reason string, start time.Time) {
	took := time.Since(start)
	m.mu.Lock()
	if what == "added" {
		m.stats.Adds++
	} else {
		m.stats.Removes++
	}
	m.stats.LastChange = fmt.Sprintf("%s %s: %s (%s)", what, a, reason, took.Round(time.Microsecond))
	m.mu.Unlock()
	m.log().Info("vip "+what, "node", m.Node, "vip", a.Prefix.String(), "interface", a.Interface, "reason", reason, "took", took.String())
	if m.OnChange != nil {
		m.OnChange(what == "added", a, reason)
	}
}

// fail counts and reports a failed change; under opMu.
func (m *Manager) fail(op string, a Addr, reason string, err error) {
	m.failing = true
	m.mu.Lock()
	m.stats.Errors++
	m.stats.LastError = err.Error()
	m.mu.Unlock()
	m.log().Error("vip change failed; will retry", "node", m.Node, "op", op, "vip", a.Prefix.String(), "interface", a.Interface, "reason", reason, "err", err)
}

func (m *Manager) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.Default()
}

package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipvsman/ipvsman/director/ipvsnl"
	"github.com/ipvsman/ipvsman/fsm"
)

// Connection sync: every node runs the kernel's backup sync thread, so its
// connection table learns the leader's connections; the leader also runs
// the master thread, which sends them. A new leader then already has an
// entry for every established connection and forwards its next packet to
// the same real server instead of answering it with a reset. Roles follow
// Raft leadership, as the VIPs do. While the model has an ecmp VIP every
// node runs both threads whatever its role (the kernel allows both at once,
// with the same sync ID): the router may send any flow to any node, and a
// flow that moves to another node must find its connection there.
//
// The kernel has one master and one backup thread per network namespace.
// With sync on in the model they are ipvsmand's: a thread another tool
// started with other settings is replaced. With sync off ipvsmand starts
// none, and stops only the ones it started itself (Owned): another tool's
// threads, and the sync sysctls, are left as they are.

// SyncKernel starts and stops the kernel's sync threads (ipvsnl.Conn).
type SyncKernel interface {
	Daemons() ([]ipvsnl.Daemon, error)
	StartDaemon(ipvsnl.Daemon) error
	StopDaemon(state uint32) error
}

// SyncTarget is what this node's sync threads must be.
type SyncTarget struct {
	Settings fsm.Sync // with defaults (fsm.SyncOf)
	Leader   bool
	// ECMP says the model has an ecmp VIP: every node runs the master
	// too, and sets ECMPSysctls.
	ECMP  bool
	Iface string // this node's sync interface; "": none, no threads
	// Mixed names a real server whose address family differs from its
	// service's (MixedFamily); "": none. The kernel refuses such a server
	// while a sync thread runs, so there are then no threads.
	Mixed string
	// Hold, when set, says why the state may be older than the one this
	// node acted on before it started (CatchUp): the pass changes no
	// thread and no sysctl.
	Hold string
}

// CatchUp tells whether a restarted node's state has caught up with what
// it had applied before. A restart restores the last snapshot and applies
// the log after it only once a leader is heard from: until then the state
// may say sync is on (the default of an empty state) although the model
// turned it off, and acting on it would replace another tool's threads.
type CatchUp struct {
	Last uint64 // the log's last index when the node opened
	done bool
}

// Hold is why a pass on the state at applied must wait ("" once caught
// up, and from then on): it has not reached Last, nor the commit index a
// leader gave (commit; 0: none yet), which is as new as the model gets.
func (c *CatchUp) Hold(applied, commit uint64) string {
	if c.done || applied >= c.Last || (commit > 0 && applied >= commit) {
		c.done = true
		return ""
	}
	return fmt.Sprintf("the state is at index %d, the log this node started with ends at %d: waiting to apply it", applied, c.Last)
}

// Done reports whether the state has caught up.
func (c *CatchUp) Done() bool { return c.done }

// WantDaemons lists the threads a target asks for: a backup always, and a
// master on the leader, or on every node while there is an ecmp VIP; none
// when sync is off or there is no interface.
func WantDaemons(t SyncTarget) []ipvsnl.Daemon {
	if t.Settings.Off || t.Iface == "" || t.Mixed != "" {
		return nil
	}
	d := ipvsnl.Daemon{Iface: t.Iface, SyncID: uint32(t.Settings.ID), MaxLen: t.Settings.MaxLen,
		Group: t.Settings.Group, Port: t.Settings.Port, TTL: t.Settings.TTL}
	backup := d
	backup.State = ipvsnl.DaemonBackup
	out := []ipvsnl.Daemon{backup}
	if t.Leader || t.ECMP {
		master := d
		master.State = ipvsnl.DaemonMaster
		out = append(out, master)
	}
	return out
}

// SyncOp is one change to the sync threads: a start, or a stop of the
// thread in state Stop.
type SyncOp struct {
	Start *ipvsnl.Daemon
	Stop  uint32
}

func (o SyncOp) String() string {
	if o.Start != nil {
		return fmt.Sprintf("start %s", describeDaemon(*o.Start))
	}
	return "stop " + stateName(o.Stop)
}

// PlanSync turns have into want: stops first (a thread whose settings
// differ is stopped and started again: the kernel cannot change one), then
// starts. The master comes first in both, so that a node losing the lead
// stops sending before anything else.
func PlanSync(want, have []ipvsnl.Daemon) []SyncOp {
	var stops, starts []SyncOp
	for _, state := range []uint32{ipvsnl.DaemonMaster, ipvsnl.DaemonBackup} {
		w, wok := daemonIn(want, state)
		h, hok := daemonIn(have, state)
		if hok && (!wok || !sameDaemon(w, h)) {
			stops = append(stops, SyncOp{Stop: state})
		}
		if wok && (!hok || !sameDaemon(w, h)) {
			starts = append(starts, SyncOp{Start: &w})
		}
	}
	return append(stops, starts...)
}

func daemonIn(ds []ipvsnl.Daemon, state uint32) (ipvsnl.Daemon, bool) {
	i := slices.IndexFunc(ds, func(d ipvsnl.Daemon) bool { return d.State == state })
	if i < 0 {
		return ipvsnl.Daemon{}, false
	}
	return ds[i], true
}

// sameDaemon compares what was asked with what runs; a max length of 0
// asks for the kernel's choice, whatever it is.
func sameDaemon(want, have ipvsnl.Daemon) bool {
	return want.State == have.State && want.Iface == have.Iface && want.SyncID == have.SyncID &&
		want.Group == have.Group && want.Port == have.Port && want.TTL == have.TTL &&
		(want.MaxLen == 0 || want.MaxLen == have.MaxLen)
}

func stateName(s uint32) string {
	switch s {
	case ipvsnl.DaemonMaster:
		return "master"
	case ipvsnl.DaemonBackup:
		return "backup"
	}
	return fmt.Sprintf("state-%d", s)
}

func describeDaemon(d ipvsnl.Daemon) string {
	maxLen := "from the mtu"
	if d.MaxLen != 0 {
		maxLen = fmt.Sprint(d.MaxLen)
	}
	return fmt.Sprintf("%s on %s, sync id %d, %s port %d ttl %d maxlen %s", stateName(d.State), d.Iface, d.SyncID, d.Group, d.Port, d.TTL, maxLen)
}

// SyncReport is the sync threads as last seen, for status.
type SyncReport struct {
	Threads []SyncThread `json:"threads"`
	At      time.Time    `json:"at,omitzero"`
	Err     string       `json:"error,omitempty"` // the last pass failed; retried
	// Why is why there are no threads although sync is on ("" else).
	Why string `json:"why,omitempty"`
	// Conns and Synced count the connection table's entries, and those
	// learnt from another node's master (filled in for status).
	Conns  int `json:"connections"`
	Synced int `json:"synced"`
}

// SyncThread is one running thread, as the kernel reports it.
type SyncThread struct {
	State  string `json:"state"` // master or backup
	Iface  string `json:"interface"`
	SyncID uint32 `json:"sync_id"`
	Group  string `json:"group"`
	MaxLen uint16 `json:"max_len"`
}

// SyncDaemons keeps this node's sync threads as the target says.
type SyncDaemons struct {
	Kernel SyncKernel
	Log    *slog.Logger
	// Every is how often the threads are checked without a change
	// (default 10 s); after a failure, a second.
	Every time.Duration
	// SysctlDir, when set, is where each pass sets SyncSysctls while
	// sync is on, and Sysctls always (SyncSysctlDir; tests: a directory
	// of their own).
	SysctlDir string
	// Sysctls are the other IPVS settings the operator asked ipvsmand to
	// keep (--ipvs-sysctls); none by default: they are global to the
	// network namespace, and other tools' services see them too.
	Sysctls []Sysctl
	// Owned records the threads this node started (nil: in memory).
	Owned *Owned
	// MasterLinger keeps the master thread this long after leadership is
	// lost (default 3 s). The kernel sends a connection's first sync
	// message up to 2 s after it is made (IPVS_SYNC_FLUSH_TIME) and
	// stopping the thread discards what it holds, so stopping at once
	// would lose the newest connections on a planned transfer.
	MasterLinger time.Duration

	mu   sync.Mutex
	last SyncReport
	why  string // the last Why logged
	// overridden: an ecmp sysctl replaced the operator's value (logged
	// once per stretch of ecmp).
	overridden bool

	run owner // the loop Start began
}

// Last is the report of the last pass.
func (s *SyncDaemons) Last() SyncReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Start runs Run on a goroutine the SyncDaemons owns, until ctx ends or
// Stop is called (a loop an earlier Start began is stopped first).
func (s *SyncDaemons) Start(ctx context.Context, wake <-chan struct{}, target func() SyncTarget) {
	s.run.start(ctx, func(ctx context.Context) { s.Run(ctx, wake, target) })
}

// Stop ends the loop Start began and returns once it has exited: the
// master thread has been stopped (see Run) and no kernel call is made
// after it returns, so the caller may close the SyncKernel then.
func (s *SyncDaemons) Stop() { s.run.stop() }

// Run follows the target until ctx ends; wake signals that it may have
// changed (a model change, a leadership change). On the way out it stops
// the master, so that a stopped node does not go on sending; it returns
// once that is done. It starts no goroutine; Start and Stop run it for a
// caller that wants it owned.
func (s *SyncDaemons) Run(ctx context.Context, wake <-chan struct{}, target func() SyncTarget) {
	every := s.Every
	if every <= 0 {
		every = 10 * time.Second
	}
	linger := s.MasterLinger
	if linger <= 0 {
		linger = 3 * time.Second
	}
	t := time.NewTimer(0)
	defer t.Stop()
	var led bool
	var lostAt time.Time
	for {
		select {
		case <-ctx.Done():
			s.stopMaster()
			return
		case <-wake:
		case <-t.C:
		}
		next := every
		tg := target()
		switch {
		case tg.Leader:
			led = true
		case led:
			led, lostAt = false, time.Now()
			if !tg.ECMP { // with an ecmp VIP the master stays anyway
				s.log().Info("sync master kept after leadership loss, to send what it holds", "for", linger.String())
			}
		}
		if left := linger - time.Since(lostAt); !tg.Leader && left > 0 {
			tg.Leader = true // the master only: the VIPs are already gone
			next = min(next, left)
		}
		if err := s.Pass(tg); err != nil || tg.Hold != "" {
			// A failure is retried soon; so is a hold, which may end
			// without a change of the state (a leader's commit index).
			next = time.Second
		}
		t.Reset(next)
	}
}

// Pass makes one round of changes; it reports the first failure after
// trying every change.
func (s *SyncDaemons) Pass(t SyncTarget) error {
	if t.Hold != "" {
		return s.hold(t)
	}
	first := s.sysctls(t)
	have, err := s.Kernel.Daemons()
	if err != nil {
		first = errors.Join(first, fmt.Errorf("list sync threads: %w", err))
	} else {
		if err := s.change(t, have); err != nil && first == nil {
			first = err
		}
		have, err = s.Kernel.Daemons()
		if err != nil && first == nil {
			first = fmt.Errorf("list sync threads: %w", err)
		}
	}
	rep := SyncReport{At: time.Now(), Why: whyNone(t)}
	if rep.Why != s.why {
		if rep.Why != "" {
			s.log().Warn("connection sync off on this node", "why", rep.Why)
		}
		s.why = rep.Why
	}
	rep.Threads = threadsOf(have)
	if first != nil {
		rep.Err = first.Error()
	}
	s.mu.Lock()
	s.last = rep
	s.mu.Unlock()
	return first
}

// hold reports what runs and changes nothing, saying why once.
func (s *SyncDaemons) hold(t SyncTarget) error {
	have, err := s.Kernel.Daemons()
	rep := SyncReport{At: time.Now(), Why: "waiting: " + t.Hold}
	if !strings.HasPrefix(s.why, "waiting: ") { // once per hold, not per index applied
		s.log().Info("sync threads and ipvs sysctls left as they are until the state catches up", "why", t.Hold)
	}
	s.why = rep.Why
	if err != nil {
		err = fmt.Errorf("list sync threads: %w", err)
		rep.Err = err.Error()
	}
	rep.Threads = threadsOf(have)
	s.mu.Lock()
	s.last = rep
	s.mu.Unlock()
	return err
}

func threadsOf(have []ipvsnl.Daemon) []SyncThread {
	var out []SyncThread
	for _, d := range have {
		out = append(out, SyncThread{State: stateName(d.State), Iface: d.Iface, SyncID: d.SyncID,
			Group: fmt.Sprintf("%s:%d", d.Group, d.Port), MaxLen: d.MaxLen})
	}
	return out
}

// sysctls sets the sync sysctls while sync is on, the ecmp ones while
// the model has an ecmp VIP (over the operator's value for the same
// name), and the operator's always.
func (s *SyncDaemons) sysctls(t SyncTarget) error {
	if s.SysctlDir == "" {
		return nil
	}
	want := s.Sysctls
	if t.ECMP {
		want = s.overECMP()
	} else {
		s.overridden = false
	}
	if !t.Settings.Off {
		want = append(SyncSysctls(), want...)
	}
	changed, err := ApplySysctls(s.SysctlDir, want)
	for _, c := range changed {
		s.log().Info("ipvs sysctl set", "change", c)
	}
	if err != nil {
		s.log().Warn("ipvs sysctls not all set; retrying", "err", err)
	}
	return err
}

// change starts and stops threads to turn have into what t wants. With
// sync off only the threads this node started are stopped; with sync on
// every thread is ours, whoever started it. It returns the first failure
// after trying every change.
func (s *SyncDaemons) change(t SyncTarget, have []ipvsnl.Daemon) error {
	own := s.owned()
	for _, state := range []uint32{ipvsnl.DaemonMaster, ipvsnl.DaemonBackup} {
		if _, ok := daemonIn(have, state); !ok {
			// Gone (stopped by hand): one another tool starts later is not ours.
			own.setThread(state, false)
		}
	}
	if t.Settings.Off {
		have = slices.DeleteFunc(slices.Clone(have), func(d ipvsnl.Daemon) bool { return !own.ownsThread(d.State) })
	}
	var first error
	for _, op := range PlanSync(WantDaemons(t), have) {
		var err error
		if op.Start != nil {
			err = s.Kernel.StartDaemon(*op.Start)
		} else {
			err = s.Kernel.StopDaemon(op.Stop)
		}
		if err != nil {
			s.log().Warn("sync thread change failed; retrying", "op", op.String(), "err", err)
			if first == nil {
				first = fmt.Errorf("%s: %w", op, err)
			}
			continue
		}
		if op.Start != nil {
			own.setThread(op.Start.State, true)
			s.log().Info("sync thread changed", "op", op.String(), "leader", t.Leader, "ecmp", t.ECMP)
			continue
		}
		started := "this node"
		if !own.ownsThread(op.Stop) {
			started = "another tool (connection sync is on in the model: the kernel's sync threads are ipvsmand's)"
		}
		own.setThread(op.Stop, false)
		s.log().Info("sync thread changed", "op", op.String(), "leader", t.Leader, "ecmp", t.ECMP, "started_by", started)
	}
	if !t.Settings.Off {
		// Threads already running as wanted are ours from now on too.
		for _, d := range WantDaemons(t) {
			if h, ok := daemonIn(have, d.State); ok && sameDaemon(d, h) {
				own.setThread(d.State, true)
			}
		}
	}
	if err := own.Save(); err != nil {
		s.log().Warn("record of owned sync threads not written; retrying at the next pass", "err", err)
	}
	return first
}

func (s *SyncDaemons) owned() *Owned {
	if s.Owned == nil {
		s.Owned = NewOwned()
	}
	return s.Owned
}

// whyNone says why a target with sync on asks for no threads.
func whyNone(t SyncTarget) string {
	switch {
	case t.Settings.Off:
		return ""
	case t.Iface == "":
		return "no sync interface (ipvsmand --sync-interface)"
	case t.Mixed != "":
		return t.Mixed + ": its address family differs from the service's, which the kernel refuses while connection sync runs"
	}
	return ""
}

// MixedFamily names the first real server (or sorry server) whose address
// family differs from its service's: an IPv4 service tunnelling to IPv6
// servers or the reverse. "" when there is none.
func MixedFamily(c *fsm.Config) string {
	for _, key := range c.SortedServiceKeys() {
		svc := c.Services[key]
		fam6 := svc.Key.Family() == "inet6"
		if svc.Sorry != nil && svc.Sorry.Address.Is6() != fam6 {
			return fmt.Sprintf("sorry server %s of service %s", svc.Sorry.Key(), key)
		}
		for _, rk := range svc.SortedServerKeys() {
			if r := svc.Servers[rk]; r.Address.Is6() != fam6 {
				return fmt.Sprintf("real server %s of service %s", rk, key)
			}
		}
	}
	return ""
}

// stopMaster stops the master thread at shutdown, if this node started it
// (another tool's goes on).
func (s *SyncDaemons) stopMaster() {
	own := s.owned()
	if !own.ownsThread(ipvsnl.DaemonMaster) {
		return
	}
	have, err := s.Kernel.Daemons()
	if err != nil {
		return
	}
	if _, ok := daemonIn(have, ipvsnl.DaemonMaster); ok {
		if err := s.Kernel.StopDaemon(ipvsnl.DaemonMaster); err != nil {
			s.log().Warn("sync master not stopped at shutdown", "err", err)
			return
		}
		s.log().Info("sync thread changed", "op", "stop master", "leader", false, "reason", "shutdown")
	}
	own.setThread(ipvsnl.DaemonMaster, false)
	if err := own.Save(); err != nil {
		s.log().Warn("record of owned sync threads not written", "err", err)
	}
}

func (s *SyncDaemons) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
// Raft leadership, as the VIPs do.

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
	Iface    string // this node's sync interface; "": none, no threads
	// Masquerading: the model has masqueraded real servers (see
	// SyncSysctls).
	Masquerading bool
	// Mixed names a real server whose address family differs from its
	// service's (MixedFamily); "": none. The kernel refuses such a server
	// while a sync thread runs, so there are then no threads.
	Mixed string
}

// WantDaemons lists the threads a target asks for: a backup always, and a
// master on the leader; none when sync is off or there is no interface.
func WantDaemons(t SyncTarget) []ipvsnl.Daemon {
	if t.Settings.Off || t.Iface == "" || t.Mixed != "" {
		return nil
	}
	d := ipvsnl.Daemon{Iface: t.Iface, SyncID: uint32(t.Settings.ID), MaxLen: t.Settings.MaxLen,
		Group: t.Settings.Group, Port: t.Settings.Port, TTL: t.Settings.TTL}
	backup := d
	backup.State = ipvsnl.DaemonBackup
	out := []ipvsnl.Daemon{backup}
	if t.Leader {
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
	// SysctlDir, when set, is where each pass sets SyncSysctls
	// (SyncSysctlDir; tests: a directory of their own).
	SysctlDir string
	// MasterLinger keeps the master thread this long after leadership is
	// lost (default 3 s). The kernel sends a connection's first sync
	// message up to 2 s after it is made (IPVS_SYNC_FLUSH_TIME) and
	// stopping the thread discards what it holds, so stopping at once
	// would lose the newest connections on a planned transfer.
	MasterLinger time.Duration

	mu   sync.Mutex
	last SyncReport
	why  string // the last Why logged

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
			s.log().Info("sync master kept after leadership loss, to send what it holds", "for", linger.String())
		}
		if left := linger - time.Since(lostAt); !tg.Leader && left > 0 {
			tg.Leader = true // the master only: the VIPs are already gone
			next = min(next, left)
		}
		if err := s.Pass(tg); err != nil {
			next = time.Second
		}
		t.Reset(next)
	}
}

// Pass makes one round of changes; it reports the first failure after
// trying every change.
func (s *SyncDaemons) Pass(t SyncTarget) error {
	var first error
	if s.SysctlDir != "" {
		changed, err := ApplySysctls(s.SysctlDir, SyncSysctls(t.Masquerading))
		for _, c := range changed {
			s.log().Info("ipvs sysctl set", "change", c)
		}
		if err != nil {
			s.log().Warn("ipvs sysctls not all set; retrying", "err", err)
			first = err
		}
	}
	have, err := s.Kernel.Daemons()
	if err != nil {
		first = errors.Join(first, fmt.Errorf("list sync threads: %w", err))
	} else {
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
			s.log().Info("sync thread changed", "op", op.String(), "leader", t.Leader)
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
	for _, d := range have {
		rep.Threads = append(rep.Threads, SyncThread{State: stateName(d.State), Iface: d.Iface, SyncID: d.SyncID,
			Group: fmt.Sprintf("%s:%d", d.Group, d.Port), MaxLen: d.MaxLen})
	}
	if first != nil {
		rep.Err = first.Error()
	}
	s.mu.Lock()
	s.last = rep
	s.mu.Unlock()
	return first
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

func (s *SyncDaemons) stopMaster() {
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
}

func (s *SyncDaemons) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

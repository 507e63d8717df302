package director

import (
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// What the daemon composes from the replicated state and the kernel for
// the reconciler, the sync threads and the API: pure, so that tests reach
// it and cmd/ stays wiring.

// TargetOf is the reconciler's target for a state applied up to index
// applied, made afresh; Targets makes a series of them in proportion to
// what changed.
func TargetOf(s *fsm.State, applied uint64) Target {
	return Target{Table: Desired(s), Timeouts: s.Config.Timeouts, Version: s.Version, Index: applied}
}

// SyncTargetOf is the sync threads' target for a config: leader says
// whether this node leads, iface is its sync interface ("": none).
func SyncTargetOf(c *fsm.Config, leader bool, iface string) SyncTarget {
	return SyncTarget{Leader: leader, Iface: iface, Settings: fsm.SyncOf(c), Mixed: MixedFamily(c), ECMP: c.HasECMP()}
}

// SyncTargets makes the sync threads' targets, walking a configuration's
// real servers (MixedFamily) once per configuration rather
// than on every change of the state: health verdicts change the state,
// never the configuration. Not safe for concurrent use.
type SyncTargets struct {
	cfg   *fsm.Config
	mixed string
	ecmp  bool
}

// Target is SyncTargetOf(c, leader, iface).
func (g *SyncTargets) Target(c *fsm.Config, leader bool, iface string) SyncTarget {
	if g.cfg != c {
		g.cfg, g.mixed, g.ecmp = c, MixedFamily(c), c.HasECMP()
	}
	return SyncTarget{Leader: leader, Iface: iface, Settings: fsm.SyncOf(c), Mixed: g.mixed, ECMP: g.ecmp}
}

// KernelConfig is the kernel's table and timeouts as a model config: what
// a node reports as its kernel view, printed like the model.
func KernelConfig(t Table, to fsm.Timeouts) *fsm.Config {
	c := t.Config()
	c.Timeouts = &to
	return c
}

// CountConns adds the connection table's entries, and those learnt from
// another node's sync master, to a sync report.
func CountConns(r SyncReport, conns []Conn) SyncReport {
	for _, c := range conns {
		r.Conns++
		if c.Synced {
			r.Synced++
		}
	}
	return r
}

// StatsKernel is what KernelView reads: a kernel table with its counters,
// and the connection timeouts (Netlink).
type StatsKernel interface {
	ReadStats() (Table, ipvsadm.Stats, error)
	Timeouts() (fsm.Timeouts, error)
}

// KernelView reads a node's kernel table, counters and timeouts: the
// API's GET /v1/kernel, printed like the model.
func KernelView(k StatsKernel) (*fsm.Config, ipvsadm.Stats, error) {
	t, st, err := k.ReadStats()
	if err != nil {
		return nil, nil, err
	}
	to, err := k.Timeouts()
	if err != nil {
		return nil, nil, err
	}
	return KernelConfig(t, to), st, nil
}

// Package health runs the health checks on the leader and turns their
// results into verdict transitions: rise/fall counting per real server
// (Tracker), a scheduler with jittered starts and bounded concurrency, and
// one set-verdicts command per tick carrying every transition (Runner).
//
// Only transitions are committed. A new leader starts its trackers from the
// committed verdicts, so a failover changes nothing by itself: a server
// that was down stays down until it has passed rise checks on the new
// leader, one that was up stays up until it has failed fall checks.
//
// It never decides that this node leads, and never reaches Raft or a
// checker itself: its owner starts the Runner when leadership is gained and
// stops it when it is lost, and hands it Build, Schedule and Commit
// (director/check and the cluster's write path, in the daemon). It imports
// only fsm.
package health

import "github.com/ipvsman/ipvsman/fsm"

// Tracker is the rise/fall state of one real server.
type Tracker struct {
	Rise, Fall int
	// Health is the current verdict; unknown counts as up (a server
	// without a verdict is usable, as in the kernel table), or as down
	// with Alpha.
	Health fsm.Health
	// Alpha: an unknown server is down until its first check passes, and
	// its first result, either way, is its verdict.
	Alpha  bool
	streak int // consecutive results that contradict Health
}

// NewTracker starts from a committed verdict.
func NewTracker(rise, fall int, committed fsm.Health) *Tracker {
	return &Tracker{Rise: rise, Fall: fall, Health: committed}
}

// Confirming reports failures of a server that counts as up, not yet
// Fall of them: the next check is a retry (see HealthCheck.RetryDelayMS).
func (t *Tracker) Confirming() bool {
	return t.Health != fsm.HealthDown && t.streak > 0
}

// Observe feeds one check result and reports whether the verdict flipped
// (Health then holds the new one).
func (t *Tracker) Observe(ok bool) bool {
	if t.Alpha && t.Health == fsm.HealthUnknown {
		t.Health = fsm.HealthDown
		if ok {
			t.Health = fsm.HealthUp
		}
		return true
	}
	up := t.Health != fsm.HealthDown
	if ok == up {
		t.streak = 0
		if t.Health == fsm.HealthUnknown && ok {
			// A first success confirms an unknown server without a
			// transition anyone would act on; record it as up.
			t.Health = fsm.HealthUp
			return true
		}
		return false
	}
	t.streak++
	need := t.Fall
	if !up {
		need = t.Rise
	}
	if t.streak < need {
		return false
	}
	t.streak = 0
	if up {
		t.Health = fsm.HealthDown
	} else {
		t.Health = fsm.HealthUp
	}
	return true
}

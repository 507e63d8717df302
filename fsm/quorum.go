package fsm

import (
	"fmt"
	"maps"
	"math"
	"strings"
)

// A service's quorum is keepalived's: the least total weight of live real
// servers the service runs on without a loss of quality. The live weight
// is the sum of the weights the kernel would give the usable real servers
// (active, not down; a verdict's weight replaces the configured one), as
// keepalived's weigh_live_realservers sums the alive servers' effective
// weights. The service loses its quorum when the live weight falls below
// Quorum-Hysteresis (or to 0) and gains it again when it reaches
// Quorum+Hysteresis; in between it keeps the state it had.
//
// That memory is replicated: every node must build the same kernel table,
// so State.QuorumUp holds each quorum service's state, set when a command
// is applied (a verdict or a configuration change) and written into the
// snapshot. A service that has no state yet (its quorum was just set, or
// the snapshot came from a build before QuorumProtocol) starts as
// keepalived starts: it holds its quorum only at Quorum+Hysteresis.
//
// While its quorum is lost a service with a sorry server serves from the
// sorry server alone: its live real servers are taken out of the table
// as its on_failure says (weight 0, or removed), as keepalived takes them
// out of the pool. Without a sorry server the table stays as it is, as
// keepalived's does: the loss is reported (status, hooks, metrics) and the
// remaining servers keep serving rather than nothing.

// QuorumProtocol is the protocol that knows a service's quorum. An older
// build would drop the fields from its copy of the model and build
// another table than the rest, so a configuration using them is refused
// until every member speaks it (Config.Needs).
const QuorumProtocol = GroupProtocol + 1

// OpSetQuorum sets a service's quorum and hysteresis (`ipvsman quorum`);
// ipvsadm has no such option. Quorum 0 removes it.
const OpSetQuorum OpKind = "set-quorum"

// QuorumSetting is what set-quorum sets.
type QuorumSetting struct {
	Quorum     int `json:"quorum"`
	Hysteresis int `json:"hysteresis,omitempty"`
}

// MaxQuorum bounds a quorum, so that Quorum+Hysteresis never overflows.
const MaxQuorum = math.MaxInt32

// validateQuorum checks a service's quorum and hysteresis.
func validateQuorum(s *Service) error {
	switch {
	case s.Quorum < 0 || s.Quorum > MaxQuorum:
		return fmt.Errorf("service %s quorum %d: out of range 0-%d (0: none)", s.Key, s.Quorum, MaxQuorum)
	case s.Hysteresis < 0:
		return fmt.Errorf("service %s hysteresis %d: must be 0 or more", s.Key, s.Hysteresis)
	case s.Hysteresis > 0 && s.Quorum == 0:
		return fmt.Errorf("service %s hysteresis %d: needs a quorum (quorum is 0)", s.Key, s.Hysteresis)
	case s.Quorum > 0 && s.Hysteresis >= s.Quorum:
		return fmt.Errorf("service %s hysteresis %d: must be below the quorum %d", s.Key, s.Hysteresis, s.Quorum)
	}
	return nil
}

// needsQuorum is the protocol a configuration's quorums need, and what
// needs it.
func (c *Config) needsQuorum() (int, string) {
	for _, k := range c.SortedServiceKeys() {
		if svc := c.Services[k]; svc.Quorum != 0 || svc.Hysteresis != 0 {
			return QuorumProtocol, "service " + k + " quorum"
		}
	}
	return BaseCommandProtocol, ""
}

// setQuorum is the set-quorum op on service key (old).
func (b *batch) setQuorum(key string, old *Service, op Op) error {
	if op.Quorum == nil {
		return fmt.Errorf("%s on service %s: quorum: missing", op.Kind, key)
	}
	probe := *old
	probe.Quorum, probe.Hysteresis = op.Quorum.Quorum, op.Quorum.Hysteresis
	if err := validateQuorum(&probe); err != nil {
		return err
	}
	svc := b.writable(key, old)
	svc.Quorum, svc.Hysteresis = op.Quorum.Quorum, op.Quorum.Hysteresis
	return nil
}

// Usable reports whether real server rs of svc, with verdict v, takes new
// connections: active and not down. Without a verdict a server is usable,
// unless its check has Alpha: then it waits for its first passed check.
func Usable(svc *Service, rs *RealServer, v Verdict) bool {
	down := v.Health == HealthDown || (v.Health != HealthUp && Alpha(svc, rs))
	return rs.State == Active && !down
}

// EffectiveWeight is the weight rs has while usable: its verdict's, when
// an exec check printed "weight N" (keepalived's misc_dynamic), else its own.
func EffectiveWeight(rs *RealServer, v Verdict) int {
	if v.Weight != nil {
		return *v.Weight
	}
	return rs.Weight
}

// LiveWeight is the sum of the effective weights of the usable real
// servers of svc (at key), with the verdicts by VerdictKey.
func LiveWeight(key string, svc *Service, verdicts map[string]Verdict) int {
	live := 0
	for rk, rs := range svc.Servers {
		if v := verdicts[VerdictKey(key, rk)]; Usable(svc, rs, v) {
			live += EffectiveWeight(rs, v)
		}
	}
	return live
}

// QuorumHeld is the quorum state of svc at live weight live: with the
// state it had (known), keepalived's update_quorum_state; without,
// keepalived's start (set_quorum_states), which holds it only at
// Quorum+Hysteresis.
func QuorumHeld(svc *Service, live int, was, known bool) bool {
	if known && was {
		return live > 0 && live >= svc.Quorum-svc.Hysteresis
	}
	return live >= svc.Quorum+svc.Hysteresis
}

// QuorumLost reports whether the service at key has a quorum and has lost
// it. A state that carries no quorum state for it (one a client made from
// the configuration and verdicts alone) reads it as a start would.
func (s *State) QuorumLost(key string) bool {
	svc := s.Config.Services[key]
	if svc == nil || svc.Quorum == 0 {
		return false
	}
	if up, ok := s.QuorumUp[key]; ok {
		return !up
	}
	return !QuorumHeld(svc, LiveWeight(key, svc, s.Verdicts), false, false)
}

// settleQuorum brings the quorum state of every service that this commit
// changed (old is the configuration before it, verdicts the verdicts it
// wrote) up to date. Only those can have moved: a quorum state depends on
// its service and the service's verdicts alone.
func (s *State) settleQuorum(old *Config, verdicts map[string]Verdict) {
	var touched map[string]bool
	touch := func(k string) {
		if touched == nil {
			touched = map[string]bool{}
		}
		touched[k] = true
	}
	if old != s.Config {
		for k, was := range old.Services {
			if s.Config.Services[k] != was {
				touch(k)
			}
		}
		for k := range s.Config.Services {
			if _, ok := old.Services[k]; !ok {
				touch(k)
			}
		}
	}
	for k := range verdicts {
		svc, _, _ := strings.Cut(k, "/")
		touch(svc)
	}
	for k := range touched {
		s.settleService(k)
	}
}

// settleService sets the quorum state of the service at key from its
// live weight and the state it had. A change bumps the service's verdict
// generation: its kernel table changes with it, and a reader that caches
// per service (director.Targets) keys on that generation.
func (s *State) settleService(key string) {
	svc := s.Config.Services[key]
	was, known := s.QuorumUp[key]
	if svc == nil || svc.Quorum == 0 {
		if known {
			delete(s.QuorumUp, key)
			s.verdictsChanged(key)
		}
		return
	}
	up := QuorumHeld(svc, LiveWeight(key, svc, s.Verdicts), was, known)
	if known && up == was {
		return
	}
	if s.QuorumUp == nil {
		s.QuorumUp = map[string]bool{}
	}
	s.QuorumUp[key] = up
	s.verdictsChanged(key)
}

// restoreQuorum makes a restored state's quorum states agree with its
// configuration: a snapshot of a build before QuorumProtocol has none, and
// its services start as keepalived's do.
func (s *State) restoreQuorum() {
	for k := range s.QuorumUp {
		if svc := s.Config.Services[k]; svc == nil || svc.Quorum == 0 {
			delete(s.QuorumUp, k)
		}
	}
	for k, svc := range s.Config.Services {
		if _, ok := s.QuorumUp[k]; !ok && svc.Quorum > 0 {
			s.settleService(k)
		}
	}
}

// QuorumStates lists the quorum state of every service that has a quorum,
// by key: true while it holds it. A copy, for the API.
func (s *State) QuorumStates() map[string]bool {
	if len(s.QuorumUp) == 0 {
		return nil
	}
	return maps.Clone(s.QuorumUp)
}

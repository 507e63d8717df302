package director

import (
	"maps"

	"github.com/ipvsman/ipvsman/director/table"
	"github.com/ipvsman/ipvsman/fsm"
)

// Targets makes the reconciler's targets from successive states, in
// proportion to what changed since the last one rather than to the size of
// the model: one weight change in a table of tens of thousands of real
// servers must not rebuild the whole table under the state's lock (which
// the next command's apply waits for), nor make the pass plan over every
// service.
//
// It relies on two facts of fsm.State: a committed Config and its services
// are never changed (an edit makes a new *fsm.Service, an unchanged
// service keeps its pointer), and a service's verdicts, which change in
// place, bump its VerdictGeneration. A service's desired entry is computed
// again only when one of the two moved. Not safe for concurrent use: the
// reconciler's loop owns it.
type Targets struct {
	state   *fsm.State      // the state the memo was made from
	index   uint64          // its applied index
	memo    map[string]memo // by service key
	table   Table           // the last target's table (never changed once handed out)
	managed map[string]bool // the last target's Managed (likewise)
	counts  map[string]int  // history versions naming each service key
	counted []version       // the history versions counts holds, oldest first
	version uint64          // the configuration version managed was made for
	built   int             // desired entries computed so far (tests)
}

// version is one history entry as counted: its number and configuration.
type version struct {
	n   uint64
	cfg *fsm.Config
}

type memo struct {
	svc *fsm.Service
	gen uint64
	out Service
}

// Target is the reconciler's target for s, applied up to applied. It
// must be called with s held still (under node.View). Beside the table it
// says which services differ from the previous target's (Base, Changed),
// so that a pass whose kernel holds that previous table plans only those.
func (g *Targets) Target(s *fsm.State, applied uint64) Target {
	if g.state != s || g.memo == nil {
		// Another state object (a restored snapshot): nothing carries over.
		*g = Targets{state: s, memo: map[string]memo{}}
		t := g.build(s, applied)
		t.Changed = nil
		return t
	}
	return g.build(s, applied)
}

func (g *Targets) build(s *fsm.State, applied uint64) Target {
	base := g.index
	changed := map[string]bool{}
	var next Table
	for key, svc := range s.Config.Services {
		gen := s.VerdictGeneration(key)
		if m, ok := g.memo[key]; ok && m.svc == svc && m.gen == gen {
			continue
		}
		if next == nil {
			next = g.cloneTable()
		}
		out := table.DesiredService(key, svc, s.Verdicts)
		g.built++
		g.memo[key] = memo{svc: svc, gen: gen, out: out}
		next[key] = out
		changed[key] = true
	}
	if len(g.memo) > len(s.Config.Services) {
		for key := range g.memo {
			if _, ok := s.Config.Services[key]; !ok {
				if next == nil {
					next = g.cloneTable()
				}
				delete(g.memo, key)
				delete(next, key)
				changed[key] = true
			}
		}
	}
	if next != nil || g.table == nil {
		if next == nil {
			next = Table{}
		}
		g.table = next
	}
	if g.managed == nil || g.version != s.Version {
		g.managed, g.version = g.managedOf(s), s.Version
	}
	g.index = applied
	return Target{Table: g.table, Timeouts: s.Config.Timeouts, Managed: g.managed, Version: s.Version, Index: applied,
		Base: base, Changed: changed}
}

// cloneTable is a new table holding the last one's services: the one
// handed out is the reconciler's cache of what the kernel holds, so it is
// never changed.
func (g *Targets) cloneTable() Table {
	if g.table == nil {
		return Table{}
	}
	return maps.Clone(g.table)
}

// managedOf is table.Managed kept up to date version by version: the
// history gains a version at its end with each configuration change and
// loses its oldest past the limit, so only those two are counted again.
func (g *Targets) managedOf(s *fsm.State) map[string]bool {
	moved := !g.continues(s.History) // the set of keys counted changed
	if moved {
		g.counts, g.counted = map[string]int{}, nil
	}
	for len(g.counted) > 0 && (len(s.History) == 0 || g.counted[0].n < s.History[0].Version) {
		for k := range g.counted[0].cfg.Services {
			if g.counts[k]--; g.counts[k] == 0 {
				delete(g.counts, k)
				moved = true
			}
		}
		g.counted = g.counted[1:]
	}
	for i := len(g.counted); i < len(s.History); i++ {
		h := s.History[i]
		for k := range h.Config.Services {
			if g.counts[k]++; g.counts[k] == 1 {
				moved = true
			}
		}
		g.counted = append(g.counted, version{h.Version, h.Config})
	}
	if !moved && g.managed != nil && len(s.History) > 0 {
		// The current configuration is the history's last version, so
		// its keys are counted: the set is the one already made.
		return g.managed
	}
	m := make(map[string]bool, len(g.counts)+len(s.Config.Services))
	for k := range g.counts {
		m[k] = true
	}
	for k := range s.Config.Services {
		m[k] = true
	}
	return m
}

// continues reports whether history is the counted versions with some of
// the oldest dropped and newer ones appended, each version still the same
// configuration.
func (g *Targets) continues(history []fsm.HistoryEntry) bool {
	if g.counts == nil {
		return false
	}
	i := 0
	for i < len(g.counted) && len(history) > 0 && g.counted[i].n < history[0].Version {
		i++
	}
	for j := 0; i < len(g.counted); i, j = i+1, j+1 {
		if j >= len(history) || history[j].Version != g.counted[i].n || history[j].Config != g.counted[i].cfg {
			return false
		}
	}
	return true
}

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
	state *fsm.State      // the state the memo was made from
	index uint64          // its applied index
	memo  map[string]memo // by service key
	table Table           // the last target's table (never changed once handed out)
	built int             // desired entries computed so far (tests)
}

type memo struct {
	svc     *fsm.Service
	gen     uint64
	out     Service
	members []string // the keys of the group's kernel services (table.DesiredGroup)
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

// build computes the entries of the services that changed. A service's
// group members are entries of their own: the kernel services of members
// a change dropped are deleted, after which every entry computed is put,
// so that a key that moved in one step (from one group to another, or
// from a group to a service of its own) ends as the state says.
func (g *Targets) build(s *fsm.State, applied uint64) Target {
	base := g.index
	changed := map[string]bool{}
	var next Table
	var drop []string
	put := map[string]Service{}
	for key, svc := range s.Config.Services {
		gen := s.VerdictGeneration(key)
		m, ok := g.memo[key]
		if ok && m.svc == svc && m.gen == gen {
			continue
		}
		out := table.DesiredService(key, svc, s.Verdicts, s.QuorumLost(key))
		g.built++
		put[key] = out
		var members []string
		for _, ms := range table.DesiredGroup(svc, out) {
			mk := ms.Key.String()
			members = append(members, mk)
			put[mk] = ms
		}
		drop = append(drop, m.members...)
		g.memo[key] = memo{svc: svc, gen: gen, out: out, members: members}
	}
	if len(g.memo) > len(s.Config.Services) {
		for key, m := range g.memo {
			if _, ok := s.Config.Services[key]; !ok {
				delete(g.memo, key)
				drop = append(drop, key)
				drop = append(drop, m.members...)
			}
		}
	}
	if len(put) > 0 || len(drop) > 0 {
		next = g.cloneTable()
		for _, k := range drop {
			delete(next, k)
			changed[k] = true
		}
		for k, out := range put {
			next[k] = out
			changed[k] = true
		}
	}
	if next != nil || g.table == nil {
		if next == nil {
			next = Table{}
		}
		g.table = next
	}
	g.index = applied
	return Target{Table: g.table, Timeouts: s.Config.Timeouts, Version: s.Version, Index: applied,
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

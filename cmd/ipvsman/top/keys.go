package top

import (
	"fmt"
	"slices"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/ipvsman/ipvsman/fsm"
)

// onKey handles a key by its bubbletea name ("up", "+", "ctrl+c").
func (m *Model) onKey(k string) tea.Cmd {
	if k == "ctrl+c" {
		return tea.Quit
	}
	switch m.mode {
	case modePick:
		return m.pickKey(k)
	case modeConfirm:
		m.mode = modeTable
		if k == "y" || k == "Y" {
			return m.enqueue(m.confirm)
		}
		m.setStatus(false, m.confirmVerb+" cancelled")
		return nil
	}
	switch k {
	case "q":
		return tea.Quit
	case "up", "k":
		m.move(-1)
	case "down", "j":
		m.move(1)
	case "pgup":
		m.move(-m.bodyHeight())
	case "pgdown", " ":
		m.move(m.bodyHeight())
	case "home", "g":
		m.move(-len(m.rows))
	case "end", "G":
		m.move(len(m.rows))
	case "+", "=":
		return m.onAssigned(func(r row) tea.Cmd {
			return m.enqueue(intent{kind: intentWeight, service: r.service, server: r.server, delta: 1})
		})
	case "-":
		return m.onAssigned(func(r row) tea.Cmd {
			return m.enqueue(intent{kind: intentWeight, service: r.service, server: r.server, delta: -1})
		})
	case "s":
		return m.onAssigned(func(r row) tea.Cmd {
			return m.enqueue(intent{kind: intentState, service: r.service, server: r.server, state: fsm.Suspended})
		})
	case "r":
		return m.onAssigned(func(r row) tea.Cmd {
			return m.enqueue(intent{kind: intentState, service: r.service, server: r.server, state: fsm.Active})
		})
	case "d":
		return m.onServer(func(r row) tea.Cmd {
			if r.pool {
				m.setStatus(false, fmt.Sprintf("%s is in the pool of %s already: a assigns it, x forgets it", r.server, r.service))
				return nil
			}
			m.ask(intent{kind: intentUnassign, service: r.service, server: r.server}, "unassign",
				fmt.Sprintf("unassign %s from %s into its pool? (y/n)", r.server, r.service))
			return nil
		})
	case "x":
		return m.onServer(func(r row) tea.Cmd {
			if r.pool {
				m.ask(intent{kind: intentForget, service: r.service, server: r.server}, "forget",
					fmt.Sprintf("forget %s of %s for good? (y/n)", r.server, r.service))
				return nil
			}
			m.ask(intent{kind: intentDelete, service: r.service, server: r.server}, "delete",
				fmt.Sprintf("delete %s from %s, not kept in a pool? (y/n)", r.server, r.service))
			return nil
		})
	case "a":
		if r, ok := m.selected(); ok && r.pool {
			return m.enqueue(intent{kind: intentAssignPool, service: r.service, server: r.server})
		}
		m.startPick()
	case "n":
		return m.nextNode()
	case "c":
		m.showCluster = !m.showCluster
		m.scroll()
	case "esc":
		m.setStatus(false, "")
	}
	return nil
}

func (m *Model) move(d int) {
	if len(m.rows) == 0 {
		return
	}
	m.cursor = max(0, min(m.cursor+d, len(m.rows)-1))
	m.scroll()
}

// onServer runs f on the selected real server; on a service line it says
// what to do instead.
func (m *Model) onServer(f func(row) tea.Cmd) tea.Cmd {
	r, ok := m.selected()
	if !ok || r.server == "" {
		m.setStatus(false, "select a real server first (j/k or arrows)")
		return nil
	}
	return f(r)
}

// onAssigned runs f on the selected real server if it is assigned: a pool
// server has no weight in effect or state to change until it is assigned.
func (m *Model) onAssigned(f func(row) tea.Cmd) tea.Cmd {
	return m.onServer(func(r row) tea.Cmd {
		if r.pool {
			m.setStatus(false, fmt.Sprintf("%s is in the pool of %s, not assigned: a assigns it", r.server, r.service))
			return nil
		}
		return f(r)
	})
}

// ask puts the console in confirmation mode for a destructive intent:
// y sends it, any other key cancels.
func (m *Model) ask(in intent, verb, question string) {
	m.mode, m.confirm, m.confirmVerb = modeConfirm, in, verb
	m.setStatus(false, question)
}

// startPick opens the list of real servers the selected service (or the
// selected real server's service) could take.
func (m *Model) startPick() {
	r, ok := m.selected()
	if !ok {
		m.setStatus(false, "no service to assign a real server to")
		return
	}
	picks := candidates(m.cfg, r.service)
	if len(picks) == 0 {
		m.setStatus(false, fmt.Sprintf("every real server of the topology is already in %s", r.service))
		return
	}
	m.mode, m.picks, m.pickCur, m.pickService = modePick, picks, 0, r.service
	m.setStatus(false, fmt.Sprintf("assign to %s: enter assigns, esc cancels", r.service))
}

func (m *Model) pickKey(k string) tea.Cmd {
	switch k {
	case "up", "k":
		m.pickCur = max(0, m.pickCur-1)
	case "down", "j":
		m.pickCur = min(len(m.picks)-1, m.pickCur+1)
	case "enter":
		m.mode = modeTable
		c := m.picks[m.pickCur]
		tmpl := *c.server
		if c.own {
			return m.enqueue(intent{kind: intentAssignPool, service: m.pickService, server: tmpl.Key()})
		}
		return m.enqueue(intent{kind: intentAssign, service: m.pickService, server: tmpl.Key(), tmpl: &tmpl})
	case "esc", "q", "a":
		m.mode = modeTable
		m.setStatus(false, "assign cancelled")
	}
	return nil
}

// nodes lists the members whose kernel view can be shown.
func (m *Model) nodes() []string {
	if m.snap.Cluster == nil {
		return nil
	}
	var ids []string
	for _, n := range m.snap.Cluster.Nodes {
		ids = append(ids, n.ID)
	}
	slices.Sort(ids)
	return ids
}

// nextNode shows the next member's kernel view, at once.
func (m *Model) nextNode() tea.Cmd {
	ids := m.nodes()
	if len(ids) == 0 {
		m.setStatus(true, "no cluster status yet: the members are unknown")
		return nil
	}
	i := slices.Index(ids, m.node)
	m.node = ids[(i+1)%len(ids)]
	m.kernel, m.rates, m.kernelFor, m.base, m.baseFor = nil, nil, "", nil, ""
	m.setStatus(false, "kernel view: "+m.node)
	return m.fetch()
}

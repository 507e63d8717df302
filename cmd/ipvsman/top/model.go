package top

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/ipvsman/ipvsman/director/table"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/escape"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// Options configure a Model.
type Options struct {
	Source   Source
	Node     string        // the node whose kernel view is shown first ("" = the node at --api)
	Interval time.Duration // refresh period; 0 = 1s
	Now      func() time.Time
	Renderer *lipgloss.Renderer // nil = lipgloss's default (stdout)
}

// Model is the console's state. Update is pure but for the tea.Cmds it
// returns, which alone call the Source.
type Model struct {
	src      Source
	interval time.Duration
	now      func() time.Time
	tick     func(time.Duration) tea.Cmd // tea.Tick; tests replace it
	st       styles
	width    int
	height   int

	node      string // kernel view requested
	seq       uint64 // last snapshot asked for
	shown     uint64 // last snapshot applied
	fetching  bool
	askedAt   time.Time // when the pending snapshot was asked for
	fetchErr  string
	snap      Snapshot
	haveSnap  bool
	cfg       *fsm.Config // the snapshot's model plus this console's committed changes
	version   uint64
	desired   table.Table   // what every kernel holds for cfg: the weight in effect
	kernel    ipvsadm.Stats // the shown node's last counters
	kernelFor string
	base      ipvsadm.Stats // the counters the rates are measured from
	baseAt    time.Time
	baseFor   string
	rates     map[string]Rate

	rows   []row
	cursor int
	top    int // first table row on screen

	mode        mode
	picks       []candidate
	pickCur     int
	pickService string
	confirm     intent
	confirmVerb string // what y does: "unassign", "forget", "delete"

	queue  []intent
	acting bool
	status string
	isErr  bool

	showCluster bool
}

type row struct {
	service string // fsm.ServiceKey.String()
	server  string // "" on the service's own line
	pool    bool   // a server of the service's pool, not assigned
}

type mode int

const (
	modeTable mode = iota
	modePick
	modeConfirm
)

type tickMsg time.Time

type snapMsg struct {
	seq  uint64
	node string
	snap Snapshot
	err  error
}

type actedMsg struct {
	note string
	ops  []fsm.Op
	res  fsm.Result
	err  error
}

// New returns the console's model.
func New(o Options) *Model {
	m := &Model{src: o.Source, interval: o.Interval, now: o.Now, node: o.Node, tick: defaultTick,
		st: newStyles(o.Renderer), width: 80, height: 24, cfg: fsm.NewConfig()}
	if m.interval <= 0 {
		m.interval = time.Second
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m
}

func defaultTick(d time.Duration) tea.Cmd {
	return tea.Tick(d, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Init asks for the first snapshot and starts the clock.
func (m *Model) Init() tea.Cmd { return tea.Batch(m.fetch(), m.tick(m.interval)) }

// fetch asks for a snapshot in a tea.Cmd, so that a slow API never holds
// the keys up; its answer carries a sequence number, and one older than
// what the screen shows, or for another node, is dropped.
func (m *Model) fetch() tea.Cmd {
	m.seq++
	m.fetching, m.askedAt = true, m.now()
	seq, node, src := m.seq, m.node, m.src
	timeout := max(10*time.Second, 5*m.interval)
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		s, err := src.Snapshot(ctx, node)
		return snapMsg{seq: seq, node: node, snap: s, err: err}
	}
}

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.scroll()
		return m, nil
	case tickMsg:
		cmds := []tea.Cmd{m.tick(m.interval)}
		if !m.fetching {
			cmds = append(cmds, m.fetch())
		}
		return m, tea.Batch(cmds...)
	case snapMsg:
		return m, m.onSnapshot(msg)
	case actedMsg:
		return m, m.onActed(msg)
	case tea.KeyMsg:
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste {
			// Keys typed faster than the terminal is read arrive as one
			// message ("kk+"): each is a key of its own.
			var cmds []tea.Cmd
			for _, r := range msg.Runes {
				cmds = append(cmds, m.onKey(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: msg.Alt}.String()))
			}
			return m, tea.Batch(cmds...)
		}
		return m, m.onKey(msg.String())
	}
	return m, nil
}

func (m *Model) onSnapshot(msg snapMsg) tea.Cmd {
	if msg.seq == m.seq {
		m.fetching = false
	}
	if msg.seq <= m.shown || msg.node != m.node {
		return nil // overtaken by a newer answer or a node switch
	}
	if msg.err != nil {
		m.fetchErr = printable(msg.err.Error())
		return nil
	}
	m.shown, m.fetchErr = msg.seq, ""
	s := msg.snap
	if m.node == "" {
		m.node = s.KernelNode
	}
	m.kernel, m.kernelFor = s.Kernel, s.KernelNode
	switch {
	case s.Kernel == nil || m.base == nil || m.baseFor != s.KernelNode:
		m.rates = nil
		m.base, m.baseAt, m.baseFor = s.Kernel, s.At, s.KernelNode
	case s.At.Sub(m.baseAt) >= m.interval/2:
		m.rates = Rates(m.base, s.Kernel, s.At.Sub(m.baseAt))
		m.base, m.baseAt = s.Kernel, s.At
	default:
		// The read an action asks for can come moments after the
		// periodic one: rates over so short a window would be noise, so
		// the last rates and their base stay.
	}
	// A read that started before this console's last commit must not
	// bring back the weight it just changed.
	if s.Version >= m.version && s.Config != nil {
		m.cfg, m.version = s.Config, s.Version
	}
	m.snap, m.haveSnap = s, true
	m.rebuild()
	return nil
}

func (m *Model) onActed(msg actedMsg) tea.Cmd {
	m.acting = false
	if msg.err == nil && msg.res.Err != "" {
		msg.err = fmt.Errorf("%s", msg.res.Err)
	}
	if msg.err != nil {
		// The API's words, unchanged: they name the field and the value.
		m.setStatus(true, "error: "+msg.err.Error())
		m.queue = nil
		return m.fetch()
	}
	if cfg, err := fsm.ApplyOps(m.cfg, msg.ops); err == nil && msg.res.Version >= m.version {
		m.cfg, m.version = cfg, msg.res.Version
		m.rebuild()
	}
	if msg.res.Changed {
		m.setStatus(false, fmt.Sprintf("ok: %s (committed as version %d)", msg.note, msg.res.Version))
	} else {
		m.setStatus(false, fmt.Sprintf("ok: %s (no change)", msg.note))
	}
	return tea.Batch(m.fetch(), m.send())
}

func (m *Model) setStatus(isErr bool, s string) { m.status, m.isErr = printable(s), isErr }

// printable is text that came from elsewhere (an error from the API, a
// verdict's reason, a member's name) as one line the screen shows: what
// could move the cursor, restyle the terminal or reorder the line is
// escaped (escape.String), and a newline or tab is a space, since the
// screen wraps the line itself.
func printable(s string) string { return escape.String(spaces.Replace(s)) }

var spaces = strings.NewReplacer("\n", " ", "\t", " ")

// enqueue adds an action; actions go one at a time, in key order.
func (m *Model) enqueue(in intent) tea.Cmd {
	m.queue = append(m.queue, in)
	return m.send()
}

// send starts the next queued action unless one is under way.
func (m *Model) send() tea.Cmd {
	for !m.acting && len(m.queue) > 0 {
		in := m.queue[0]
		m.queue = m.queue[1:]
		ops, note, err := in.ops(m.cfg)
		if err != nil {
			m.setStatus(true, "error: "+err.Error())
			m.queue = nil
			return nil
		}
		if len(ops) == 0 {
			m.setStatus(false, note)
			continue
		}
		m.acting = true
		m.setStatus(false, note+" ...")
		src := m.src
		return func() tea.Msg {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := src.Act(ctx, ops)
			return actedMsg{note: note, ops: ops, res: res, err: err}
		}
	}
	return nil
}

// rebuild lays the rows out from the model, keeping the cursor on the same
// service or real server when it is still there.
func (m *Model) rebuild() {
	var sel row
	if m.cursor < len(m.rows) {
		sel = m.rows[m.cursor]
	}
	m.desired = table.Desired(&fsm.State{Config: m.cfg, Verdicts: m.snap.Verdicts, QuorumUp: m.snap.QuorumUp})
	m.rows = m.rows[:0]
	for _, sk := range m.cfg.SortedServiceKeys() {
		svc := m.cfg.Services[sk]
		m.rows = append(m.rows, row{service: sk})
		for _, rk := range svc.SortedServerKeys() {
			m.rows = append(m.rows, row{service: sk, server: rk})
		}
		for _, rk := range svc.SortedPoolKeys() {
			m.rows = append(m.rows, row{service: sk, server: rk, pool: true})
		}
	}
	// A server assigned or unassigned keeps the cursor: it is the same
	// server in its other place.
	moved := func(r row) bool { return sel.server != "" && r.service == sel.service && r.server == sel.server }
	if i := slices.Index(m.rows, sel); i >= 0 {
		m.cursor = i
	} else if i := slices.IndexFunc(m.rows, moved); i >= 0 {
		m.cursor = i
	} else if sel == (row{}) {
		m.cursor = slices.IndexFunc(m.rows, func(r row) bool { return r.server != "" }) // start on a real server
	}
	m.cursor = max(0, min(m.cursor, len(m.rows)-1))
	m.scroll()
}

// scroll keeps the cursor's row on screen.
func (m *Model) scroll() {
	h := m.bodyHeight()
	if m.cursor < m.top {
		m.top = m.cursor
	}
	if m.cursor >= m.top+h {
		m.top = m.cursor - h + 1
	}
	m.top = max(0, min(m.top, len(m.rows)-h))
}

func (m *Model) selected() (row, bool) {
	if m.cursor < 0 || m.cursor >= len(m.rows) {
		return row{}, false
	}
	return m.rows[m.cursor], true
}

// Node is the node whose kernel view is shown.
func (m *Model) Node() string { return m.node }

package top

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// fakeSource is a cluster in memory: Act validates ops with fsm.ApplyOps,
// as the leader does, so refusals carry the model's own words.
type fakeSource struct {
	mu       sync.Mutex
	cfg      *fsm.Config
	version  uint64
	verdicts map[string]fsm.Verdict
	cluster  *api.ClusterStatus
	kernel   map[string]ipvsadm.Stats // by node; absent: --ipvs=off
	at       time.Time
	acts     [][]fsm.Op
	asked    []string // nodes asked for
}

func (f *fakeSource) Snapshot(_ context.Context, node string) (Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if node == "" {
		node = "n1"
	}
	f.asked = append(f.asked, node)
	s := Snapshot{At: f.at, Version: f.version, Config: f.cfg, Verdicts: f.verdicts, Via: "n1", Cluster: f.cluster, KernelNode: node}
	if k, ok := f.kernel[node]; ok {
		s.Kernel = k
	} else {
		s.KernelErr = fmt.Sprintf("node %s runs with --ipvs=off: it has no kernel table", node)
	}
	return s, nil
}

func (f *fakeSource) Act(_ context.Context, ops []fsm.Op) (fsm.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acts = append(f.acts, ops)
	cfg, err := fsm.ApplyOps(f.cfg, ops)
	if err != nil {
		return fsm.Result{}, &api.Error{Status: 400, Kind: "rejected", Msg: err.Error()}
	}
	f.cfg = cfg
	f.version++
	return fsm.Result{Version: f.version, Changed: true}, nil
}

func (f *fakeSource) lastOps() []fsm.Op {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.acts) == 0 {
		return nil
	}
	return f.acts[len(f.acts)-1]
}

// mustOps builds a config from ipvsadm command lines.
func mustOps(t testing.TB, cfg *fsm.Config, lines ...string) *fsm.Config {
	t.Helper()
	for _, l := range lines {
		c, err := ipvsadm.Parse(strings.Fields(l))
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if cfg, err = fsm.ApplyOps(cfg, c.Ops); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
	}
	return cfg
}

// threeByFour is 3 services of 4 real servers each, three nodes (n1 leads
// and has a kernel; n2 and n3 run --ipvs=off).
func threeByFour(t testing.TB) *fakeSource {
	var lines []string
	for i, svc := range []string{"-t 10.0.0.1:80 -s wlc", "-t 10.0.0.2:443 -s rr", "-u 10.0.0.3:53 -s sh"} {
		lines = append(lines, "-A "+svc)
		key := strings.Fields(svc)[:2]
		for j := 1; j <= 4; j++ {
			fwd := "-g"
			if i == 0 {
				fwd = "-m"
			}
			lines = append(lines, fmt.Sprintf("-a %s %s -r 10.3.%d.%d:8080 %s -w %d", key[0], key[1], i, j, fwd, j))
		}
	}
	f := &fakeSource{cfg: mustOps(t, fsm.NewConfig(), lines...), version: 13, at: time.Date(2026, 12, 2, 4, 59, 58, 0, time.UTC)}
	f.verdicts = map[string]fsm.Verdict{fsm.VerdictKey("tcp:10.0.0.1:80", "10.3.0.2:8080"): {Health: fsm.HealthDown, Reason: "connection refused"}}
	f.cluster = clusterOf("n1", map[string]*api.Report{"n1": {Version: 13, KernelIndex: 40, Fingerprint: "00000000deadbeef"}})
	f.kernel = map[string]ipvsadm.Stats{"n1": {
		"tcp:10.0.0.1:80":               {ActiveConns: 7, InactConns: 3, Conns: 100, InBytes: 1000, OutBytes: 5000},
		"tcp:10.0.0.1:80/10.3.0.1:8080": {ActiveConns: 4, InactConns: 1, Conns: 60, InBytes: 600, OutBytes: 3000},
	}}
	return f
}

// clusterOf is a three-node status with leader lead and the given
// reconcile reports.
func clusterOf(lead string, reports map[string]*api.Report) *api.ClusterStatus {
	cs := &api.ClusterStatus{Via: "n1"}
	for i, id := range []string{"n1", "n2", "n3"} {
		st := &api.NodeStatus{Status: api.Status{ID: id, State: "Follower", LeaderID: lead, AppliedIndex: uint64(40 + i)}, Director: reports[id]}
		if id == lead {
			st.State = "Leader"
		}
		cs.Nodes = append(cs.Nodes, api.NodeView{ID: id, APIAddr: "127.0.0.1:" + fmt.Sprint(7080+i), Reachable: true, Status: st})
		cs.Members = append(cs.Members, api.MemberView{ID: id, Suffrage: "voter", Leader: id == lead, Gossip: "alive"})
	}
	return cs
}

// newTest is a model on f with a plain (no colour) renderer, the 80x24
// screen and no clock: tests send tickMsg themselves.
func newTest(t testing.TB, f *fakeSource) *Model {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	m := New(Options{Source: f, Renderer: r, Now: func() time.Time { return time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC) }})
	m.tick = func(time.Duration) tea.Cmd { return nil }
	drive(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	drive(m, run(m.Init())...)
	return m
}

// drive feeds msgs to m and runs every command they return, synchronously,
// until none is left. It reports whether the model asked to quit.
func drive(m *Model, msgs ...tea.Msg) (quit bool) {
	queue := msgs
	for len(queue) > 0 {
		msg := queue[0]
		queue = queue[1:]
		if _, ok := msg.(tea.QuitMsg); ok {
			quit = true
			continue
		}
		_, cmd := m.Update(msg)
		queue = append(queue, run(cmd)...)
	}
	return quit
}

func run(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	msg := cmd()
	if b, ok := msg.(tea.BatchMsg); ok {
		var out []tea.Msg
		for _, c := range b {
			out = append(out, run(c)...)
		}
		return out
	}
	if msg == nil {
		return nil
	}
	return []tea.Msg{msg}
}

// keys turns "j", "+", "up", "enter", "esc" into key messages.
func keys(names ...string) []tea.Msg {
	var out []tea.Msg
	for _, n := range names {
		switch n {
		case "up":
			out = append(out, tea.KeyMsg{Type: tea.KeyUp})
		case "down":
			out = append(out, tea.KeyMsg{Type: tea.KeyDown})
		case "enter":
			out = append(out, tea.KeyMsg{Type: tea.KeyEnter})
		case "esc":
			out = append(out, tea.KeyMsg{Type: tea.KeyEsc})
		case "ctrl+c":
			out = append(out, tea.KeyMsg{Type: tea.KeyCtrlC})
		default:
			out = append(out, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(n)})
		}
	}
	return out
}

func press(m *Model, names ...string) bool { return drive(m, keys(names...)...) }

// line is the screen line that contains s ("" if none).
func line(view, s string) string {
	for _, l := range strings.Split(view, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

package top

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

const web = "tcp:10.0.0.1:80"

func server(f *fakeSource, svc, rs string) *fsm.RealServer { return f.cfg.Services[svc].Servers[rs] }

func TestWeightKeys(t *testing.T) {
	f := threeByFour(t)
	m := newTest(t, f)
	press(m, "+")
	ops := f.lastOps()
	if len(ops) != 1 || ops[0].Kind != fsm.OpEditServer || ops[0].Server.Weight != 2 || ops[0].Server.Forward != fsm.Masquerade || ops[0].Server.Port != 8080 {
		t.Fatalf("+ sent %+v", ops)
	}
	if ops[0].Server.State != "" || ops[0].Server.Name != "" {
		t.Errorf("+ must leave state and name to the leader, as -e does: %+v", ops[0].Server)
	}
	v := m.View()
	if l := line(v, "10.3.0.1:8080"); !strings.Contains(l, "Masq       2") {
		t.Errorf("weight after +: %q", l)
	}
	if !strings.Contains(v, "ok: weight 1 -> 2: 10.3.0.1:8080 of tcp:10.0.0.1:80 (committed as version 14)") {
		t.Errorf("status after +:\n%s", v)
	}
	press(m, "-", "-")
	if w := server(f, web, "10.3.0.1:8080").Weight; w != 0 {
		t.Fatalf("weight after + - -: %d", w)
	}
	// At 0, - sends nothing: a negative weight is never sent.
	n := len(f.acts)
	press(m, "-")
	if len(f.acts) != n {
		t.Errorf("- at weight 0 sent %+v", f.lastOps())
	}
	if v := flat(m.View()); !strings.Contains(v, "weight of 10.3.0.1:8080 of tcp:10.0.0.1:80 is already 0, the lowest (s suspends it)") {
		t.Errorf("- at 0:\n%s", v)
	}
	// At the top the leader refuses, and the screen says so in its words.
	f.cfg = mustOps(t, f.cfg, "-e -t 10.0.0.1:80 -r 10.3.0.1:8080 -m -w 65535")
	f.version++
	drive(m, tickMsg{})
	press(m, "+")
	want := "error: real server 10.3.0.1:8080 of service tcp:10.0.0.1:80 weight 65536: out of range 0-65535"
	if v := m.View(); !strings.Contains(flat(v), want) {
		t.Errorf("+ at 65535: want %q on screen:\n%s", want, v)
	}
	if w := server(f, web, "10.3.0.1:8080").Weight; w != 65535 {
		t.Errorf("weight after the refused +: %d", w)
	}
}

// The weight op is the one `ipvsman -e -t … -r … -m -w N` sends: applied to
// the same model, both give the same bytes.
func TestWeightOpIsTheCLIs(t *testing.T) {
	f := threeByFour(t)
	f.cfg = mustOps(t, f.cfg, "-e -t 10.0.0.1:80 -r 10.3.0.1:8080 -m -w 5 -x 100 -y 10")
	ops, _, err := intent{kind: intentWeight, service: web, server: "10.3.0.1:8080", delta: 1}.ops(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := fsm.ApplyOps(f.cfg, ops)
	if err != nil {
		t.Fatal(err)
	}
	cli := mustOps(t, f.cfg, "-e -t 10.0.0.1:80 -r 10.3.0.1:8080 -m -w 6 -x 100 -y 10")
	a, _ := json.Marshal(ours)
	b, _ := json.Marshal(cli)
	if string(a) != string(b) {
		t.Errorf("console's edit:\n%s\nCLI's:\n%s", a, b)
	}
}

func TestRapidKeysQueueInOrder(t *testing.T) {
	f := threeByFour(t)
	m := newTest(t, f)
	// Three + before any answer: each goes after the one before, built on
	// its result.
	press(m, "+", "+", "+")
	var got []int
	for _, ops := range f.acts {
		got = append(got, ops[0].Server.Weight)
	}
	if len(got) != 3 || got[0] != 2 || got[1] != 3 || got[2] != 4 {
		t.Fatalf("weights sent: %v, want [2 3 4]", got)
	}
}

func TestSuspendResume(t *testing.T) {
	f := threeByFour(t)
	m := newTest(t, f)
	press(m, "j", "s")
	ops := f.lastOps()
	if len(ops) != 1 || ops[0].Kind != fsm.OpSetState || ops[0].Server.State != fsm.Suspended || ops[0].Server.Key() != "10.3.0.2:8080" {
		t.Fatalf("s sent %+v", ops)
	}
	if l := line(m.View(), "10.3.0.2:8080"); !strings.Contains(l, "suspended") || !strings.HasPrefix(l, ">") {
		t.Errorf("after s: %q", l)
	}
	if !strings.Contains(m.View(), "10.3.0.2:8080 of tcp:10.0.0.1:80: kernel weight 0; down: connection refused") {
		t.Errorf("detail after s:\n%s", m.View())
	}
	// The same op as `ipvsman server suspend -t 10.0.0.1:80 -r 10.3.0.2:8080`.
	parsed, _ := ipvsadm.Parse([]string{"-d", "-t", "10.0.0.1:80", "-r", "10.3.0.2:8080"})
	cli := parsed.Ops[0]
	cli.Kind, cli.Server.State = fsm.OpSetState, fsm.Suspended
	if ops[0].ServiceKey != cli.ServiceKey || ops[0].Server.Address != cli.Server.Address || ops[0].Server.Port != cli.Server.Port {
		t.Errorf("suspend op %+v, CLI's %+v", ops[0], cli)
	}
	press(m, "s")
	if !strings.Contains(m.View(), "10.3.0.2:8080 of tcp:10.0.0.1:80 is already suspended") {
		t.Errorf("s twice:\n%s", m.View())
	}
	press(m, "r")
	if s := server(f, web, "10.3.0.2:8080").State; s != fsm.Active {
		t.Errorf("after r: %s", s)
	}
	if l := line(m.View(), "10.3.0.2:8080"); !strings.Contains(l, "active") {
		t.Errorf("after r: %q", l)
	}
}

func TestAssignFromTheTopology(t *testing.T) {
	f := threeByFour(t)
	f.cfg = mustOps(t, f.cfg, "-A -t 10.0.0.9:80", "-a -t 10.0.0.9:80 -r 10.3.1.1 -g")
	m := newTest(t, f)
	press(m, "G", "k", "k", "k", "k", "k", "a") // up from the udp service to 10.0.0.9's server
	v := m.View()
	fits(t, v, 80, 24)
	// Every server of the topology once, but not 10.3.1.1, which the
	// service has (its :443 twin takes port 80 there).
	if !strings.Contains(v, "assign to tcp:10.0.0.9:80") || !strings.Contains(v, "10.3.0.1:8080") || strings.Contains(v, "10.3.1.1:443") {
		t.Fatalf("picker:\n%s", v)
	}
	if l := line(v, ">"); !strings.Contains(l, "10.3.0.1:8080") || !strings.Contains(l, "Masq") || !strings.Contains(l, "tcp:10.0.0.1:80") {
		t.Errorf("picker's first line: %q", l)
	}
	press(m, "j", "enter")
	ops := f.lastOps()
	if len(ops) != 1 || ops[0].Kind != fsm.OpAddServer || ops[0].Server.Key() != "10.3.0.2:8080" || ops[0].Server.Forward != fsm.Masquerade || ops[0].Server.Weight != 2 {
		t.Fatalf("assign sent %+v", ops)
	}
	if server(f, "tcp:10.0.0.9:80", "10.3.0.2:8080") == nil {
		t.Fatalf("not added: %+v", f.cfg.Services["tcp:10.0.0.9:80"].Servers)
	}
	if !strings.Contains(m.View(), "ok: add 10.3.0.2:8080 to tcp:10.0.0.9:80") {
		t.Errorf("after assign:\n%s", m.View())
	}
	press(m, "a", "esc")
	if !strings.Contains(m.View(), "assign cancelled") || len(f.acts) != 1 {
		t.Errorf("a esc:\n%s", m.View())
	}
}

func TestNodeSwitchWithoutKernel(t *testing.T) {
	f := threeByFour(t)
	m := newTest(t, f)
	press(m, "n")
	v := m.View()
	fits(t, v, 80, 24)
	if m.Node() != "n2" || !strings.Contains(v, "kernel view unavailable on n2: node n2 runs with --ipvs=off") {
		t.Fatalf("after n:\n%s", v)
	}
	// The model is still shown, without counters.
	if l := line(v, "10.3.0.1:8080"); !strings.Contains(l, "active") || !strings.HasSuffix(strings.TrimRight(l, " "), "-       -") {
		t.Errorf("server line on n2: %q", l)
	}
	if h := strings.Split(v, "\n")[0]; !strings.Contains(h, "node n2") || !strings.Contains(h, "applied 41") {
		t.Errorf("header on n2: %q", h)
	}
	press(m, "n", "n")
	if m.Node() != "n1" || !strings.Contains(m.View(), "kernel view of n1") {
		t.Errorf("n n n should come back to n1:\n%s", m.View())
	}
}

func TestRatesOnScreen(t *testing.T) {
	f := threeByFour(t)
	m := newTest(t, f)
	if l := line(m.View(), "10.3.0.1:8080"); !strings.HasSuffix(strings.TrimRight(l, " "), "-       -") {
		t.Errorf("no rate before a second read: %q", l)
	}
	k := ipvsadm.Stats{}
	for key, c := range f.kernel["n1"] {
		k[key] = c
	}
	for _, key := range []string{"tcp:10.0.0.1:80/10.3.0.1:8080", "tcp:10.0.0.1:80"} { // the server and its service's totals
		c := k[key]
		c.Conns += 20
		c.InBytes += 3000
		c.OutBytes += 12000
		k[key] = c
	}
	f.kernel["n1"] = k
	f.at = f.at.Add(2 * time.Second)
	drive(m, tickMsg{})
	v := m.View()
	for _, key := range []string{"10.3.0.1:8080", "TCP  10.0.0.1:80"} {
		if l := line(v, key); !strings.HasSuffix(strings.TrimRight(l, " "), "10    7.5K") {
			t.Errorf("rates: %q", l)
		}
	}
	if !strings.Contains(v, "10.3.0.1:8080 of tcp:10.0.0.1:80: kernel weight 1, in 1.5KB/s out 6.0KB/s") {
		t.Errorf("detail line:\n%s", v)
	}
	t.Logf("with rates:\n%s", v)
	// A read moments later (the one an action asks for) keeps the rates.
	k2 := ipvsadm.Stats{}
	for key, c := range k {
		c.Conns += 50
		k2[key] = c
	}
	f.kernel["n1"] = k2
	f.at = f.at.Add(100 * time.Millisecond)
	drive(m, tickMsg{})
	if l := line(m.View(), "10.3.0.1:8080"); !strings.HasSuffix(strings.TrimRight(l, " "), "10    7.5K") {
		t.Errorf("rates after a read 100ms later: %q", l)
	}
}

func TestStaleAnswersAreDropped(t *testing.T) {
	f := threeByFour(t)
	m := newTest(t, f)
	old := Snapshot{Version: 99, Config: fsm.NewConfig(), KernelNode: "n1"}
	drive(m, snapMsg{seq: m.shown, node: "n1", snap: old})
	if !strings.Contains(m.View(), "10.3.0.1:8080") {
		t.Fatalf("an answer older than the screen replaced it")
	}
	drive(m, snapMsg{seq: m.seq + 1, node: "n3", snap: old})
	if !strings.Contains(m.View(), "10.3.0.1:8080") {
		t.Fatalf("an answer for another node replaced the screen")
	}
	// A model read older than the console's own commit keeps the commit.
	press(m, "+")
	stale := Snapshot{Version: 13, Config: mustOps(t, fsm.NewConfig(), "-A -t 10.0.0.1:80", "-a -t 10.0.0.1:80 -r 10.3.0.1:8080 -m -w 1"), KernelNode: "n1"}
	m.seq++
	drive(m, snapMsg{seq: m.seq, node: "n1", snap: stale})
	if l := line(m.View(), "10.3.0.1:8080"); !strings.Contains(l, "Masq       2") {
		t.Errorf("a stale read brought the old weight back: %q", l)
	}
}

func TestSlowAPIDoesNotHoldTheKeys(t *testing.T) {
	f := threeByFour(t)
	m := newTest(t, f)
	now := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	// A tick starts a fetch whose answer never comes (its command is not run).
	_, cmd := m.Update(tickMsg{})
	if cmd == nil || !m.fetching {
		t.Fatalf("tick did not fetch")
	}
	asked := len(f.asked)
	now = now.Add(5 * time.Second)
	_, cmd = m.Update(tickMsg{})
	if run(cmd); len(f.asked) != asked {
		t.Errorf("a tick during a fetch started another one")
	}
	if !strings.Contains(m.View(), "API slow: no answer for 5s") {
		t.Errorf("no slow notice:\n%s", m.View())
	}
	press(m, "j", "s")
	if len(f.acts) != 1 || !strings.Contains(line(m.View(), "10.3.0.2:8080"), "suspended") {
		t.Errorf("keys while the API is slow: acts %v\n%s", f.acts, m.View())
	}
}

func TestQuit(t *testing.T) {
	m := newTest(t, threeByFour(t))
	if !press(m, "q") {
		t.Error("q did not quit")
	}
	if !press(m, "ctrl+c") {
		t.Error("ctrl+c did not quit")
	}
	press(m, "d")
	if !press(m, "ctrl+c") {
		t.Error("ctrl+c in the confirmation did not quit")
	}
}

// flat joins the screen's lines, so that a wrapped status reads whole.
func flat(v string) string { return strings.ReplaceAll(v, "\n", " ") }

// Keys typed faster than the terminal is read come as one message.
func TestCoalescedKeys(t *testing.T) {
	f := threeByFour(t)
	m := newTest(t, f)
	drive(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("jj+")})
	if w := server(f, web, "10.3.0.3:8080").Weight; w != 4 {
		t.Errorf("jj+: weight of the third server %d, want 4", w)
	}
	drive(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("dy")})
	if server(f, web, "10.3.0.3:8080") != nil {
		t.Errorf("dy did not remove the third server")
	}
}

// failing answers snapshots with an error once fail is set.
type failing struct {
	*fakeSource
	fail error
}

func (f *failing) Snapshot(ctx context.Context, node string) (Snapshot, error) {
	if f.fail != nil {
		return Snapshot{}, f.fail
	}
	return f.fakeSource.Snapshot(ctx, node)
}

func TestRefreshFailureKeepsTheLastScreen(t *testing.T) {
	f := &failing{fakeSource: threeByFour(t)}
	m := newTest(t, f.fakeSource)
	m.src = f
	f.fail = errors.New("read the model: api http://127.0.0.1:7080: connection refused")
	drive(m, tickMsg{})
	v := m.View()
	fits(t, v, 80, 24)
	if !strings.Contains(v, "refresh failed: read the model: api http://127.0.0.1:7080: connection refused") || !strings.Contains(v, "10.3.0.1:8080") {
		t.Errorf("after a failed refresh:\n%s", v)
	}
	f.fail = nil
	drive(m, tickMsg{})
	if strings.Contains(m.View(), "refresh failed") {
		t.Errorf("the failure outlived a good refresh:\n%s", m.View())
	}
}

func TestPrintable(t *testing.T) {
	if got := printable("weight\x1b[2J 1\n2\u202e\xff"); got != `weight\x1b[2J 1 2\u202e\xff` {
		t.Errorf("printable: %q", got)
	}
}

func TestPickerScrolls(t *testing.T) {
	f := threeByFour(t)
	var lines []string
	for i := 0; i < 30; i++ {
		lines = append(lines, fmt.Sprintf("-A -t 10.2.0.%d:80", i), fmt.Sprintf("-a -t 10.2.0.%d:80 -r 10.5.0.%d", i, i))
	}
	f.cfg = mustOps(t, f.cfg, lines...)
	m := newTest(t, f)
	press(m, "a")
	for i := 0; i < 40; i++ {
		press(m, "j")
	}
	v := m.View()
	fits(t, v, 80, 24)
	if l := line(v, ">"); !strings.Contains(l, "10.5.0.29:80") { // the last, by address
		t.Errorf("picker's last candidate: %q\n%s", l, v)
	}
	press(m, "enter")
	if ops := f.lastOps(); len(ops) != 1 || ops[0].Server.Key() != "10.5.0.29:80" || ops[0].ServiceKey.String() != web {
		t.Errorf("assign sent %+v", ops)
	}
}

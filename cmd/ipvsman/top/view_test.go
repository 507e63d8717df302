package top

import (
	"fmt"
	"io"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
)

// fits fails unless view has at most h lines of at most w columns.
func fits(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) > h {
		t.Errorf("%d lines, want at most %d:\n%s", len(lines), h, view)
	}
	for i, l := range lines {
		if n := ansi.StringWidth(l); n > w {
			t.Errorf("line %d is %d columns, want at most %d: %q", i+1, n, w, l)
		}
	}
}

func TestViewFits80x24(t *testing.T) {
	m := newTest(t, threeByFour(t))
	v := m.View()
	fits(t, v, 80, 24)
	if n := len(strings.Split(v, "\n")); n != 24 {
		t.Errorf("%d lines, want the whole 24:\n%s", n, v)
	}
	for _, want := range []string{
		"node n1  leader n1  VIP off  applied 40  fp agree",
		"05:00:00",
		"kernel view of n1: counters of",
		"SERVER",
		"TCP  10.0.0.1:80 wlc",
		"UDP  10.0.0.3:53 sh",
		"10.3.2.4:53",
		"+/- weight  s/r suspend/resume  a assign  d unassign  x delete  n/c node/cluster",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("screen lacks %q:\n%s", want, v)
		}
	}
	// The cursor starts on the first real server; its counters are the
	// kernel's; the down verdict shows.
	if l := line(v, "10.3.0.1:8080"); !strings.HasPrefix(l, ">   10.3.0.1:8080") || !strings.Contains(l, "Masq") || !strings.Contains(l, "active") || !strings.Contains(l, "    4     1") {
		t.Errorf("first server line: %q", l)
	}
	if l := line(v, "10.3.0.2:8080"); !strings.Contains(l, "down") {
		t.Errorf("down server line: %q", l)
	}
	if l := line(v, "10.3.1.1:443"); !strings.Contains(l, "Route") || !strings.Contains(l, " -      -") {
		t.Errorf("server without counters: %q", l)
	}
	t.Logf("80x24:\n%s", v)
}

func TestViewStyledStillFits(t *testing.T) {
	f := threeByFour(t)
	m := newTest(t, f)
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.TrueColor)
	m.st = newStyles(r)
	press(m, "c", "+")
	m.setStatus(true, "error: "+strings.Repeat("very long refusal ", 12))
	v := m.View()
	if !strings.Contains(v, "\x1b[") {
		t.Fatalf("no styling in the view")
	}
	fits(t, v, 80, 24)
}

func TestScrollKeepsTheCursorOnScreen(t *testing.T) {
	f := threeByFour(t)
	var lines []string
	for i := 0; i < 8; i++ {
		lines = append(lines, fmt.Sprintf("-A -t 10.1.0.%d:80", i))
		for j := 0; j < 4; j++ {
			lines = append(lines, fmt.Sprintf("-a -t 10.1.0.%d:80 -r 10.4.%d.%d", i, i, j))
		}
	}
	f.cfg = mustOps(t, f.cfg, lines...)
	m := newTest(t, f) // 15 + 40 rows
	v := m.View()
	fits(t, v, 80, 24)
	if !strings.Contains(v, "TCP  10.0.0.1:80") || strings.Contains(v, "10.3.2.4:53") {
		t.Fatalf("first page:\n%s", v)
	}
	press(m, "G")
	v = m.View()
	fits(t, v, 80, 24)
	if l := line(v, "10.3.2.4:53"); !strings.HasPrefix(l, ">") { // udp sorts after tcp
		t.Errorf("end: the last server should be on screen with the cursor:\n%s", v)
	}
	if strings.Contains(v, "TCP  10.0.0.1:80") {
		t.Errorf("end: the first service should have scrolled away:\n%s", v)
	}
	press(m, "g", "j", "j")
	v = m.View()
	if l := line(v, "10.3.0.2:8080"); !strings.HasPrefix(l, ">") {
		t.Errorf("home then two down: cursor on %q:\n%s", l, v)
	}
	// A smaller terminal scrolls too.
	drive(m, tea.WindowSizeMsg{Width: 60, Height: 12})
	press(m, "G")
	fits(t, m.View(), 60, 12)
	if l := line(m.View(), "10.3.2.4"); !strings.HasPrefix(l, ">") {
		t.Errorf("60x12 end:\n%s", m.View())
	}
}

func TestClusterPane(t *testing.T) {
	f := threeByFour(t)
	m := newTest(t, f)
	press(m, "c")
	v := m.View()
	fits(t, v, 80, 24)
	for _, want := range []string{"MEMBER", "KERNEL TABLE", "REACH"} {
		if !strings.Contains(v, want) {
			t.Errorf("pane lacks %q:\n%s", want, v)
		}
	}
	if l := line(v, "n1           Leader"); !strings.Contains(l, "voter") || !strings.Contains(l, "alive") || !strings.Contains(l, "40") || !strings.Contains(l, "00000000deadbeef v13") || !strings.Contains(l, "yes") {
		t.Errorf("n1 member line: %q\n%s", l, v)
	}
	if l := line(v, "n3           Follower"); !strings.Contains(l, " -  ") {
		t.Errorf("n3 without a kernel table: %q", l)
	}
	// The table shrank but the cursor's row is still there.
	if !strings.Contains(line(v, ">"), "10.3.0.1:8080") {
		t.Errorf("cursor row lost:\n%s", v)
	}
	press(m, "c")
	if strings.Contains(m.View(), "MEMBER") {
		t.Errorf("c again should close the pane")
	}
	t.Logf("cluster pane:\n%s", v)
}

func TestFingerprintsDisagree(t *testing.T) {
	f := threeByFour(t)
	f.cluster = clusterOf("n2", map[string]*api.Report{
		"n1": {Version: 13, KernelIndex: 90, Fingerprint: "00000000deadbeef"},
		"n2": {Version: 13, KernelIndex: 90, Fingerprint: "00000000feedface"},
		"n3": {Version: 13, KernelIndex: 91, Fingerprint: "0000000000000001"},
	})
	m := newTest(t, f)
	if h := strings.Split(m.View(), "\n")[0]; !strings.Contains(h, "leader n2") || !strings.Contains(h, "fp DISAGREE") {
		t.Errorf("header: %q", h)
	}
	f.cluster.Nodes[1].Status.Director.Fingerprint = "00000000deadbeef"
	drive(m, tickMsg{})
	if h := strings.Split(m.View(), "\n")[0]; !strings.Contains(h, "fp agree") {
		t.Errorf("header after the tables agree: %q", h)
	}
}

func TestNoServicesAndNoSnapshot(t *testing.T) {
	f := threeByFour(t)
	f.cfg = fsm.NewConfig()
	m := New(Options{Source: f})
	if v := m.View(); !strings.Contains(v, "waiting for the API's first answer") {
		t.Errorf("before the first snapshot:\n%s", v)
	}
	m = newTest(t, f)
	v := m.View()
	fits(t, v, 80, 24)
	if !strings.Contains(v, "no services: add one with ipvsman -A") {
		t.Errorf("empty model:\n%s", v)
	}
	press(m, "+")
	if !strings.Contains(m.View(), "select a real server first") {
		t.Errorf("+ on an empty table:\n%s", m.View())
	}
	press(m, "a")
	if !strings.Contains(m.View(), "no service to assign a real server to") || len(f.acts) != 0 {
		t.Errorf("a on an empty table:\n%s", m.View())
	}
}

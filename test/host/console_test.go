package host

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
)

// serverLine is the table line of real server key (the first, if two
// services have it), and whether the cursor is on it.
func serverLine(screen, key string) (string, bool) {
	for _, l := range strings.Split(screen, "\n") {
		if strings.HasPrefix(strings.TrimLeft(strings.TrimPrefix(l, ">"), " "), key+" ") {
			return l, strings.HasPrefix(l, ">")
		}
	}
	return "", false
}

// model reads the replicated model through via's API.
func model(t *testing.T, c *harness.Cluster, via *harness.Node) *fsm.Config {
	t.Helper()
	b, _ := os.ReadFile(c.TokenFile)
	var cfg *fsm.Config
	// A read the node could not make consistent (no answer from the
	// leader in time) is served stale, and may lack the latest write:
	// only a consistent one counts.
	harness.Eventually(t, 10*time.Second, "a consistent read through "+via.ID, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := (&api.Client{Base: via.APIAddr, Token: strings.TrimSpace(string(b))}).Config(ctx)
		if err != nil {
			return false, err.Error()
		}
		cfg = r.Config
		return r.Stale == "", "stale: " + r.Stale
	})
	return cfg
}

func TestConsoleDrivenInTmux(t *testing.T) {
	c := harness.NewCluster(t)
	// Each node takes its ports once the one before holds its own: free
	// ports picked all at once can repeat.
	n1 := c.Add("n1")
	n1.Start("--bootstrap")
	leader(t, c, n1)
	n2 := c.Add("n2")
	n2.Start()
	n3 := c.Add("n3")
	n3.Start()
	all := []*harness.Node{n1, n2, n3}
	c.MustCLI(n2, "", "cluster", "join", n1.APIAddr)
	c.MustCLI(n3, "", "cluster", "join", n1.APIAddr)
	c.Voters(t, n1, all...)
	leader(t, c, all...)
	for _, args := range [][]string{
		{"-A", "-t", "10.0.0.1:80", "-s", "wlc"},
		{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.10:8080", "-m", "-w", "2"},
		{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.11:8080", "-m", "-w", "1"},
		{"-a", "-t", "10.0.0.1:80", "-r", "10.3.0.12:8080", "-m", "-w", "1"},
		{"-A", "-t", "10.0.0.2:443", "-s", "rr"},
		{"-a", "-t", "10.0.0.2:443", "-r", "10.3.1.20", "-g"},
	} {
		c.MustCLI(n1, "", args...)
	}
	const web, tls = "tcp:10.0.0.1:80", "tcp:10.0.0.2:443"
	server := func(svc, key string) *fsm.RealServer {
		// Read through another node than the console's: the change is the
		// cluster's, not one node's.
		return model(t, c, n3).Services[svc].Servers[key]
	}

	x := c.StartConsole(t, n2)
	s := x.WaitScreen("the table", "TCP  10.0.0.1:80 wlc", "10.3.1.20:443", "node n2",
		"kernel view unavailable on n2: node n2 runs with --ipvs=off")
	s = waitLeader(t, x, c, all)
	if l, cur := serverLine(s, "10.3.0.10:8080"); !cur || !strings.Contains(l, "Masq       2 -       active") {
		t.Fatalf("first server line %q (cursor %v):\n%s", l, cur, s)
	}
	checkFits(t, x, s)
	t.Logf("first screen:\n%s", s)

	t.Run("+ and - change the weight cluster-wide", func(t *testing.T) {
		x := x.In(t)
		x.Press("+")
		s := x.WaitScreen("weight 3", "ok: weight 2 -> 3: 10.3.0.10:8080 of tcp:10.0.0.1:80")
		if l, _ := serverLine(s, "10.3.0.10:8080"); !strings.Contains(l, "Masq       3") {
			t.Errorf("screen after +: %q", l)
		}
		if w := server(web, "10.3.0.10:8080").Weight; w != 3 {
			t.Errorf("cluster's weight after +: %d", w)
		}
		if out := c.MustCLI(n1, "", "-S", "-n"); !strings.Contains(out, "-a -t 10.0.0.1:80 -r 10.3.0.10:8080 -m -w 3") {
			t.Errorf("ipvsman -S -n after +:\n%s", out)
		}
		x.Press("-")
		s = x.WaitScreen("weight 2", "ok: weight 3 -> 2")
		if l, _ := serverLine(s, "10.3.0.10:8080"); !strings.Contains(l, "Masq       2") {
			t.Errorf("screen after -: %q", l)
		}
		if w := server(web, "10.3.0.10:8080").Weight; w != 2 {
			t.Errorf("cluster's weight after -: %d", w)
		}
	})

	t.Run("s suspends, r resumes", func(t *testing.T) {
		x := x.In(t)
		x.Press("s")
		s := x.WaitScreen("suspended", "ok: suspend: 10.3.0.10:8080")
		if l, _ := serverLine(s, "10.3.0.10:8080"); !strings.Contains(l, "suspended") {
			t.Errorf("screen after s: %q", l)
		}
		if st := server(web, "10.3.0.10:8080").State; st != fsm.Suspended {
			t.Errorf("cluster's state after s: %s", st)
		}
		// The kernel table every node computes has it at weight 0.
		if out := c.MustCLI(n1, "", "-L", "-n"); !strings.Contains(out, "-> 10.3.0.10:8080               Masq    0") {
			t.Errorf("ipvsman -L -n after s:\n%s", out)
		}
		x.Press("r")
		s = x.WaitScreen("active", "ok: resume: 10.3.0.10:8080")
		if l, _ := serverLine(s, "10.3.0.10:8080"); !strings.Contains(l, "active") {
			t.Errorf("screen after r: %q", l)
		}
		if st := server(web, "10.3.0.10:8080").State; st != fsm.Active {
			t.Errorf("cluster's state after r: %s", st)
		}
	})

	t.Run("j moves; d asks, y unassigns into the pool; x forgets", func(t *testing.T) {
		x := x.In(t)
		x.Press("j")
		harness.Eventually(t, 10*time.Second, "cursor on 10.3.0.11", func() (bool, string) {
			_, cur := serverLine(x.Screen(), "10.3.0.11:8080")
			return cur, x.Screen()
		})
		x.Press("+")
		x.WaitScreen("weight 2 on .11", "ok: weight 1 -> 2: 10.3.0.11:8080")
		if a, b := server(web, "10.3.0.10:8080").Weight, server(web, "10.3.0.11:8080").Weight; a != 2 || b != 2 {
			t.Errorf("weights after j +: .10 %d .11 %d, want 2 2", a, b)
		}
		x.Press("d")
		x.WaitScreen("confirmation", "unassign 10.3.0.11:8080 from tcp:10.0.0.1:80 into its pool? (y/n)")
		if server(web, "10.3.0.11:8080") == nil {
			t.Fatal("unassigned before y")
		}
		x.Press("y")
		s := x.WaitScreen("unassigned", "ok: unassign 10.3.0.11:8080 of tcp:10.0.0.1:80 (kept in its pool)")
		if l, cur := serverLine(s, "10.3.0.11:8080"); !cur || !strings.Contains(l, "Masq       2 -       pool") {
			t.Errorf("pool row (cursor %v): %q\n%s", cur, l, s)
		}
		if server(web, "10.3.0.11:8080") != nil {
			t.Errorf("10.3.0.11:8080 still assigned in the cluster's model")
		}
		if p := model(t, c, n3).Services[web].Pool["10.3.0.11:8080"]; p == nil || p.Weight != 2 || p.Forward != fsm.Masquerade {
			t.Errorf("the cluster's pool entry: %+v", p)
		}
		if out := c.MustCLI(n1, "", "-L", "-n"); strings.Contains(out, "10.3.0.11") {
			t.Errorf("ipvsman -L -n lists the pool server:\n%s", out)
		}
		if out := c.MustCLI(n1, "", "pool", "list"); !strings.Contains(out, "tcp:10.0.0.1:80  10.3.0.11:8080  Masq     2       active") {
			t.Errorf("ipvsman pool list:\n%s", out)
		}
		x.Press("x")
		x.WaitScreen("confirmation", "forget 10.3.0.11:8080 of tcp:10.0.0.1:80 for good? (y/n)")
		x.Press("y")
		s = x.WaitScreen("forgotten", "ok: forget 10.3.0.11:8080 of tcp:10.0.0.1:80")
		if l, _ := serverLine(s, "10.3.0.11:8080"); l != "" {
			t.Errorf("still on screen: %q", l)
		}
		if p := model(t, c, n3).Services[web].Pool; p != nil {
			t.Errorf("the cluster's pool after x y: %v", p)
		}
	})

	t.Run("a assigns a real server of the topology", func(t *testing.T) {
		x := x.In(t)
		x.Press("G", "a")
		s := x.WaitScreen("picker", "assign to tcp:10.0.0.2:443", "REAL SERVER", "10.3.0.10:8080", "10.3.0.12:8080")
		checkFits(t, x, s)
		x.Press("j", "Enter")
		x.WaitScreen("assigned", "ok: add 10.3.0.12:8080 to tcp:10.0.0.2:443")
		rs := server(tls, "10.3.0.12:8080")
		if rs == nil || rs.Forward != fsm.Masquerade || rs.Weight != 1 {
			t.Fatalf("assigned server in the cluster's model: %+v", rs)
		}
	})

	t.Run("the API's refusal is shown verbatim", func(t *testing.T) {
		x := x.In(t)
		c.MustCLI(n1, "", "-e", "-t", "10.0.0.2:443", "-r", "10.3.1.20", "-g", "-w", "65535")
		x.Press("G") // the last row: 10.3.1.20:443 sorts after 10.3.0.12:8080
		harness.Eventually(t, 10*time.Second, "cursor on 10.3.1.20 at 65535", func() (bool, string) {
			l, cur := serverLine(x.Screen(), "10.3.1.20:443")
			return cur && strings.Contains(l, "65535"), x.Screen()
		})
		x.Press("+")
		s := x.WaitScreen("refusal", "error: real server 10.3.1.20:443 of service tcp:10.0.0.2:443 weight 65536: out of range 0-65535")
		checkFits(t, x, s)
		t.Logf("refusal:\n%s", s)
		if w := server(tls, "10.3.1.20:443").Weight; w != 65535 {
			t.Errorf("weight after the refused +: %d", w)
		}
	})

	t.Run("n switches the kernel view, c shows the cluster", func(t *testing.T) {
		x := x.In(t)
		x.Press("n")
		s := x.WaitScreen("n3's view", "node n3", "kernel view unavailable on n3: node n3 runs with --ipvs=off")
		if l, _ := serverLine(s, "10.3.0.10:8080"); !strings.Contains(l, "active") {
			t.Errorf("the model is still shown on n3's view: %q", l)
		}
		x.Press("c")
		x.WaitScreen("cluster pane", "MEMBER", "KERNEL TABLE", "REACH")
		// Every member's line says what the member itself reports.
		harness.Eventually(t, 20*time.Second, "member lines as the members report", func() (bool, string) {
			s = x.Screen()
			for _, n := range all {
				st, err := status(c, n)
				if err != nil {
					return false, err.Error()
				}
				l := memberLine(s, n.ID)
				for _, want := range []string{" " + st.State + " ", " voter ", " yes"} {
					if !strings.Contains(l, want) {
						return false, fmt.Sprintf("member line of %s %q lacks %q:\n%s", n.ID, l, want, s)
					}
				}
			}
			return true, ""
		})
		checkFits(t, x, s)
		waitLeader(t, x, c, all)
		t.Logf("cluster pane on n3's view:\n%s", s)
	})

	t.Run("q quits", func(t *testing.T) {
		x := x.In(t)
		x.Press("q")
		x.WaitScreen("exit", "console exited: 0")
	})
}

// waitLeader waits until the header names the leader the nodes agree on
// and returns the screen.
func waitLeader(t *testing.T, x *harness.Console, c *harness.Cluster, nodes []*harness.Node) string {
	t.Helper()
	var s string
	harness.Eventually(t, 20*time.Second, "the leader in the header", func() (bool, string) {
		lead := leader(t, c, nodes...)
		s = x.Screen()
		head, _, _ := strings.Cut(s, "\n")
		return strings.Contains(head, " leader "+lead.ID+" "), fmt.Sprintf("leader %s; header %q", lead.ID, head)
	})
	return s
}

// checkFits checks the pane is 80x24 and the screen uses no more.
func checkFits(t *testing.T, x *harness.Console, s string) {
	t.Helper()
	if out, err := x.Tmux("display-message", "-p", "-t", x.Name(), "#{pane_width}x#{pane_height}"); err != nil || strings.TrimSpace(out) != "80x24" {
		t.Errorf("pane size %q (%v), want 80x24", out, err)
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 24 {
		t.Errorf("%d lines on the screen", len(lines))
	}
	for i, l := range lines {
		if n := utf8.RuneCountInString(l); n > 80 {
			t.Errorf("line %d is %d columns: %q", i+1, n, l)
		}
	}
}

// memberLine is the cluster pane's line of member id.
func memberLine(screen, id string) string {
	for _, l := range strings.Split(screen, "\n") {
		if strings.HasPrefix(l, id+" ") {
			return l
		}
	}
	return ""
}

//go:build lab

package lab

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// withoutCounters is an `ipvsadm -L -n` listing without the connection
// counters, which the model does not know once traffic has flowed.
func withoutCounters(list string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(list, "\n"), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[0] == "->" {
			l = strings.Join(f[:4], " ")
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// kernelsFollow waits until every director's `ipvsadm -L -n` is the
// cluster's `ipvsman -L -n`, counters aside, with ok true of it, and
// returns the table.
func kernelsFollow(t *testing.T, c *harness.Cluster, tp *topo.Topology, nodes []*harness.Node, what string, ok func(table string) bool) string {
	t.Helper()
	var table string
	harness.Eventually(t, 60*time.Second, what, func() (bool, string) {
		model := c.MustCLI(nodes[2], "", "-L", "-n")
		if !ok(model) {
			return false, "model:\n" + model
		}
		for _, n := range nodes {
			out, err := tp.Exec(n.ID, "ipvsadm", "-L", "-n")
			if err != nil || withoutCounters(out) != withoutCounters(model) {
				return false, fmt.Sprintf("%s: ipvsadm -L -n (%v):\n%s\nipvsman -L -n:\n%s", n.ID, err, out, model)
			}
		}
		table, _ = tp.Exec(nodes[0].ID, "ipvsadm", "-L", "-n")
		return true, ""
	})
	return table
}

// TestConsoleAssignsAPoolServer: a real server defined in a service's pool
// is in no director's kernel table; `ipvsman top`, driven by keys in tmux,
// assigns it (a on its pool row) and every director's kernel table gets
// it, as `ipvsadm -L -n` shows on each, and it answers requests; d then y
// unassigns it and every table loses it again, while the model keeps its
// definition in the pool.
func TestConsoleAssignsAPoolServer(t *testing.T) {
	requireKernelIPVS(t)
	tp := topo.Build(t, topo.Options{})
	labtool := topo.BuildLabtool(t)
	tp.StartRealServers(labtool)
	c, nodes := labCluster(t, tp)
	svc := topo.VIP + ":80"
	active, spare := topo.RealServerAddr(1)+":80", topo.RealServerAddr(2)+":80"
	c.MustCLI(nodes[1], "", "-A", "-t", svc, "-s", "rr")
	c.MustCLI(nodes[1], "", "-a", "-t", svc, "-r", topo.RealServerAddr(1), "-g", "-w", "1")
	out := c.MustCLI(nodes[1], "", "pool", "add", "-t", svc, "-r", topo.RealServerAddr(2), "-g", "-w", "3")
	t.Logf("ipvsman pool add:\n%s", out)
	if pool := c.MustCLI(nodes[0], "", "pool", "list"); !strings.Contains(pool, "tcp:"+svc+"  "+spare+"  Route    3       active") {
		t.Fatalf("ipvsman pool list:\n%s", pool)
	}
	table := kernelsFollow(t, c, tp, nodes, "the kernel tables without the pool server", func(s string) bool {
		return strings.Contains(s, "-> "+active) && !strings.Contains(s, topo.RealServerAddr(2))
	})
	t.Logf("before the assign, every director (ipvsadm -L -n):\n%s", table)

	lead := leaderOf(t, c, nodes)
	tp.AddAddr(lead.ID, topo.VIP+"/24", "eth0")
	// The client's first request after the VIP appears may wait out ARP
	// under emulation: the counted rounds start once one is answered.
	harness.Eventually(t, 30*time.Second, "a first request answered through "+lead.ID, func() (bool, string) {
		s := traffic(t, tp, labtool, "http://"+svc+"/", 1)
		return s.OK == 1, fmt.Sprintf("%+v", s)
	})
	if s := traffic(t, tp, labtool, "http://"+svc+"/", 10); s.OK != 10 || len(s.ByServer) != 1 {
		t.Fatalf("traffic before the assign: %+v", s)
	}

	x := c.StartConsole(t, nodes[0])
	x.WaitScreen("the service, its real server and its pool server", "TCP  "+svc+" rr", active, spare, "kernel view of "+nodes[0].ID)
	// The cursor starts on the assigned server; the pool row follows it.
	x.Press("j")
	harness.Eventually(t, 10*time.Second, "cursor on the pool row", func() (bool, string) {
		l, cur := serverLine(x.Screen(), spare)
		return cur && strings.Contains(l, "Route      3 -       pool"), x.Screen()
	})
	t.Logf("the console on %s, the pool server selected:\n%s", nodes[0].ID, x.Screen())
	x.Press("a")
	s := x.WaitScreen("assigned", "ok: assign "+spare+" to tcp:"+svc)
	t.Logf("after a:\n%s", s)
	table = kernelsFollow(t, c, tp, nodes, "every kernel table with the assigned server", func(s string) bool {
		return strings.Contains(s, "-> "+spare) && strings.Contains(s, "-> "+active)
	})
	t.Logf("after the assign, every director (ipvsadm -L -n):\n%s", table)
	if l, _ := serverLine(x.Screen(), spare); !strings.Contains(l, "Route      3 -       active") {
		t.Errorf("the assigned server's line: %q", l)
	}
	if st := traffic(t, tp, labtool, "http://"+svc+"/", 20); st.OK != 20 || len(st.ByServer) != 2 {
		t.Fatalf("traffic after the assign: %+v, want both real servers answering", st)
	}

	// The cursor followed the server to its assigned row: d asks, y unassigns.
	x.Press("d")
	x.WaitScreen("confirmation", "unassign "+spare+" from tcp:"+svc+" into its pool? (y/n)")
	x.Press("y")
	s = x.WaitScreen("unassigned", "ok: unassign "+spare+" of tcp:"+svc+" (kept in its pool)")
	t.Logf("after d y:\n%s", s)
	table = kernelsFollow(t, c, tp, nodes, "every kernel table without the unassigned server", func(s string) bool {
		return strings.Contains(s, "-> "+active) && !strings.Contains(s, topo.RealServerAddr(2))
	})
	t.Logf("after the unassign, every director (ipvsadm -L -n):\n%s", table)
	if pool := c.MustCLI(nodes[2], "", "pool", "list"); !strings.Contains(pool, "tcp:"+svc+"  "+spare+"  Route    3       active") {
		t.Errorf("the definition is not kept in the pool:\n%s", pool)
	}
	if st := traffic(t, tp, labtool, "http://"+svc+"/", 10); st.OK != 10 || len(st.ByServer) != 1 {
		t.Errorf("traffic after the unassign: %+v, want the first real server alone", st)
	}
	x.Press("q")
	x.WaitScreen("the console exits", "console exited: 0")
}

// serverLine is the console's table line of real server key, and whether
// the cursor is on it.
func serverLine(screen, key string) (string, bool) {
	for _, l := range strings.Split(screen, "\n") {
		if f := strings.Fields(strings.TrimPrefix(l, ">")); len(f) > 1 && f[0] == key {
			return l, strings.HasPrefix(l, ">")
		}
	}
	return "", false
}

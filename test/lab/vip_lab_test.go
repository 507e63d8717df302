//go:build lab

package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/failover"
	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// applyVIPs puts the front VIP and the masquerading servers' gateway into
// the model; the leader then holds and announces them.
func applyVIPs(t *testing.T, c *harness.Cluster, via *harness.Node) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "vips.topo")
	body := "vip " + topo.VIP + "/32 eth0\nvip " + topo.Gateway + "/24 eth0\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c.MustCLI(via, "", "apply", "-f", file)
}

// waitKernelServers waits until every node's kernel table lists at least
// servers real servers (ipvsadm -L -n: one "->" per server, one in the
// heading).
func waitKernelServers(t *testing.T, tp *topo.Topology, nodes []*harness.Node, servers int, what string) {
	t.Helper()
	harness.Eventually(t, 60*time.Second, what, func() (bool, string) {
		for _, n := range nodes {
			out, _ := tp.Exec(n.ID, "ipvsadm", "-L", "-n")
			if strings.Count(out, "->") < servers+1 {
				return false, n.ID + ":\n" + out
			}
		}
		return true, ""
	})
}

// waitVIPOn waits until node holds each of cidrs on eth0.
func waitVIPOn(t *testing.T, tp *topo.Topology, node string, cidrs ...string) {
	t.Helper()
	harness.Eventually(t, 30*time.Second, "VIPs on "+node, func() (bool, string) {
		out, err := tp.Exec(node, "ip", "-o", "addr", "show", "dev", "eth0")
		if err != nil {
			return false, err.Error()
		}
		for _, c := range cidrs {
			if !strings.Contains(out, " "+c+" ") {
				return false, out
			}
		}
		return true, ""
	})
}

// TestVIPFailoverWithRealIPVS: the leader holds the VIPs the model names;
// a crash of the leader (SIGKILL and its link cut) moves them, and the
// client's requests are answered again by the real servers, through the
// new leader's kernel table, by direct routing and by masquerading (whose
// replies route through the gateway VIP).
func TestVIPFailoverWithRealIPVS(t *testing.T) {
	requireKernelIPVS(t)
	tp := topo.Build(t, topo.Options{})
	labtool := topo.BuildLabtool(t)
	tp.StartRealServers(labtool)
	c, nodes := labCluster(t, tp)
	applyVIPs(t, c, nodes[1])
	for _, args := range [][]string{
		{"-A", "-t", topo.VIP + ":80", "-s", "rr"},
		{"-A", "-t", topo.VIP + ":8080", "-s", "rr"},
	} {
		c.MustCLI(nodes[0], "", args...)
	}
	for i := 1; i <= 3; i++ {
		c.MustCLI(nodes[0], "", "-a", "-t", topo.VIP+":80", "-r", topo.RealServerAddr(i), "-g")
		c.MustCLI(nodes[0], "", "-a", "-t", topo.VIP+":8080", "-r", topo.NATServerAddr(i)+":80", "-m")
	}
	waitKernelServers(t, tp, nodes, 6, "six real servers in every kernel")
	lead := leaderOf(t, c, nodes)
	waitVIPOn(t, tp, lead.ID, topo.VIP+"/32", topo.Gateway+"/24")
	for _, u := range []string{"http://" + topo.VIP + "/", "http://" + topo.VIP + ":8080/"} {
		s := traffic(t, tp, labtool, u, 30)
		if s.Failed != 0 || len(s.ByServer) != 3 {
			t.Fatalf("%s before the failover: %+v", u, s)
		}
	}

	// Under emulation a request through IPVS takes a few milliseconds; the
	// poller's defaults are for the host.
	poll := failover.StartPoller(t, tp, labtool, topo.Client, "http://"+topo.VIP+"/", 20*time.Millisecond, 250*time.Millisecond)
	if _, _, ok := poll.FirstOKAfter(time.Now(), time.Now().Add(30*time.Second)); !ok {
		t.Fatalf("poller: %s", poll.Health())
	}
	crash := time.Now()
	lead.Kill()
	tp.CutLink(lead.ID)
	// Until the link is down, the dead daemon's kernel table and address
	// still serve: count only requests started after that.
	end, server, ok := poll.FirstOKAfter(time.Now(), time.Now().Add(60*time.Second))
	if !ok {
		t.Fatalf("no answer after the crash: %s", poll.Health())
	}
	total, failed := poll.Count(crash, end)
	t.Logf("leader %s crashed: first answer (from real server %s) %d ms later; %d of %d requests in between failed",
		lead.ID, server, end.Sub(crash).Milliseconds(), failed, total)
	if !strings.HasPrefix(server, "rs") {
		t.Errorf("answered by %q, want a real server", server)
	}
	var rest []*harness.Node
	for _, n := range nodes {
		if n != lead {
			rest = append(rest, n)
		}
	}
	next := leaderOf(t, c, rest)
	waitVIPOn(t, tp, next.ID, topo.VIP+"/32", topo.Gateway+"/24")
	for _, u := range []string{"http://" + topo.VIP + "/", "http://" + topo.VIP + ":8080/"} {
		s := traffic(t, tp, labtool, u, 30)
		if s.Failed != 0 || len(s.ByServer) != 3 {
			t.Errorf("%s after the failover to %s: %+v", u, next.ID, s)
		}
	}
}

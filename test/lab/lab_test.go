//go:build lab

// Package lab holds the tests that need real IPVS. They run as root inside
// the lab VM (test/lab/e2e.sh, `make e2e`), never against a fake.
package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// split is labtool's JSON answer.
type split struct {
	OK       int            `json:"ok"`
	Failed   int            `json:"failed"`
	ByServer map[string]int `json:"by_server"`
	Errors   []string       `json:"errors"`
}

func traffic(t *testing.T, tp *topo.Topology, labtool, url string, n int) split {
	t.Helper()
	out := tp.MustExec(topo.Client, labtool, "http", "--url", url, "--count", fmt.Sprint(n), "--timeout", "2s")
	var s split
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &s); err != nil {
		t.Fatalf("labtool http output %q: %v", out, err)
	}
	return s
}

func requireKernelIPVS(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		t.Fatalf("no IPVS in this kernel (%v): the lab tests run inside the lab VM (make e2e)", err)
	}
}

// TestPlainIPVSInTheLab proves the lab itself with ipvsadm alone: a
// direct-routing and a masquerading service on one director, and every real
// server answers the client.
func TestPlainIPVSInTheLab(t *testing.T) {
	requireKernelIPVS(t)
	tp := topo.Build(t, topo.Options{})
	labtool := topo.BuildLabtool(t)
	tp.StartRealServers(labtool)
	d := topo.Director(1)
	tp.AddAddr(d, topo.VIP+"/24", "eth0")
	tp.AddAddr(d, topo.Gateway+"/24", "eth0")
	for _, args := range [][]string{
		{"-A", "-t", topo.VIP + ":80", "-s", "rr"},
		{"-A", "-t", topo.VIP + ":8080", "-s", "rr"},
	} {
		tp.MustExec(d, "ipvsadm", args...)
	}
	for i := 1; i <= 3; i++ {
		tp.MustExec(d, "ipvsadm", "-a", "-t", topo.VIP+":80", "-r", topo.RealServerAddr(i), "-g")
		tp.MustExec(d, "ipvsadm", "-a", "-t", topo.VIP+":8080", "-r", topo.NATServerAddr(i)+":80", "-m")
	}
	t.Logf("director table:\n%s", tp.MustExec(d, "ipvsadm", "-L", "-n"))

	dr := traffic(t, tp, labtool, "http://"+topo.VIP+"/", 30)
	nat := traffic(t, tp, labtool, "http://"+topo.VIP+":8080/", 30)
	t.Logf("direct routing: %+v", dr)
	t.Logf("masquerading:   %+v", nat)
	for _, c := range []struct {
		name  string
		s     split
		nodes []string
	}{
		{"direct routing", dr, []string{topo.RealServer(1), topo.RealServer(2), topo.RealServer(3)}},
		{"masquerading", nat, []string{topo.NATServer(1), topo.NATServer(2), topo.NATServer(3)}},
	} {
		if c.s.OK != 30 || c.s.Failed != 0 {
			t.Errorf("%s: %d ok, %d failed of 30: %v", c.name, c.s.OK, c.s.Failed, c.s.Errors)
		}
		for _, n := range c.nodes {
			if c.s.ByServer[n] != 10 { // rr over three servers, 30 fresh connections
				t.Errorf("%s: %s answered %d of 30, want 10 (round robin): %v", c.name, n, c.s.ByServer[n], c.s.ByServer)
			}
		}
	}
	// Direct routing: replies go straight to the client, never back through the director.
	stats := tp.MustExec(d, "ipvsadm", "-L", "-n", "--stats", "-t", topo.VIP+":80")
	t.Logf("direct-routing stats:\n%s", stats)
}

// labTiming is Raft's stock timing: the lab's CPU is emulated (TCG), about
// ten times slower than the host, and a CLI call alone keeps a vCPU busy
// for half a second, long enough to starve heartbeats at the daemon's
// defaults (tuned for real machines; measured by make bench-failover).
var labTiming = []string{"--heartbeat-timeout", "1s", "--election-timeout", "1s", "--leader-lease-timeout", "500ms"}

// labCluster is three ipvsmand with real IPVS in the director namespaces.
// Drift repair reads the table back every 2 s with a tenth of a CPU to
// spend on it: the tests time repairs against --resync, and under
// emulation a thread's CPU time includes the time the host gave the
// virtual CPU to others, so with the default 1% a loaded host stretches
// the rounds several times over (a flush was back after 17 s, not 2).
func labCluster(t *testing.T, tp *topo.Topology) (*harness.Cluster, []*harness.Node) {
	t.Helper()
	return harness.Directors(t, tp, "on", append([]string{"--resync", "2s", "--resync-cpu", "10"}, labTiming...)...)
}

// TestClusterProgramsIdenticalKernelTables: a batch of ipvsadm-language
// commands through one node leaves the same kernel table in all three
// director namespaces, equal to the model, with equal fingerprints.
func TestClusterProgramsIdenticalKernelTables(t *testing.T) {
	requireKernelIPVS(t)
	tp := topo.Build(t, topo.Options{})
	c, nodes := labCluster(t, tp)
	batch := [][]string{
		{"-A", "-t", topo.VIP + ":23", "-s", "rr"},
		{"-a", "-t", topo.VIP + ":23", "-r", topo.RealServerAddr(1), "-g"},
		{"-a", "-t", topo.VIP + ":23", "-r", topo.RealServerAddr(2), "-g"},
		{"-A", "-t", topo.VIP + ":80", "-s", "wlc", "-p", "600", "-M", "255.255.255.0"},
		{"-a", "-t", topo.VIP + ":80", "-r", topo.RealServerAddr(1), "-g", "-w", "3"},
		{"-a", "-t", topo.VIP + ":80", "-r", topo.RealServerAddr(2), "-g", "-w", "2"},
		{"-A", "-t", topo.VIP + ":8080", "-s", "sh", "-b", "sh-port"},
		{"-a", "-t", topo.VIP + ":8080", "-r", topo.NATServerAddr(1) + ":80", "-m"},
		{"-a", "-t", topo.VIP + ":8080", "-r", topo.NATServerAddr(2) + ":80", "-m", "-w", "0"},
		{"-A", "-u", topo.VIP + ":53", "-s", "mh", "-b", "mh-fallback,mh-port"},
		{"-a", "-u", topo.VIP + ":53", "-r", topo.RealServerAddr(3), "-g"},
		{"-A", "-f", "7", "-s", "lc"},
		{"-a", "-f", "7", "-r", topo.RealServerAddr(3), "-i", "-w", "4"},
		{"-e", "-t", topo.VIP + ":80", "-r", topo.RealServerAddr(2), "-g", "-w", "5"},
		{"-d", "-t", topo.VIP + ":23", "-r", topo.RealServerAddr(2)},
	}
	for _, args := range batch {
		c.MustCLI(nodes[1], "", args...)
	}
	model := c.MustCLI(nodes[2], "", "-S", "-n")
	if strings.Count(model, "\n") != len(batch)-3 { // -e changes a line; -d adds none and removes one
		t.Fatalf("model after the batch:\n%s", model)
	}
	var tables map[string]string
	harness.Eventually(t, 60*time.Second, "every director's kernel table equals the model", func() (bool, string) {
		tables = map[string]string{}
		for _, n := range nodes {
			out, err := tp.Exec(n.ID, "ipvsadm", "-S", "-n")
			if err != nil {
				return false, err.Error()
			}
			tables[n.ID] = out
			if out != model {
				return false, fmt.Sprintf("%s kernel:\n%s\nmodel:\n%s", n.ID, out, model)
			}
		}
		return true, ""
	})
	t.Logf("kernel table of every director (ipvsadm -S -n):\n%s", tables[nodes[0].ID])
	harness.Eventually(t, 30*time.Second, "equal fingerprints in cluster status", func() (bool, string) {
		out := c.MustCLI(nodes[0], "", "cluster", "status", "--json")
		var st struct {
			Nodes []struct {
				ID     string `json:"id"`
				Status *struct {
					ConfigVersion uint64 `json:"config_version"`
					Director      *struct {
						Fingerprint string `json:"fingerprint"`
						Version     uint64 `json:"version"`
						Failed      int    `json:"failed"`
					} `json:"director"`
				} `json:"status"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return false, err.Error()
		}
		fps := map[string]bool{}
		for _, n := range st.Nodes {
			if n.Status == nil || n.Status.Director == nil || n.Status.Director.Failed != 0 || n.Status.Director.Version != n.Status.ConfigVersion {
				return false, out
			}
			fps[n.Status.Director.Fingerprint] = true
		}
		return len(st.Nodes) == 3 && len(fps) == 1, out
	})
	t.Logf("cluster status:\n%s", c.MustCLI(nodes[0], "", "cluster", "status"))

	// ipvsadm --set, cluster-wide: 0 keeps the kernel's tcpfin timeout.
	c.MustCLI(nodes[2], "", "--set", "901", "0", "301")
	want := "Timeout (tcp tcpfin udp): 901 120 301\n"
	if got := c.MustCLI(nodes[0], "", "-L", "--timeout"); got != want {
		t.Fatalf("model timeouts %q, want %q", got, want)
	}
	harness.Eventually(t, 30*time.Second, "every kernel has the timeouts", func() (bool, string) {
		for _, n := range nodes {
			k, err := tp.Exec(n.ID, "ipvsadm", "-L", "--timeout")
			v := c.CLI(nodes[0], "", "-L", "--timeout", "--node", n.ID)
			if err != nil || k != want || v.Stdout != want {
				return false, fmt.Sprintf("%s: kernel %q %v, --node %q %s", n.ID, k, err, v.Stdout, v.Stderr)
			}
		}
		return true, ""
	})

	// Each node's own kernel view (--node) is its kernel, counters included.
	tp.StartRealServers(topo.BuildLabtool(t))
	lead := leaderOf(t, c, nodes)
	tp.AddAddr(lead.ID, topo.VIP+"/24", "eth0")
	if s := traffic(t, tp, topo.BuildLabtool(t), "http://"+topo.VIP+"/", 20); s.OK != 20 {
		t.Fatalf("traffic through %s: %+v", lead.ID, s)
	}
	harness.Eventually(t, 30*time.Second, "ipvsman -L -n --node equals ipvsadm -L -n of that node", func() (bool, string) {
		for _, n := range nodes {
			view := c.CLI(nodes[2], "", "-L", "-n", "--node", n.ID)
			kernel, err := tp.Exec(n.ID, "ipvsadm", "-L", "-n")
			if view.Err != nil || err != nil || view.Stdout != kernel {
				return false, fmt.Sprintf("%s: --node view:\n%s%s\nkernel:\n%s%v", n.ID, view.Stdout, view.Stderr, kernel, err)
			}
		}
		return true, ""
	})
	view := c.MustCLI(nodes[0], "", "-L", "-n", "--node", lead.ID)
	t.Logf("ipvsman -L -n --node %s:\n%s", lead.ID, view)
	if !strings.Contains(view, "wlc persistent 600") || strings.Count(view, " 0          0") == strings.Count(view, "->")-1 {
		t.Fatalf("the leader's kernel view shows no connections after 20 requests:\n%s", view)
	}
}

// leaderOf waits until the running nodes agree on a leader and returns it.
func leaderOf(t *testing.T, c *harness.Cluster, nodes []*harness.Node) *harness.Node {
	t.Helper()
	return c.Leader(t, nodes[0], nodes)
}

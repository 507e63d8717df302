package host

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

const (
	ecmpRouterAS   = 65000
	ecmpDirectorAS = 65001
)

var ecmpVIP = netip.MustParsePrefix("10.0.0.50/32")

const ecmpTopology = `vips:
  - address: 10.0.0.50/32
    mode: ecmp
services:
  - protocol: tcp
    address: 10.0.0.50
    port: 80
    scheduler: mh
    flags: [mh-port, mh-fallback]
    servers:
      - {address: 10.0.0.21}
`

// bgpStatus is each reachable node's BGP section as `cluster status
// --json` through via reports it.
func bgpStatus(t *testing.T, c *harness.Cluster, via *harness.Node) map[string]*api.BGPStatus {
	t.Helper()
	r := c.CLI(via, "", "cluster", "status", "--json")
	var st api.ClusterStatus
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		return nil
	}
	out := map[string]*api.BGPStatus{}
	for _, n := range st.Nodes {
		if n.Status != nil {
			out[n.ID] = n.Status.BGP
		}
	}
	return out
}

// TestECMPAnnounce: three ipvsmand peer with a BIRD router and announce
// an ecmp VIP while ready: the router's kernel route to it has a next hop
// per director. A node that stops being ready withdraws and announces
// again when ready; a node told to stop first drains (65535:0 on its path)
// and then withdraws; a killed node's route goes with its sessions.
func TestECMPAnnounce(t *testing.T) {
	harness.RequireBird(t)
	tp := topo.Build(t, topo.Options{Prefix: "ec-", NoIPv6: true})
	routerNS := tp.NS(topo.Client)
	dirs := map[string]netip.Addr{}
	for i := 1; i <= topo.Directors; i++ {
		dirs[topo.Director(i)] = netip.MustParseAddr(topo.DirectorAddr(i))
	}
	d1, d2, d3 := dirs["d1"], dirs["d2"], dirs["d3"]
	bird := harness.StartBird(t, routerNS, harness.ECMPRouter{
		Addr: netip.MustParseAddr(topo.ClientAddr), AS: ecmpRouterAS, Directors: dirs, DirectorAS: ecmpDirectorAS,
	}.Conf())

	// Each node's track script fails while its file exists in down.
	down := t.TempDir()
	c := harness.NewCluster(t)
	var nodes []*harness.Node
	for i := 1; i <= topo.Directors; i++ {
		d := topo.Director(i)
		nodes = append(nodes, c.AddAt(d, topo.DirectorAddr(i)+":7000", topo.DirectorAddr(i)+":7080", tp.NS(d),
			"--bgp-as", fmt.Sprint(ecmpDirectorAS), "--bgp-peer", fmt.Sprintf("%s,as=%d", topo.ClientAddr, ecmpRouterAS),
			"--track-script", "test ! -e "+filepath.Join(down, d), "--track-interval", "100ms", "--track-fall", "2", "--track-rise", "2"))
	}
	c.CLINetNS = routerNS
	nodes[0].Start("--bootstrap")
	nodes[1].Start("--join", nodes[0].APIAddr)
	nodes[2].Start("--join", nodes[0].APIAddr)
	c.WaitRoles(t, nodes[0], len(nodes))
	c.Voters(t, nodes[0], nodes...)
	file := filepath.Join(t.TempDir(), "ecmp.yaml")
	if err := os.WriteFile(file, []byte(ecmpTopology), 0o600); err != nil {
		t.Fatal(err)
	}
	c.MustCLI(nodes[0], "", "apply", "-f", file)

	harness.WaitNexthops(t, routerNS, ecmpVIP, 30*time.Second, d1, d2, d3)
	harness.Eventually(t, 10*time.Second, "every node reporting 1 announced, its session established", func() (bool, string) {
		st := bgpStatus(t, c, nodes[0])
		for _, n := range nodes {
			b := st[n.ID]
			if b == nil || api.BGPColumn(b) != "1 announced" || len(b.Peers) != 1 || b.Peers[0].State != "established" || strings.Join(b.Peers[0].Advertised, ",") != ecmpVIP.String() {
				return false, fmt.Sprintf("%s: %+v", n.ID, b)
			}
		}
		return true, ""
	})
	out := c.MustCLI(nodes[0], "", "cluster", "status")
	if !strings.Contains(out, "BGP") || strings.Count(out, "1 announced") != 3 {
		t.Fatalf("cluster status without a BGP column saying 1 announced per node:\n%s", out)
	}

	// d2 stops being ready: its next hop goes, the others stay; it comes
	// back when ready again.
	setDown := func(id string, on bool) {
		t.Helper()
		f := filepath.Join(down, id)
		if on {
			if err := os.WriteFile(f, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		} else if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	setDown("d2", true)
	harness.WaitNexthops(t, routerNS, ecmpVIP, 15*time.Second, d1, d3)
	harness.Eventually(t, 10*time.Second, "d2 reporting why it does not announce", func() (bool, string) {
		b := bgpStatus(t, c, nodes[0])["d2"]
		return b != nil && strings.HasPrefix(api.BGPColumn(b), "not ready: "), fmt.Sprintf("%+v", b)
	})
	setDown("d2", false)
	harness.WaitNexthops(t, routerNS, ecmpVIP, 15*time.Second, d1, d2, d3)

	// Nobody ready: no route, and cluster status raises the alarm.
	for _, n := range nodes {
		setDown(n.ID, true)
	}
	harness.WaitNexthops(t, routerNS, ecmpVIP, 15*time.Second)
	harness.Eventually(t, 10*time.Second, "the alarm for an ecmp VIP nobody announces", func() (bool, string) {
		r := c.CLI(nodes[0], "", "cluster", "status")
		return r.Err != nil && strings.Contains(r.Stderr, "ALARM: ecmp VIP announced by no node: 10.0.0.50/32"), r.Stdout + r.Stderr
	})
	for _, n := range nodes {
		setDown(n.ID, false)
	}
	harness.WaitNexthops(t, routerNS, ecmpVIP, 15*time.Second, d1, d2, d3)
	if r := c.CLI(nodes[0], "", "cluster", "status"); r.Err != nil {
		t.Fatalf("cluster status with the VIP announced again: %v: %s", r.Err, r.Stderr)
	}

	// SIGTERM to d3: its path carries GRACEFUL_SHUTDOWN first, then it is
	// gone, then the process ends.
	// Stop waits for the exit; the router is watched meanwhile.
	stopped := make(chan error, 1)
	go func() { stopped <- nodes[2].Stop() }()
	harness.Eventually(t, 10*time.Second, "d3's path with 65535:0 at the router", func() (bool, string) {
		comm, out, err := bird.Communities(ecmpVIP)
		return err == nil && strings.Contains(comm["d3"], "(65535,0)"), out
	})
	harness.WaitNexthops(t, routerNS, ecmpVIP, 15*time.Second, d1, d2)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("d3 after SIGTERM: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("d3 still running 40 s after SIGTERM")
	}
	comm, bout, err := bird.Communities(ecmpVIP)
	if err != nil || len(comm) != 2 {
		t.Fatalf("paths after d3 stopped: %v %v\n%s", comm, err, bout)
	}
	if _, ok := comm["d3"]; ok {
		t.Fatalf("d3's path still at the router after it stopped:\n%s", bout)
	}
	log := nodes[2].Log()
	for _, want := range []string{"ecmp drain: graceful shutdown announced", "ecmp drain: wait over", `"msg":"ecmp withdraw"`, "ecmp drain done"} {
		if !strings.Contains(log, want) {
			t.Errorf("d3's log has no %q", want)
		}
	}

	// kill -9 of d2: the kernel closes its sessions, the router drops its
	// path.
	nodes[1].Kill()
	harness.WaitNexthops(t, routerNS, ecmpVIP, 15*time.Second, d1)

	// d2 starts again with its track script failing: the tracker counts
	// a new script up until it has failed --track-fall times (10 here:
	// 5 s, longer than the session takes to come up), and the announcer
	// waits that out, so d2's next hop never shows.
	setDown("d2", true)
	restart := time.Now()
	nodes[1].Start("--track-fall", "10")
	harness.Eventually(t, 60*time.Second, "d2 up again, its session established", func() (bool, string) {
		b := bgpStatus(t, c, nodes[1])["d2"]
		return b != nil && len(b.Peers) == 1 && b.Peers[0].State == "established", fmt.Sprintf("%+v", b)
	})
	t.Logf("d2's session up %s after its restart", time.Since(restart).Round(time.Millisecond))
	// An observation window, not a wait: the route must keep one next hop
	// throughout, past the end of d2's settling (10 × 5 × 100 ms).
	for end := restart.Add(7 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if hops, err := harness.Nexthops(routerNS, ecmpVIP); err != nil || len(hops) != 1 {
			t.Fatalf("d2 announced while its track script failed: next hops %v %v\n%s", hops, err, logTail(nodes[1].Log()))
		}
	}
	if !strings.Contains(nodes[1].Log(), "readiness settling") && !strings.Contains(nodes[1].Log(), "not ready: ") {
		t.Errorf("d2's log does not say why it did not announce")
	}
	setDown("d2", false)
	harness.WaitNexthops(t, routerNS, ecmpVIP, 15*time.Second, d1, d2)
}

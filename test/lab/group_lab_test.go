//go:build lab

package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// groupTopo is one direct-routing web service served on three virtual
// services (the VIP's ports 80, 81 and 82: the real servers hold the one
// VIP on lo), two real servers checked over HTTP every second; a failed
// server leaves the kernel tables.
const groupTopo = `vips:
  - {address: 10.0.0.10/32, interface: eth0}
services:
  - protocol: tcp
    address: 10.0.0.10
    port: 80
    group: [tcp:10.0.0.10:81, tcp:10.0.0.10:82]
    scheduler: rr
    forward: droute
    on_failure: remove
    check: {type: http, path: /, interval: 1s, timeout: 500ms, rise: 2, fall: 2}
    servers:
      - {address: 10.0.0.21}
      - {address: 10.0.0.22}
`

// groupStats is where each responder counts the HTTP requests it answered.
const groupStats = "127.0.0.1:9180"

// groupPorts are the three virtual services' ports.
var groupPorts = []string{"80", "81", "82"}

// destsOf is each virtual service's destination addresses in one
// `ipvsadm -L -n` listing, by "TCP  VIP:PORT".
func destsOf(list string) map[string][]string {
	out := map[string][]string{}
	var svc string
	for _, l := range strings.Split(list, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 2 && (f[0] == "TCP" || f[0] == "UDP" || f[0] == "FWM"):
			svc = f[0] + " " + f[1]
			out[svc] = []string{}
		case len(f) >= 2 && f[0] == "->" && svc != "":
			out[svc] = append(out[svc], f[1])
		}
	}
	return out
}

// TestServiceGroup: a service grouped on three virtual services with two
// real servers and an HTTP check, on the three-director cluster. Every
// director's kernel holds the three services with the same destinations,
// as ipvsman -L and -L --node list them; each member answers traffic;
// each responder answers one check per interval (not one per member);
// ipvsman -S writes the kernels' table and its group line; and one
// responder stopped leaves all three kernel services on every director.
func TestServiceGroup(t *testing.T) {
	requireKernelIPVS(t)
	tp := topo.Build(t, topo.Options{})
	labtool := topo.BuildLabtool(t)
	responders := map[int]*topo.Proc{}
	for i := 1; i <= 2; i++ {
		p := tp.Start(topo.RealServer(i), labtool, "serve", "--name", topo.RealServer(i), "--http", ":80", "--http-ports", "81-82",
			"--stats", groupStats, "--echo", "", "--dns", "")
		if err := p.WaitLine("ready", time.Minute); err != nil {
			t.Fatal(err)
		}
		responders[i] = p
	}
	c, nodes := labCluster(t, tp)
	file := filepath.Join(t.TempDir(), "group.yaml")
	if err := os.WriteFile(file, []byte(groupTopo), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("ipvsman apply:\n%s", c.MustCLI(nodes[0], "", "apply", "-f", file))
	rs1, rs2 := topo.RealServerAddr(1)+":80", topo.RealServerAddr(2)+":80"
	both := func(s string) bool {
		d := destsOf(s)
		for _, p := range groupPorts {
			if got := d["TCP "+topo.VIP+":"+p]; !slices.Equal(got, []string{rs1, rs2}) {
				return false
			}
		}
		return len(d) == 3
	}
	table := kernelsFollow(t, c, tp, nodes, "three kernel services with both real servers on every director", both)
	t.Logf("every director (ipvsadm -L -n):\n%s", table)
	for _, n := range nodes {
		out, _ := tp.Exec(n.ID, "ipvsadm", "-L", "-n")
		node := c.MustCLI(nodes[1], "", "-L", "-n", "--node", n.ID)
		if withoutCounters(node) != withoutCounters(out) {
			t.Errorf("%s: ipvsman -L -n --node:\n%s\nipvsadm -L -n:\n%s", n.ID, node, out)
		}
	}

	// ipvsman -S: the kernels' ipvsadm -S -n, then the group's line.
	saved := c.MustCLI(nodes[2], "", "-S", "-n")
	t.Logf("ipvsman -S -n:\n%s", saved)
	lines := strings.Split(strings.TrimRight(saved, "\n"), "\n")
	if want := "#ipvsman group add tcp:10.0.0.10:80 tcp:10.0.0.10:81 tcp:10.0.0.10:82"; lines[len(lines)-1] != want {
		t.Errorf("last line of ipvsman -S -n %q, want %q", lines[len(lines)-1], want)
	}
	for _, n := range nodes {
		if k := tp.MustExec(n.ID, "ipvsadm", "-S", "-n"); k != strings.Join(lines[:len(lines)-1], "\n")+"\n" {
			t.Errorf("%s: ipvsadm -S -n:\n%s\nipvsman -S -n without its group line:\n%s", n.ID, k, strings.Join(lines[:len(lines)-1], "\n"))
		}
	}

	lead := leaderOf(t, c, nodes)
	waitVIPOn(t, tp, lead.ID, topo.VIP+"/32")
	harness.Eventually(t, 30*time.Second, "a first request answered through "+lead.ID, func() (bool, string) {
		s := traffic(t, tp, labtool, "http://"+topo.VIP+"/", 1)
		return s.OK == 1, fmt.Sprintf("%+v", s)
	})
	for _, p := range groupPorts {
		s := traffic(t, tp, labtool, "http://"+topo.VIP+":"+p+"/", 10)
		t.Logf("port %s: %+v", p, s)
		if s.OK != 10 || s.ByServer[topo.RealServer(1)] != 5 || s.ByServer[topo.RealServer(2)] != 5 {
			t.Errorf("traffic to %s:%s: %+v, want 10 answered, 5 by each (rr)", topo.VIP, p, s)
		}
	}

	// One check per real server per interval: count each responder's
	// requests over a window without traffic. Checks per member would be
	// three a second.
	out := c.MustCLI(nodes[0], "", "health")
	t.Logf("ipvsman health:\n%s", out)
	if n := strings.Count(out, " up "); n != 2 {
		t.Errorf("ipvsman health lists %d checked servers up, want 2 (one check per real server):\n%s", n, out)
	}
	before := [3]uint64{0, groupRequests(t, tp, 1), groupRequests(t, tp, 2)}
	start := time.Now()
	time.Sleep(10 * time.Second) // the window the checks are counted over, not a wait for a condition
	after := [3]uint64{0, groupRequests(t, tp, 1), groupRequests(t, tp, 2)}
	secs := time.Since(start).Seconds()
	for i := 1; i <= 2; i++ {
		n := after[i] - before[i]
		t.Logf("%s answered %d requests in %.1f s: %.2f checks a second (interval 1 s)", topo.RealServer(i), n, secs, float64(n)/secs)
		if float64(n) > secs*1.5+1 || float64(n) < secs*0.5 {
			t.Errorf("%s: %d requests in %.1f s, want one check a second (%d per member would be %.0f)", topo.RealServer(i), n, secs, n, secs*3)
		}
	}

	// rs2's responder stopped: one verdict takes it out of all three
	// kernel services on every director.
	stopped := time.Now()
	if err := responders[2].Kill(); err != nil {
		t.Fatal(err)
	}
	table = kernelsFollow(t, c, tp, nodes, "rs2 out of the three kernel services on every director", func(s string) bool {
		d := destsOf(s)
		for _, p := range groupPorts {
			if got := d["TCP "+topo.VIP+":"+p]; !slices.Equal(got, []string{rs1}) {
				return false
			}
		}
		return len(d) == 3
	})
	t.Logf("rs2 stopped: out of the three services on all three directors after %d ms (fall 2 x 1 s); every director:\n%s", time.Since(stopped).Milliseconds(), table)
	var h struct {
		Checks []struct {
			Service string `json:"service"`
			Server  string `json:"server"`
			Health  string `json:"health"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(c.MustCLI(nodes[1], "", "health", "--json")), &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Checks) != 2 {
		t.Errorf("health --json: %d checks, want 2: %+v", len(h.Checks), h.Checks)
	}
	for _, p := range groupPorts {
		if s := traffic(t, tp, labtool, "http://"+topo.VIP+":"+p+"/", 6); s.OK != 6 || s.ByServer[topo.RealServer(1)] != 6 {
			t.Errorf("traffic to %s:%s with rs2 down: %+v, want rs1 alone", topo.VIP, p, s)
		}
	}
}

// groupRequests is responder i's count of HTTP requests answered.
func groupRequests(t *testing.T, tp *topo.Topology, i int) uint64 {
	t.Helper()
	out := tp.MustExec(topo.RealServer(i), "curl", "-sS", "--max-time", "20", "http://"+groupStats+"/")
	var st struct {
		N *uint64 `json:"http_requests"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.N == nil {
		t.Fatalf("%s stats %q: %v", topo.RealServer(i), out, err)
	}
	return *st.N
}

//go:build lab

package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// healthTopo is a direct-routing web service whose real servers the leader
// checks over HTTP every second (rise 2, fall 2).
const healthTopo = `vips:
  - {address: 10.0.0.10/32, interface: eth0}
services:
  - protocol: tcp
    address: 10.0.0.10
    port: 80
    scheduler: rr
    forward: droute
    check: {type: http, path: /, interval: 1s, timeout: 500ms, rise: 2, fall: 2}
    servers:
      - {address: 10.0.0.21}
      - {address: 10.0.0.22}
      - {address: 10.0.0.23}
`

// weightIn is rs's weight in node's kernel table ("" if absent).
func weightIn(t *testing.T, tp *topo.Topology, node, rs string) string {
	out, _ := tp.Exec(node, "ipvsadm", "-L", "-n")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "->" && f[1] == rs+":80" {
			return f[3]
		}
	}
	return ""
}

// TestHealthChecksInTheKernels: while links flap, the kernel-table alarm
// stays quiet (noAlarmDuringAHealthStorm). A real server whose HTTP service
// stops is at weight 0 in all three kernels within fall × interval plus a
// tick, and gets no new connections; started again, it is back after rise ×
// interval. The leader killed during the outage: the verdict survives and
// nothing flaps.
func TestHealthChecksInTheKernels(t *testing.T) {
	requireKernelIPVS(t)
	tp := topo.Build(t, topo.Options{})
	labtool := topo.BuildLabtool(t)
	procs := tp.StartRealServers(labtool)
	c, nodes := labCluster(t, tp)
	file := filepath.Join(t.TempDir(), "web.yaml")
	if err := os.WriteFile(file, []byte(healthTopo), 0o600); err != nil {
		t.Fatal(err)
	}
	c.MustCLI(nodes[0], "", "apply", "-f", file)
	rs2 := topo.RealServerAddr(2)
	allAt := func(nodes []*harness.Node, w string) func() (bool, string) {
		return func() (bool, string) {
			for _, n := range nodes {
				if got := weightIn(t, tp, n.ID, rs2); got != w {
					return false, fmt.Sprintf("%s: rs2 weight %q", n.ID, got)
				}
			}
			return true, ""
		}
	}
	harness.Eventually(t, 60*time.Second, "rs2 at weight 1 everywhere", allAt(nodes, "1"))
	t.Run("no table alarm during a health storm", func(t *testing.T) { noAlarmDuringAHealthStorm(t, tp, c, nodes) })
	harness.Eventually(t, 60*time.Second, "every server up again after the storm, rs2 at weight 1 everywhere", func() (bool, string) {
		if ok, why := allAt(nodes, "1")(); !ok {
			return false, why
		}
		r := c.CLI(nodes[1], "", "health")
		return strings.Count(r.Stdout, " up ") == 3, r.Stdout + r.Stderr
	})
	lead := leaderOf(t, c, nodes)
	waitVIPOn(t, tp, lead.ID, topo.VIP+"/32")
	out := c.MustCLI(nodes[1], "", "health")
	if strings.Count(out, " up ") != 3 {
		t.Errorf("ipvsman health before the outage:\n%s", out)
	}

	// Stop rs2's HTTP service (its process serves all three ports).
	stopped := time.Now()
	if err := procs[topo.RealServer(2)].Kill(); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, "rs2 at weight 0 everywhere", allAt(nodes, "0"))
	took := time.Since(stopped)
	t.Logf("rs2 stopped: weight 0 in all three kernels after %d ms (fall 2 × 1 s, tick 200 ms; CLI polling under emulation adds ~0.5 s a round)", took.Milliseconds())
	if s := traffic(t, tp, labtool, "http://"+topo.VIP+"/", 30); s.Failed != 0 || s.ByServer["rs2"] != 0 {
		t.Errorf("with rs2 down: %+v", s)
	}
	out = c.MustCLI(nodes[2], "", "health")
	if !strings.Contains(out, "down") || !strings.Contains(out, "fail") {
		t.Errorf("ipvsman health during the outage:\n%s", out)
	}

	// Kill the leader during the outage: the verdict is in the log, the new
	// leader starts from it, and rs2 stays at weight 0 (no flap to 1).
	lead.Kill()
	tp.CutLink(lead.ID)
	var rest []*harness.Node
	for _, n := range nodes {
		if n != lead {
			rest = append(rest, n)
		}
	}
	next := leaderOf(t, c, rest)
	waitVIPOn(t, tp, next.ID, topo.VIP+"/32")
	harness.Eventually(t, 30*time.Second, "the new leader has checked rs2 a few times", func() (bool, string) {
		r := c.CLI(next, "", "health", "--json")
		var h struct {
			Checks []struct {
				Server string `json:"server"`
				Health string `json:"health"`
				Checks int    `json:"checks"`
			} `json:"checks"`
		}
		if r.Err != nil || json.Unmarshal([]byte(r.Stdout), &h) != nil {
			return false, r.Stdout + r.Stderr
		}
		for _, s := range h.Checks {
			if s.Server == rs2+":80" {
				return s.Health == "down" && s.Checks >= 3, r.Stdout
			}
		}
		return false, r.Stdout
	})
	for _, n := range rest {
		if w := weightIn(t, tp, n.ID, rs2); w != "0" {
			t.Errorf("after the failover rs2 has weight %q in %s: the verdict flapped", w, n.ID)
		}
		if strings.Contains(n.Log(), `"msg":"health transition"`) && strings.Contains(n.Log(), `"server":"`+rs2+`:80","health":"up"`) {
			t.Errorf("%s logged rs2 up while it was still down", n.ID)
		}
	}

	started := time.Now()
	procs[topo.RealServer(2)] = tp.Start(topo.RealServer(2), labtool, "serve", "--name", topo.RealServer(2), "--http", ":80", "--echo", ":7", "--dns", ":53")
	if err := procs[topo.RealServer(2)].WaitLine("ready", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, "rs2 back at weight 1", allAt(rest, "1"))
	t.Logf("rs2 started again: weight 1 after %d ms (rise 2 × 1 s)", time.Since(started).Milliseconds())
	if s := traffic(t, tp, labtool, "http://"+topo.VIP+"/", 30); s.Failed != 0 || s.ByServer["rs2"] == 0 {
		t.Errorf("with rs2 back: %+v", s)
	}
}

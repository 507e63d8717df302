//go:build lab

package lab

import (
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

// TestQuorumWithHysteresisInTheKernels: a web service on rs1 (weight 2),
// rs2 and rs3 (weight 1), HTTP-checked, with quorum 3, hysteresis 1 and
// the sorry server nat1 (masquerading). It loses its quorum when the live
// weight falls below 2 and regains it at 4. The responders are killed one
// by one and started again, and every director's kernel is read after each
// step: above the threshold the real servers serve; below it the sorry
// server alone does; on the way back, at live weight 2 (which kept the
// quorum on the way down) it stays with the sorry server until all 4 are
// back.
func TestQuorumWithHysteresisInTheKernels(t *testing.T) {
	requireKernelIPVS(t)
	tp := topo.Build(t, topo.Options{})
	labtool := topo.BuildLabtool(t)
	procs := tp.StartRealServers(labtool)
	c, nodes := labCluster(t, tp)
	lead := leaderOf(t, c, nodes)
	tp.AddAddr(lead.ID, topo.VIP+"/24", "eth0")
	tp.AddAddr(lead.ID, topo.Gateway+"/24", "eth0") // the sorry server's replies route through it
	file := filepath.Join(t.TempDir(), "web.yaml")
	apply := func(onFailure string) {
		t.Helper()
		y := fmt.Sprintf(`services:
  - {name: Web, protocol: tcp, address: %s, port: 80, scheduler: wrr, on_failure: %s,
     quorum: 3, hysteresis: 1,
     check: {type: http, path: /, interval: 1s, timeout: 500ms, rise: 2, fall: 2},
     sorry_server: {name: nat1, address: %s, forward: masq},
     servers: [{name: rs1, address: %s, weight: 2}, {name: rs2, address: %s}, {name: rs3, address: %s}]}
`, topo.VIP, onFailure, topo.NATServerAddr(1), topo.RealServerAddr(1), topo.RealServerAddr(2), topo.RealServerAddr(3))
		if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		c.MustCLI(nodes[1], "", "apply", "-f", file)
	}
	svc := "-A -t " + topo.VIP + ":80 -s wrr"
	rs := func(i, w int) string {
		return fmt.Sprintf("-a -t %s:80 -r %s:80 -g -w %d", topo.VIP, topo.RealServerAddr(i), w)
	}
	sorry := fmt.Sprintf("-a -t %s:80 -r %s:80 -m -w 1", topo.VIP, topo.NATServerAddr(1))
	kernels := func(step string, want ...string) {
		t.Helper()
		want = append([]string{svc}, want...)
		slices.Sort(want)
		text := strings.Join(want, "\n")
		start := time.Now()
		harness.Eventually(t, 60*time.Second, step+": every kernel holds the expected table", func() (bool, string) {
			for _, n := range nodes {
				out, err := tp.Exec(n.ID, "ipvsadm", "-S", "-n")
				lines := strings.Split(strings.TrimSpace(out), "\n")
				slices.Sort(lines)
				if got := strings.Join(lines, "\n"); err != nil || got != text {
					return false, fmt.Sprintf("%s:\n%s%v\nwant:\n%s", n.ID, got, err, text)
				}
			}
			return true, ""
		})
		t.Logf("%s: all three kernels after %d ms:\n%s", step, time.Since(start).Milliseconds(), text)
	}
	// quorum waits until `ipvsman quorum list` reports the live weight and
	// the state, so that a table that did not change is seen after the
	// verdict that could have changed it, not before.
	quorum := func(live int, state string) {
		t.Helper()
		harness.Eventually(t, 60*time.Second, fmt.Sprintf("quorum list: live %d, %s", live, state), func() (bool, string) {
			r := c.CLI(nodes[2], "", "quorum", "list")
			for _, line := range strings.Split(r.Stdout, "\n") {
				f := strings.Fields(line)
				if len(f) >= 5 && f[0] == "tcp:"+topo.VIP+":80" {
					return f[3] == fmt.Sprint(live) && f[4] == state, r.Stdout
				}
			}
			return false, r.Stdout + r.Stderr
		})
	}
	kill := func(i int) {
		t.Helper()
		if err := procs[topo.RealServer(i)].Kill(); err != nil {
			t.Fatal(err)
		}
	}
	start := func(i int) {
		t.Helper()
		n := topo.RealServer(i)
		procs[n] = tp.Start(n, labtool, "serve", "--name", n, "--http", ":80", "--echo", ":7", "--dns", ":53")
		if err := procs[n].WaitLine("ready", 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	apply("remove")
	quorum(4, "held")
	kernels("all up, live 4", rs(1, 2), rs(2, 1), rs(3, 1))
	if s := traffic(t, tp, labtool, "http://"+topo.VIP+"/", 12); s.OK != 12 || s.ByServer["nat1"] != 0 {
		t.Fatalf("all up: want every request on rs1-rs3: %+v", s)
	}

	kill(1)
	quorum(2, "held")
	kernels("rs1 down, live 2: below the quorum 3, not below 3-1", rs(2, 1), rs(3, 1))

	kill(2)
	quorum(1, "lost")
	kernels("rs2 down too, live 1 < 2: lost, the sorry server alone", sorry)
	if s := traffic(t, tp, labtool, "http://"+topo.VIP+"/", 10); s.OK != 10 || s.ByServer["nat1"] != 10 {
		t.Fatalf("quorum lost: want every request on the sorry server nat1, rs3 (still up) out: %+v", s)
	}

	// The same state with on_failure quiescent: every real server at
	// weight 0, the live rs3 too; the memory survives the change.
	apply("quiescent")
	quorum(1, "lost")
	kernels("quiescent, lost", rs(1, 0), rs(2, 0), rs(3, 0), sorry)

	start(2)
	quorum(2, "lost")
	kernels("rs2 back, live 2 < 3+1: still lost (hysteresis)", rs(1, 0), rs(2, 0), rs(3, 0), sorry)
	if s := traffic(t, tp, labtool, "http://"+topo.VIP+"/", 10); s.OK != 10 || s.ByServer["nat1"] != 10 {
		t.Fatalf("live 2 on the way up: want every request on nat1: %+v", s)
	}

	start(1)
	quorum(4, "held")
	kernels("rs1 back, live 4: gained, the sorry server out", rs(1, 2), rs(2, 1), rs(3, 1))
	if s := traffic(t, tp, labtool, "http://"+topo.VIP+"/", 12); s.OK != 12 || s.ByServer["nat1"] != 0 {
		t.Fatalf("quorum regained: want every request on rs1-rs3: %+v", s)
	}
}

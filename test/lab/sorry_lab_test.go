//go:build lab

package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// TestSorryServerAndRemovalInTheKernel: operator states and the service's
// on_failure decide each kernel's table, and the sorry server takes the
// traffic exactly while no real server is usable.
func TestSorryServerAndRemovalInTheKernel(t *testing.T) {
	requireKernelIPVS(t)
	tp := topo.Build(t, topo.Options{})
	labtool := topo.BuildLabtool(t)
	tp.StartRealServers(labtool)
	c, nodes := labCluster(t, tp)
	lead := leaderOf(t, c, nodes)
	tp.AddAddr(lead.ID, topo.VIP+"/24", "eth0")
	file := filepath.Join(t.TempDir(), "web.yaml")
	apply := func(onFailure, rs1State string) {
		t.Helper()
		y := fmt.Sprintf(`services:
  - {name: Web, protocol: tcp, address: %s, port: 80, scheduler: wlc, on_failure: %s,
     sorry_server: {name: rs3, address: %s},
     servers: [{name: rs1, address: %s, weight: 3, state: %s}, {name: rs2, address: %s, weight: 2, state: suspended}]}
`, topo.VIP, onFailure, topo.RealServerAddr(3), topo.RealServerAddr(1), rs1State, topo.RealServerAddr(2))
		if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		c.MustCLI(nodes[1], "", "apply", "-f", file)
	}
	kernels := func(want ...string) {
		t.Helper()
		text := strings.Join(want, "\n") + "\n"
		harness.Eventually(t, 60*time.Second, "every kernel holds the expected table", func() (bool, string) {
			for _, n := range nodes {
				out, err := tp.Exec(n.ID, "ipvsadm", "-S", "-n")
				if err != nil || out != text {
					return false, fmt.Sprintf("%s:\n%s%v\nwant:\n%s", n.ID, out, err, text)
				}
			}
			return true, ""
		})
	}
	svc := "-A -t " + topo.VIP + ":80 -s wlc"
	dest := func(i, w int) string {
		return fmt.Sprintf("-a -t %s:80 -r %s:80 -g -w %d", topo.VIP, topo.RealServerAddr(i), w)
	}

	apply("quiescent", "suspended") // nothing usable: quiescent servers stay at weight 0, the sorry server serves
	kernels(svc, dest(1, 0), dest(2, 0), dest(3, 1))
	if s := traffic(t, tp, labtool, "http://"+topo.VIP+"/", 10); s.OK != 10 || s.ByServer["rs3"] != 10 {
		t.Fatalf("all suspended: want every request on the sorry server rs3: %+v", s)
	}
	apply("quiescent", "active") // rs1 back: the sorry server leaves the table
	kernels(svc, dest(1, 3), dest(2, 0))
	if s := traffic(t, tp, labtool, "http://"+topo.VIP+"/", 10); s.OK != 10 || s.ByServer["rs1"] != 10 {
		t.Fatalf("rs1 active: want every request on rs1: %+v", s)
	}
	apply("remove", "suspended") // removal instead of quiescence
	kernels(svc, dest(3, 1))
	t.Logf("on_failure remove, all suspended: every kernel holds only the sorry server")
}

//go:build lab && labdemo

package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

func say(format string, args ...any) { fmt.Printf(format+"\n", args...) }
func step(format string, args ...any) {
	fmt.Printf("\n\033[1m== "+format+"\033[0m\n", args...)
}

func showSplit(s split) string {
	var names []string
	for n := range s.ByServer {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d", n, s.ByServer[n]))
	}
	return fmt.Sprintf("%d ok, %d failed: %s", s.OK, s.Failed, strings.Join(parts, ", "))
}

// TestDemo is `make demo`: it reads as a walk-through, not as a test log.
func TestDemo(t *testing.T) {
	requireKernelIPVS(t)
	step("1. The lab: a client, three directors, three real servers, in network namespaces on one bridge")
	tp := topo.Build(t, topo.Options{})
	labtool := topo.BuildLabtool(t)
	tp.StartRealServers(labtool)
	say("real servers rs1-rs3 (10.0.0.21-23) answer HTTP with their name; VIP %s on their lo", topo.VIP)

	step("2. Three ipvsman directors (ipvsmand --ipvs=on), one per director namespace")
	c, nodes := labCluster(t, tp)
	say("%s", c.MustCLI(nodes[0], "", "cluster", "status"))

	step("3. Apply the classic LVS sample topology (examples/classic-lvs.topo)")
	_, file, _, _ := runtime.Caller(0)
	sample := filepath.Join(filepath.Dir(file), "..", "..", "examples", "classic-lvs.topo")
	if _, err := os.Stat(sample); err != nil {
		t.Fatal(err)
	}
	body, _ := os.ReadFile(sample)
	say("%s", strings.TrimSpace(string(body)))
	say("%s", c.MustCLI(nodes[1], "", "apply", "-f", sample))
	lead := leaderOf(t, c, nodes)
	harness.Eventually(t, 60*time.Second, "kernel tables programmed", func() (bool, string) {
		for _, n := range nodes {
			if out, _ := tp.Exec(n.ID, "ipvsadm", "-L", "-n"); !strings.Contains(out, "10.0.0.22:80") {
				return false, out
			}
		}
		return true, ""
	})
	say("ipvsman -L -n (the cluster's model):\n%s", c.MustCLI(nodes[2], "", "-L", "-n"))
	say("ipvsadm -L -n inside %s (the kernel, the same on every director):\n%s", lead.ID, tp.MustExec(lead.ID, "ipvsadm", "-L", "-n"))

	step("4. Client traffic to http://%s/ (the VIP is placed on the leader %s by hand until milestone 4)", topo.VIP, lead.ID)
	tp.AddAddr(lead.ID, topo.VIP+"/24", "eth0")
	before := traffic(t, tp, labtool, "http://"+topo.VIP+"/", 50)
	say("50 requests: %s  (weights 3:2)", showSplit(before))

	step("5. Kill the leader %s with SIGKILL", lead.ID)
	killedAt := time.Now()
	lead.Kill()
	var rest []*harness.Node
	for _, n := range nodes {
		if n != lead {
			rest = append(rest, n)
		}
	}
	nl := leaderOf(t, c, rest)
	elected := time.Since(killedAt)
	tp.CutLink(lead.ID) // a dead director's address must not answer either
	tp.AddAddr(nl.ID, topo.VIP+"/24", "eth0")
	tp.ArpFlush(topo.Client) // no gratuitous ARP until milestone 4
	say("new leader %s reported %d ms after the kill (polled with the CLI, ~0.5 s a call under emulation); VIP moved to it by hand", nl.ID, elected.Milliseconds())

	step("6. The cluster carries on")
	after := traffic(t, tp, labtool, "http://"+topo.VIP+"/", 50)
	say("50 requests: %s", showSplit(after))
	c.MustCLI(rest[0], "", "-a", "-t", topo.VIP+":80", "-r", topo.RealServerAddr(3), "-g", "-w", "1")
	harness.Eventually(t, 30*time.Second, "rs3 in both kernels", func() (bool, string) {
		for _, n := range rest {
			if out, _ := tp.Exec(n.ID, "ipvsadm", "-L", "-n"); !strings.Contains(out, topo.RealServerAddr(3)+":80") {
				return false, out
			}
		}
		return true, ""
	})
	third := traffic(t, tp, labtool, "http://"+topo.VIP+"/", 60)
	say("rs3 added through %s with weight 1; 60 requests: %s", rest[0].ID, showSplit(third))

	step("Figures")
	say("requests before the failover: %d ok, %d failed", before.OK, before.Failed)
	say("new leader reported after SIGKILL: %d ms (includes CLI polling)", elected.Milliseconds())
	say("requests after the failover:  %d ok, %d failed", after.OK, after.Failed)
	a := tp.MustExec(rest[0].ID, "ipvsadm", "-S", "-n")
	b := tp.MustExec(rest[1].ID, "ipvsadm", "-S", "-n")
	say("kernel tables of %s and %s: %d lines each, identical: %v", rest[0].ID, rest[1].ID, strings.Count(a, "\n"), a == b)
	if a != b {
		t.Errorf("kernel tables differ:\n%s\n%s", a, b)
	}
	if before.Failed+after.Failed+third.Failed > 0 {
		t.Errorf("failed requests: %d %d %d", before.Failed, after.Failed, third.Failed)
	}
}

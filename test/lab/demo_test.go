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

	"github.com/ipvsman/ipvsman/test/failover"
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

// neighMAC is the client's neighbour entry for addr.
func neighMAC(t *testing.T, tp *topo.Topology, addr string) string {
	f := strings.Fields(tp.MustExec(topo.Client, "ip", "neigh", "show", addr, "dev", "eth0"))
	for i := range f {
		if f[i] == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return "(none)"
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

	step("4. The leader %s holds the VIP %s (from the topology's vip line) and announced it", lead.ID, topo.VIP)
	waitVIPOn(t, tp, lead.ID, topo.VIP+"/32")
	say("%s", c.MustCLI(nodes[0], "", "cluster", "status"))
	before := traffic(t, tp, labtool, "http://"+topo.VIP+"/", 50)
	say("50 requests: %s  (weights 3:2)", showSplit(before))

	step("5. Crash the leader %s: SIGKILL and its link cut in the same instant", lead.ID)
	poll := failover.StartPoller(t, tp, labtool, topo.Client, "http://"+topo.VIP+"/", 20*time.Millisecond, 250*time.Millisecond)
	if _, _, ok := poll.FirstOKAfter(time.Now(), time.Now().Add(30*time.Second)); !ok {
		t.Fatalf("poller: %s", poll.Health())
	}
	say("a poller in the client starts a request every 20 ms (250 ms timeout)")
	oldMAC := neighMAC(t, tp, topo.VIP)
	killedAt := time.Now()
	lead.Kill()
	tp.CutLink(lead.ID)
	// Until the link is down, the dead daemon's kernel table and address
	// still serve: count only requests started after that.
	cutDone := time.Now()
	back, server, ok := poll.FirstOKAfter(cutDone, time.Now().Add(60*time.Second))
	if !ok {
		t.Fatalf("no answer after the crash: %s", poll.Health())
	}
	recovery := back.Sub(killedAt)
	total, failed := poll.Count(cutDone, back)
	var rest []*harness.Node
	for _, n := range nodes {
		if n != lead {
			rest = append(rest, n)
		}
	}
	nl := leaderOf(t, c, rest)
	waitVIPOn(t, tp, nl.ID, topo.VIP+"/32")
	newMAC := neighMAC(t, tp, topo.VIP)
	say("first answer %d ms after the kill (from %s, through %s's kernel); %d of the %d requests started in between failed", recovery.Milliseconds(), server, nl.ID, failed, total)
	say("the client's ARP entry for %s: %s (%s) -> %s (%s), moved by gratuitous ARP, not by expiry", topo.VIP, oldMAC, lead.ID, newMAC, nl.ID)

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

	step("7. Planned move: ipvsman cluster transfer")
	planStart := time.Now()
	say("%s", strings.TrimSpace(c.MustCLI(rest[0], "", "cluster", "transfer")))
	other := rest[0]
	if other == nl {
		other = rest[1]
	}
	planBack, _, ok := poll.FirstOKAfter(planStart, time.Now().Add(60*time.Second))
	if !ok {
		t.Fatalf("no answer after the transfer: %s", poll.Health())
	}
	waitVIPOn(t, tp, other.ID, topo.VIP+"/32")
	planGap := failover.LongestOutage(poll.Results(planStart, planBack.Add(2*time.Second)))
	pTotal, pFailed := poll.Count(planStart, planBack.Add(2*time.Second))
	say("VIP now on %s; %d of %d requests failed; longest stretch without an answer %d ms", other.ID, pFailed, pTotal, planGap.Milliseconds())

	step("Figures")
	say("Raft timing here: heartbeat 1 s, lease 500 ms (the VM's CPU is emulated; make bench-failover measures the defaults on the host)")
	say("requests before the failover: %d ok, %d failed", before.OK, before.Failed)
	say("unplanned failover (SIGKILL + link cut): first answer after %d ms, %d requests failed", recovery.Milliseconds(), failed)
	say("requests after the failover:  %d ok, %d failed", after.OK, after.Failed)
	say("planned transfer: %d requests failed, longest gap %d ms", pFailed, planGap.Milliseconds())
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

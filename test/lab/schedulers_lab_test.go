//go:build lab

package lab

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// TestEverySchedulerAndServiceOptionInTheKernels: one service per
// scheduler Linux ships (fsm.Schedulers), with thresholds, one-packet
// scheduling and persistence, reaches every kernel that has the scheduler;
// one the kernel lacks is refused by the leader before the log, naming
// it, and the others are untouched. (Schedulers the kernel loads on first
// use, listed from its own modules: TestSchedulersLoadOnDemand.)
func TestEverySchedulerAndServiceOptionInTheKernels(t *testing.T) {
	requireKernelIPVS(t)
	tp := topo.Build(t, topo.Options{})
	c, nodes := labCluster(t, tp)
	var restore strings.Builder
	var missing []string
	for i, sched := range fsm.Schedulers {
		if _, err := os.Stat("/sys/module/ip_vs_" + sched); err != nil {
			// Not loaded yet is not the same as absent: ask modinfo.
			if _, err := tp.Exec(topo.Director(1), "modinfo", "ip_vs_"+sched); err != nil {
				missing = append(missing, sched)
				continue
			}
		}
		svc := fmt.Sprintf("%s:%d", topo.VIP, 1000+i)
		fmt.Fprintf(&restore, "-A -t %s -s %s -p 120\n", svc, sched)
		fmt.Fprintf(&restore, "-a -t %s -r %s -g -w 2 -x 50 -y 5\n", svc, topo.RealServerAddr(1))
		fmt.Fprintf(&restore, "-a -t %s -r %s -g -w 1\n", svc, topo.RealServerAddr(2))
	}
	fmt.Fprintf(&restore, "-A -u %s:53 -s rr -o\n-a -u %s:53 -r %s -g -w 1\n", topo.VIP, topo.VIP, topo.RealServerAddr(3))
	t.Logf("schedulers this kernel lacks: %v", missing)
	c.MustCLI(nodes[0], restore.String(), "-R")
	// ipvsadm -S never prints thresholds; ipvsman -S does (so that -R
	// restores them): compare without them, and check them with --thresholds.
	model := regexp.MustCompile(` -x \d+ -y \d+`).ReplaceAllString(c.MustCLI(nodes[1], "", "-S", "-n"), "")
	harness.Eventually(t, 60*time.Second, "every kernel holds every scheduler's service", func() (bool, string) {
		for _, n := range nodes {
			out, err := tp.Exec(n.ID, "ipvsadm", "-S", "-n")
			if err != nil || out != model {
				return false, fmt.Sprintf("%s:\n%s%v\nmodel:\n%s", n.ID, out, err, model)
			}
		}
		return true, ""
	})
	t.Logf("%d services with %d schedulers identical in 3 kernels", strings.Count(model, "-A "), len(fsm.Schedulers)-len(missing))
	th := tp.MustExec(nodes[2].ID, "ipvsadm", "-L", "-n", "--thresholds", "-t", fmt.Sprintf("%s:%d", topo.VIP, 1000))
	if !strings.Contains(th, "50         5") {
		t.Errorf("thresholds not in the kernel:\n%s", th)
	}
	if len(missing) == 0 {
		return
	}
	// A scheduler the kernel does not have: the leader refuses the write
	// (a replicated service no kernel can hold would fail for ever).
	r := c.CLI(nodes[0], "", "-A", "-t", topo.VIP+":999", "-s", missing[0])
	if r.Err == nil || !strings.Contains(r.Stderr, fmt.Sprintf("scheduler %q: this kernel (", missing[0])) {
		t.Errorf("scheduler %s the kernel lacks: %v\n%s", missing[0], r.Err, r.Stderr)
	}
	if out := c.MustCLI(nodes[1], "", "-S", "-n"); regexp.MustCompile(` -x \d+ -y \d+`).ReplaceAllString(out, "") != model {
		t.Errorf("the model changed after a refused write:\n%s", out)
	}
	if out := tp.MustExec(nodes[1].ID, "ipvsadm", "-S", "-n"); out != model {
		t.Errorf("the other services changed after a refused one:\n%s", out)
	}
}

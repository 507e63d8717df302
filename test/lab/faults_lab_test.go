//go:build lab

package lab

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/failover"
	"github.com/ipvsman/ipvsman/test/faults"
	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// TestKernelTablesUnderFaults is the fault suite's (make faults) promise
// for the kernel tables, with real IPVS: writes flow through all three
// directors while the leader is killed with SIGKILL and restarted, a
// follower's table is flushed by hand, and the leader is cut off silently
// and let back. After the heal every director's kernel table holds
// exactly the model's real servers, every acknowledged write among them,
// and no two directors held the VIP at once.
func TestKernelTablesUnderFaults(t *testing.T) {
	requireKernelIPVS(t)
	tp := topo.Build(t, topo.Options{})
	c, nodes := labCluster(t, tp)
	applyVIPs(t, c, nodes[0])
	svc := topo.VIP + ":80"
	c.MustCLI(nodes[0], "", "-A", "-t", svc, "-s", "rr")
	var ids, bases []string
	for _, n := range nodes {
		ids = append(ids, n.ID)
		bases = append(bases, c.BaseURL(n))
	}
	obs := failover.NewObserver(t, tp, topo.VIP+"/32", ids...)
	start := time.Now()
	hc := faults.ClientIn(t, tp.NS(topo.Client), c.ClientTLS())
	// Slower than on the host: three directors under emulation.
	w := faults.StartWriter(bases, c.Token(), hc, svc, 300*time.Millisecond)
	defer w.Stop()
	progress := func(more int, what string) {
		t.Helper()
		base := w.Count()
		harness.Eventually(t, 60*time.Second, fmt.Sprintf("%d more writes acknowledged %s", more, what), func() (bool, string) {
			st := w.Stats()
			return w.Count() >= base+more, fmt.Sprintf("%d since; last refusal %q, last unanswered %q", w.Count()-base, st.LastNo, st.LastErr)
		})
	}
	progress(3, "before the faults")

	lead := leaderOf(t, c, nodes)
	lead.Kill()
	obs.Crashed(lead.ID)
	rest := without(nodes, lead)
	c.Leader(t, rest[0], rest)
	progress(3, "with the leader "+lead.ID+" killed")
	lead.Start()
	obs.Revived(lead.ID)

	lead = leaderOf(t, c, nodes)
	follower := without(nodes, lead)[0]
	tp.MustExec(follower.ID, "ipvsadm", "-C")
	progress(3, "after flushing "+follower.ID+"'s table")

	tp.SilentCut(lead.ID)
	rest = without(nodes, lead)
	c.Leader(t, rest[0], rest)
	progress(3, "with "+lead.ID+" cut off")
	tp.SilentRestore(lead.ID)
	heal := time.Now()
	w.Stop()

	acked := w.Acked()
	var took time.Duration
	var final []string
	// Converged: every kernel, the leader's included, holds the model. The
	// leader applies a write before acknowledging it, so what the model
	// lacks then is lost, not late.
	harness.Eventually(t, 90*time.Second, "every kernel table equal to the model", func() (bool, string) {
		model := modelServers(t, c, nodes[0], svc)
		for _, n := range nodes {
			out, err := tp.Exec(n.ID, "ipvsadm", "-S", "-n")
			if err != nil {
				return false, fmt.Sprintf("%s: %v", n.ID, err)
			}
			if got := kernelServers(out, svc); !slices.Equal(got, model) {
				return false, fmt.Sprintf("%s's kernel has %d real servers, the model %d", n.ID, len(got), len(model))
			}
		}
		took = time.Since(heal)
		final = model
		return true, ""
	})
	lost := faults.Missing(acked, final)
	overlap, worst := obs.OverlapBetween(start, time.Now())
	st := w.Stats()
	t.Logf("%d writes acknowledged, %d refused, %d unanswered; all in every kernel table %.1f s after the heal; VIP overlap %s (worst %s)",
		len(acked), st.Refused, st.Unknown, took.Seconds(), overlap, worst)
	fmt.Printf("faults_lab: acknowledged %d, lost %d, vip_overlap_ms %d, converged_s %.1f\n", len(acked), len(lost), overlap.Milliseconds(), took.Seconds())
	if len(lost) > 0 {
		t.Errorf("%d acknowledged writes are missing from the converged model, e.g. %s", len(lost), lost[0])
	}
	if overlap > 0 {
		t.Errorf("two directors held the VIP at once for %s", overlap)
	}
}

// modelServers is the model's real servers of svc, through node's API.
func modelServers(t *testing.T, c *harness.Cluster, n *harness.Node, svc string) []string {
	t.Helper()
	return kernelServers(c.MustCLI(n, "", "-S", "-n"), svc)
}

// kernelServers picks svc's real servers out of ipvsadm -S -n output,
// sorted.
func kernelServers(save, svc string) []string {
	var out []string
	for _, l := range strings.Split(save, "\n") {
		if rest, ok := strings.CutPrefix(l, "-a -t "+svc+" -r "); ok {
			out = append(out, strings.Fields(rest)[0])
		}
	}
	slices.Sort(out)
	return out
}

func without(nodes []*harness.Node, not *harness.Node) []*harness.Node {
	var out []*harness.Node
	for _, n := range nodes {
		if n != not {
			out = append(out, n)
		}
	}
	return out
}

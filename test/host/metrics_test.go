package host

import (
	"fmt"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	prommodel "github.com/prometheus/common/model"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// scrape is one node's GET /metrics, parsed; nil when it failed.
type scrape map[string]*dto.MetricFamily

// scrapeNode fetches node's /metrics from the client namespace, over
// https with the cluster token, as Prometheus would (docs/metrics.md).
func scrapeNode(l *vipLab, n *harness.Node) (scrape, error) {
	args := l.c.Curl(n, "/metrics", true, "-sSf", "--max-time", "10")
	out, err := l.tp.Exec(topo.Client, args[0], args[1:]...)
	if err != nil {
		return nil, fmt.Errorf("%s /metrics: %w: %s", n.ID, err, out)
	}
	p := expfmt.NewTextParser(prommodel.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("%s /metrics: %w", n.ID, err)
	}
	return mfs, nil
}

// get is the value of the series of name with exactly these labels (a
// subset match would let a wrong label pass); ok false when absent.
func (s scrape) get(name string, labels ...string) (float64, bool) {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range s[name].GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, l := range m.GetLabel() {
			if want[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		if c := m.GetCounter(); c != nil {
			return c.GetValue(), true
		}
		return m.GetGauge().GetValue(), true
	}
	return 0, false
}

// metricsView checks, across every node's scrape, that leader alone leads,
// holds every VIP and says so; others follow and hold none. "" when all
// agree.
func metricsView(l *vipLab, leader *harness.Node, nodes []*harness.Node) (map[string]scrape, string) {
	all := map[string]scrape{}
	var bad []string
	for _, n := range nodes {
		s, err := scrapeNode(l, n)
		if err != nil {
			return nil, err.Error()
		}
		all[n.ID] = s
		isLead := n == leader
		wantState := map[bool]string{true: "Leader", false: "Follower"}[isLead]
		if v, _ := s.get("ipvsman_raft_state", "state", wantState); v != 1 {
			bad = append(bad, fmt.Sprintf("%s: ipvsman_raft_state{state=%q} %v", n.ID, wantState, v))
		}
		if v, ok := s.get("ipvsman_leader"); !ok || v != map[bool]float64{true: 1, false: 0}[isLead] {
			bad = append(bad, fmt.Sprintf("%s: ipvsman_leader %v", n.ID, v))
		}
		for _, vip := range l.vips {
			v, ok := s.get("ipvsman_vip_held", "vip", vip)
			if !ok || (v == 1) != isLead {
				bad = append(bad, fmt.Sprintf("%s: ipvsman_vip_held{vip=%q} %v (present %v)", n.ID, vip, v, ok))
			}
		}
		if v, _ := s.get("ipvsman_raft_servers", "suffrage", "voter"); v != 3 {
			bad = append(bad, fmt.Sprintf("%s: ipvsman_raft_servers{suffrage=voter} %v", n.ID, v))
		}
	}
	return all, strings.Join(bad, "; ")
}

// TestMetricsOfAThreeNodeCluster scrapes /metrics (with the token) of three
// --ipvs=off directors holding real VIPs in network namespaces: one leader
// by Raft state and by ipvsman_leader, the VIPs held on it alone, no IPVS
// series; a leadership transfer raises the failover counter on the new
// leader and moves ipvsman_vip_held with the addresses. Without the token
// /metrics answers 401; --metrics=off takes the route away (404).
func TestMetricsOfAThreeNodeCluster(t *testing.T) {
	l := newVIPLab(t)
	c, nodes := l.c, l.nodes
	lead := c.Leader(t, nodes[0], nodes)
	l.waitOwner(t, lead, others(nodes, lead)...)

	var view map[string]scrape
	harness.Eventually(t, 20*time.Second, "/metrics of every node: "+lead.ID+" leads and holds the VIPs", func() (bool, string) {
		v, bad := metricsView(l, lead, nodes)
		view = v
		return bad == "", bad
	})
	for _, n := range nodes {
		s := view[n.ID]
		if v, _ := s.get("ipvsman_info", "node", n.ID, "version", infoLabel(s, "version"), "protocol", infoLabel(s, "protocol"), "ipvs", "off"); v != 1 {
			t.Errorf("%s: ipvsman_info with ipvs=off and its own node name missing: %v", n.ID, s["ipvsman_info"])
		}
		// --ipvs=off: no kernel, so none of its series.
		for name := range s {
			if strings.HasPrefix(name, "node_ipvs_") || strings.HasPrefix(name, "ipvsman_service_") || strings.HasPrefix(name, "ipvsman_backend_") ||
				strings.HasPrefix(name, "ipvsman_kernel_") || strings.HasPrefix(name, "ipvsman_reconcile_") || strings.HasPrefix(name, "ipvsman_sync_") {
				t.Errorf("%s runs --ipvs=off but exports %s", n.ID, name)
			}
		}
		applied, _ := s.get("ipvsman_raft_applied_index")
		term, _ := s.get("ipvsman_raft_term")
		gained, _ := s.get("ipvsman_leader_gained_total")
		t.Logf("%s: applied index %v, term %v, leader_gained_total %v, go_goroutines present %v", n.ID, applied, term, gained, s["go_goroutines"] != nil)
		if applied == 0 || term == 0 {
			t.Errorf("%s: applied index %v, term %v", n.ID, applied, term)
		}
	}
	before := map[string]float64{}
	lost := map[string]float64{}
	for _, n := range nodes {
		before[n.ID], _ = view[n.ID].get("ipvsman_leader_gained_total")
		lost[n.ID], _ = view[n.ID].get("ipvsman_leader_lost_total")
	}
	if before[lead.ID] < 1 {
		t.Errorf("leader %s: ipvsman_leader_gained_total %v, want >= 1", lead.ID, before[lead.ID])
	}

	// A planned transfer: the failover counter rises on the new leader,
	// the loss counter on the old one, and the VIPs move in the metrics.
	next := others(nodes, lead)[0]
	out := c.MustCLI(lead, "", "cluster", "transfer", next.ID)
	if !strings.Contains(out, next.ID) {
		t.Errorf("transfer said %q", out)
	}
	l.waitOwner(t, next, others(nodes, next)...)
	harness.Eventually(t, 20*time.Second, "/metrics after the transfer: "+next.ID+" leads and holds the VIPs", func() (bool, string) {
		v, bad := metricsView(l, next, nodes)
		view = v
		return bad == "", bad
	})
	gained, _ := view[next.ID].get("ipvsman_leader_gained_total")
	lostOld, _ := view[lead.ID].get("ipvsman_leader_lost_total")
	t.Logf("transfer %s -> %s: %s leader_gained_total %v -> %v; %s leader_lost_total %v -> %v",
		lead.ID, next.ID, next.ID, before[next.ID], gained, lead.ID, lost[lead.ID], lostOld)
	if gained <= before[next.ID] {
		t.Errorf("%s: ipvsman_leader_gained_total %v after the transfer, was %v", next.ID, gained, before[next.ID])
	}
	if lostOld <= lost[lead.ID] {
		t.Errorf("%s: ipvsman_leader_lost_total %v after the transfer, was %v", lead.ID, lostOld, lost[lead.ID])
	}

	// /metrics needs a token like everything else.
	code := func(n *harness.Node, path string, token bool) string {
		args := l.c.Curl(n, path, token, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10")
		return l.tp.MustExec(topo.Client, args[0], args[1:]...)
	}
	for _, path := range []string{"/v1/status", "/metrics"} {
		if got := code(next, path, false); got != "401" {
			t.Errorf("GET %s without the token: %s, want 401", path, got)
		}
	}
	// --metrics=off: the route is gone.
	if err := lead.Stop(); err != nil {
		t.Fatal(err)
	}
	lead.Start("--metrics=off")
	if got := code(lead, "/metrics", true); got != "404" {
		t.Errorf("GET /metrics with --metrics=off: %s, want 404", got)
	}
	if got := code(next, "/metrics", true); got != "200" {
		t.Errorf("GET /metrics on %s: %s, want 200", next.ID, got)
	}
}

// infoLabel is a label of the scrape's ipvsman_info series ("" if none).
func infoLabel(s scrape, name string) string {
	for _, m := range s["ipvsman_info"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
	}
	return ""
}

//go:build lab

package lab

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// kernelCounters are ipvsadm --stats' five totals of one service or real
// server, in ipvsadm's column order.
type kernelCounters [5]uint64

var counterNames = [5]string{"connections", "incoming_packets", "outgoing_packets", "incoming_bytes", "outgoing_bytes"}

// promScrape is one GET /metrics, parsed.
type promScrape map[string]*dto.MetricFamily

// scrapeMetrics fetches node's /metrics from the client namespace, with
// the cluster token and CA, as Prometheus would (docs/metrics.md).
func scrapeMetrics(t *testing.T, c *harness.Cluster, tp *topo.Topology, node *harness.Node) promScrape {
	t.Helper()
	args := c.Curl(node, "/metrics", true, "-sSf", "--max-time", "20")
	out := tp.MustExec(topo.Client, args[0], args[1:]...)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(out))
	if err != nil {
		t.Fatalf("%s /metrics: %v\n%s", node.ID, err, out)
	}
	return mfs
}

// value is the one series of name whose labels include want; ok false if
// there is none.
func (s promScrape) value(name string, want map[string]string) (float64, bool) {
	mf := s[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// counters are the five ipvsman_<kind>_…_total series of a service
// (kind "service") or real server ("backend").
func (s promScrape) counters(t *testing.T, kind string, labels map[string]string) kernelCounters {
	t.Helper()
	var c kernelCounters
	for i, n := range counterNames {
		v, ok := s.value("ipvsman_"+kind+"_"+n+"_total", labels)
		if !ok || v != math.Trunc(v) || v < 0 {
			t.Fatalf("ipvsman_%s_%s_total%v: %v (present: %v)", kind, n, labels, v, ok)
		}
		c[i] = uint64(v)
	}
	return c
}

// ipvsadmStats parses `ipvsadm -L -n --stats --exact` into counters keyed
// as the metrics' labels are: "tcp:10.0.0.10:80" and
// "tcp:10.0.0.10:80/10.0.0.21:80".
func ipvsadmStats(t *testing.T, out string) map[string]kernelCounters {
	t.Helper()
	got := map[string]kernelCounters{}
	var svc string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 7 {
			continue // the headers
		}
		var key string
		switch f[0] {
		case "TCP", "UDP":
			svc = strings.ToLower(f[0]) + ":" + f[1]
			key = svc
		case "->":
			key = svc + "/" + f[1]
		default:
			continue
		}
		var c kernelCounters
		for i := range c {
			v, err := strconv.ParseUint(f[2+i], 10, 64)
			if err != nil {
				t.Fatalf("ipvsadm --stats --exact line %q: %v", line, err)
			}
			c[i] = v
		}
		got[key] = c
	}
	return got
}

// procTotals parses /proc/net/ip_vs_stats' totals (hexadecimal).
func procTotals(t *testing.T, out string) kernelCounters {
	t.Helper()
	lines := strings.Split(out, "\n")
	var c kernelCounters
	if len(lines) < 3 || len(strings.Fields(lines[2])) != 5 {
		t.Fatalf("/proc/net/ip_vs_stats: %q", out)
	}
	for i, x := range strings.Fields(lines[2]) {
		v, err := strconv.ParseUint(x, 16, 64)
		if err != nil {
			t.Fatalf("/proc/net/ip_vs_stats: %q: %v", x, err)
		}
		c[i] = v
	}
	return c
}

func (s promScrape) nodeTotals(t *testing.T) kernelCounters {
	t.Helper()
	var c kernelCounters
	for i, n := range counterNames {
		v, ok := s.value("node_ipvs_"+n+"_total", nil)
		if !ok {
			t.Fatalf("node_ipvs_%s_total missing", n)
		}
		c[i] = uint64(v)
	}
	return c
}

// refreshScript is one refresh, run in the director's namespace by one
// shell (each process started under emulation costs a fraction of a
// second): scrape, ipvsadm, the totals, scrape.
// $1 is the API's base URL, $2 the cut line, $3 the token, $4 the CA
// (empty without TLS).
const refreshScript = `set -e
curl -sSf --max-time 20 -H "Authorization: Bearer $3" ${4:+--cacert "$4"} "$1/metrics"; echo "$2"
ipvsadm -L -n --stats --exact; echo "$2"
cat /proc/net/ip_vs_stats; echo "$2"
curl -sSf --max-time 20 -H "Authorization: Bearer $3" ${4:+--cacert "$4"} "$1/metrics"`

const refreshCut = "--8<-- refresh --8<--"

// refresh runs one refresh on node (its API address, its kernel).
func refresh(t *testing.T, c *harness.Cluster, tp *topo.Topology, node *harness.Node) (promScrape, map[string]kernelCounters, kernelCounters, promScrape) {
	t.Helper()
	out := tp.MustExec(node.ID, "sh", "-c", refreshScript, "refresh", c.BaseURL(node), refreshCut, c.Token(), c.CAFile())
	parts := strings.Split(out, refreshCut+"\n")
	if len(parts) != 4 {
		t.Fatalf("refresh on %s: %d parts, want 4:\n%s", node.ID, len(parts), out)
	}
	parse := func(text string) promScrape {
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
		if err != nil {
			t.Fatalf("%s /metrics: %v\n%s", node.ID, err, text)
		}
		return mfs
	}
	return parse(parts[0]), ipvsadmStats(t, parts[1]), procTotals(t, parts[2]), parse(parts[3])
}

// sandwiched reports which counters are not a <= k <= b.
func sandwiched(a, k, b kernelCounters) string {
	var bad []string
	for i := range k {
		if !(a[i] <= k[i] && k[i] <= b[i]) {
			bad = append(bad, fmt.Sprintf("%s: scrape %d, kernel %d, scrape %d", counterNames[i], a[i], k[i], b[i]))
		}
	}
	return strings.Join(bad, "; ")
}

// TestMetricsMatchTheKernel: with traffic flowing through a direct-routing
// and a masquerading service (two real servers each), the leader's
// /metrics counters rise and agree with the kernel within one refresh.
// One refresh: scrape, run `ipvsadm -L -n --stats --exact` (and read
// /proc/net/ip_vs_stats), scrape again. The collector reads the kernel live
// at every scrape (no cache), so every counter of the first scrape is <=
// ipvsadm's, which is <= the second scrape's.
func TestMetricsMatchTheKernel(t *testing.T) {
	requireKernelIPVS(t)
	tp := topo.Build(t, topo.Options{})
	labtool := topo.BuildLabtool(t)
	tp.StartRealServers(labtool)
	c, nodes := labCluster(t, tp)
	// dir carries the traffic: the VIP is put on it by hand (the model has
	// no VIPs), so it stays there whoever leads later.
	dir := leaderOf(t, c, nodes)
	tp.AddAddr(dir.ID, topo.VIP+"/24", "eth0")
	tp.AddAddr(dir.ID, topo.Gateway+"/24", "eth0")
	dr, nat := topo.VIP+":80", topo.VIP+":8080"
	for _, args := range [][]string{
		{"-A", "-t", dr, "-s", "rr"},
		{"-a", "-t", dr, "-r", topo.RealServerAddr(1), "-g"},
		{"-a", "-t", dr, "-r", topo.RealServerAddr(2), "-g"},
		{"-A", "-t", nat, "-s", "rr"},
		{"-a", "-t", nat, "-r", topo.NATServerAddr(1) + ":80", "-m"},
		{"-a", "-t", nat, "-r", topo.NATServerAddr(2) + ":80", "-m"},
	} {
		c.MustCLI(nodes[1], "", args...)
	}
	harness.Eventually(t, 60*time.Second, "both services in "+dir.ID+"'s kernel", func() (bool, string) {
		out, err := tp.Exec(dir.ID, "ipvsadm", "-S", "-n")
		return err == nil && strings.Count(out, "-a -t ") == 4, out
	})

	svcDR, svcNAT := "tcp:"+dr, "tcp:"+nat
	keys := []string{svcDR, svcDR + "/" + topo.RealServerAddr(1) + ":80", svcDR + "/" + topo.RealServerAddr(2) + ":80",
		svcNAT, svcNAT + "/" + topo.NATServerAddr(1) + ":80", svcNAT + "/" + topo.NATServerAddr(2) + ":80"}
	labelsOf := func(key string) (string, map[string]string) {
		svc, server, ok := strings.Cut(key, "/")
		if !ok {
			return "service", map[string]string{"service": svc}
		}
		return "backend", map[string]string{"service": svc, "server": server}
	}

	// Traffic: one new connection per request, through both services,
	// until the end of the test.
	var clients []*topo.Proc
	for _, u := range []string{"http://" + dr + "/", "http://" + nat + "/"} {
		clients = append(clients, tp.Start(topo.Client, labtool, "http", "--url", u, "--count", "100000", "--interval", "20ms", "--timeout", "2s"))
	}
	defer func() {
		for _, p := range clients {
			p.Stop()
			if err := p.Wait(30 * time.Second); err != nil {
				t.Errorf("%s: %v", p.Name, err)
			}
			var s split
			if err := json.Unmarshal([]byte(strings.TrimSpace(p.Output())), &s); err != nil {
				t.Errorf("%s output %q: %v", p.Name, p.Output(), err)
				continue
			}
			t.Logf("traffic %s: %d ok, %d failed, by server %v", p.Name, s.OK, s.Failed, s.ByServer)
			if s.OK == 0 || s.Failed > s.OK/10 {
				t.Errorf("traffic %s: %+v", p.Name, s)
			}
		}
	}()

	var prev promScrape
	const rounds = 2
	for round := 1; round <= rounds; round++ {
		// Counters rise: wait until both services have new connections
		// since the last round (the first: any at all).
		harness.Eventually(t, 60*time.Second, fmt.Sprintf("round %d: new connections on both services", round), func() (bool, string) {
			s := scrapeMetrics(t, c, tp, dir)
			for _, svc := range []string{svcDR, svcNAT} {
				now := s.counters(t, "service", map[string]string{"service": svc})
				var before kernelCounters
				if prev != nil {
					before = prev.counters(t, "service", map[string]string{"service": svc})
				}
				if now[0] <= before[0] || now[1] <= before[1] {
					return false, fmt.Sprintf("%s: %v, before %v", svc, now, before)
				}
			}
			return true, ""
		})
		start := time.Now()
		s1, kernel, proc, s2 := refresh(t, c, tp, dir)
		took := time.Since(start)
		same := 0 // counters equal in both scrapes: the kernel's own refresh had not ticked
		for _, k := range keys {
			kind, labels := labelsOf(k)
			a, b := s1.counters(t, kind, labels), s2.counters(t, kind, labels)
			kc, ok := kernel[k]
			if !ok {
				t.Fatalf("ipvsadm --stats has no %s", k)
			}
			for i := range a {
				if a[i] == b[i] {
					same++
				}
			}
			if bad := sandwiched(a, kc, b); bad != "" {
				t.Errorf("round %d: %s not within one refresh: %s", round, k, bad)
			}
			if round == 1 || round == rounds {
				t.Logf("round %d %-32s scrape %v <= ipvsadm %v <= scrape %v", round, k, a, kc, b)
			}
		}
		if bad := sandwiched(s1.nodeTotals(t), proc, s2.nodeTotals(t)); bad != "" {
			t.Errorf("round %d: node_ipvs_*_total not within one refresh of /proc/net/ip_vs_stats: %s", round, bad)
		}
		if v, _ := s2.value("ipvsman_kernel_scrape_error", nil); v != 0 {
			t.Errorf("round %d: ipvsman_kernel_scrape_error %v", round, v)
		}
		// Direct routing: replies bypass the director; masquerading: they
		// come back through it.
		if k := kernel[svcDR]; k[2] != 0 || k[4] != 0 {
			t.Errorf("round %d: the direct-routing service has outgoing counters %v", round, k)
		}
		if k := kernel[svcNAT]; k[2] == 0 || k[4] == 0 {
			t.Errorf("round %d: the masquerading service has no outgoing counters %v", round, k)
		}
		scrapeTime, _ := s2.value("ipvsman_kernel_scrape_duration_seconds", nil)
		t.Logf("round %d: one refresh (scrape, ipvsadm, /proc, scrape in one shell) took %d ms; the kernel read inside a scrape %.1f ms; %d of %d counters unchanged between the two scrapes",
			round, took.Milliseconds(), scrapeTime*1000, same, len(keys)*len(counterNames))
		prev = s2
	}

	consoleShowsKernelRates(t, c, dir)

	// node_exporter's backend series: the weight and connection gauges of
	// each real server, under its labels.
	for i := 1; i <= 2; i++ {
		l := map[string]string{"local_address": topo.VIP, "local_port": "80", "proto": "TCP", "local_mark": "", "remote_address": topo.RealServerAddr(i), "remote_port": "80"}
		if w, ok := prev.value("node_ipvs_backend_weight", l); !ok || w != 1 {
			t.Errorf("node_ipvs_backend_weight%v: %v %v, want 1", l, w, ok)
		}
		if _, ok := prev.value("node_ipvs_backend_connections_inactive", l); !ok {
			t.Errorf("node_ipvs_backend_connections_inactive%v missing", l)
		}
	}
	if n, _ := prev.value("ipvsman_reconcile_passes_total", map[string]string{"result": "ok"}); n < 1 {
		t.Errorf("ipvsman_reconcile_passes_total{result=ok} %v", n)
	}

	// Raft and sync across the cluster. Under emulation with a loaded host
	// the lead may have moved during the traffic (the VIP, placed by hand,
	// stayed on dir): whoever leads now says so, alone, and runs the sync
	// master.
	var leader *harness.Node
	scrapes := map[string]promScrape{}
	harness.Eventually(t, 60*time.Second, "one node reports ipvsman_leader 1 and runs the sync master", func() (bool, string) {
		leader = nil
		var why []string
		for _, n := range nodes {
			s := scrapeMetrics(t, c, tp, n)
			scrapes[n.ID] = s
			l, _ := s.value("ipvsman_leader", nil)
			m, _ := s.value("ipvsman_sync_daemon_running", map[string]string{"role": "master"})
			b, _ := s.value("ipvsman_sync_daemon_running", map[string]string{"role": "backup"})
			why = append(why, fmt.Sprintf("%s leader %v master %v backup %v", n.ID, l, m, b))
			if b != 1 {
				return false, strings.Join(why, "; ")
			}
			if l == 1 {
				if leader != nil || m != 1 {
					return false, strings.Join(why, "; ")
				}
				leader = n
			}
		}
		return leader != nil, strings.Join(why, "; ")
	})
	for _, n := range nodes {
		g, _ := scrapes[n.ID].value("ipvsman_leader_gained_total", nil)
		term, _ := scrapes[n.ID].value("ipvsman_raft_term", nil)
		t.Logf("%s: leader %v, term %v, leader_gained_total %v", n.ID, n == leader, term, g)
	}
	// A node that carried no traffic: the same table, its own kernel's
	// counters (what connection sync adds, if anything, is logged).
	for _, n := range nodes {
		if n == dir {
			continue
		}
		for _, svc := range []string{svcDR, svcNAT} {
			t.Logf("%s (no traffic): %s counters %v (%s's %v)", n.ID, svc, scrapes[n.ID].counters(t, "service", map[string]string{"service": svc}),
				dir.ID, prev.counters(t, "service", map[string]string{"service": svc}))
		}
		break
	}
	t.Logf("%s /metrics: %d families; ipvsman_reconcile_duration_seconds count %d", dir.ID, len(prev),
		prev["ipvsman_reconcile_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount())
}

// consoleShowsKernelRates runs `ipvsman top` in tmux against dir while the
// traffic flows: the real servers' lines show dir's kernel counters and
// non-zero connections/s and bytes/s, computed from two kernel reads.
func consoleShowsKernelRates(t *testing.T, c *harness.Cluster, dir *harness.Node) {
	t.Helper()
	x := c.StartConsole(t, dir)
	x.WaitScreen("the console on "+dir.ID, "kernel view of "+dir.ID+": counters of")
	var screen string
	harness.Eventually(t, 60*time.Second, "ipvsman top: conn/s and bytes/s of every real server", func() (bool, string) {
		screen = x.Screen()
		for _, rs := range []string{topo.RealServerAddr(1) + ":80", topo.NATServerAddr(1) + ":80", topo.RealServerAddr(2) + ":80", topo.NATServerAddr(2) + ":80"} {
			// The table line (ADDR FWD WGT …), not the detail line of the
			// server under the cursor ("ADDR of SERVICE: kernel weight …").
			var f []string
			for _, l := range strings.Split(screen, "\n") {
				if g := strings.Fields(strings.TrimPrefix(l, ">")); f == nil && len(g) > 4 && g[0] == rs && (g[1] == "Route" || g[1] == "Masq") {
					f = g
				}
			}
			// ... ACT INACT CONN/S BYTES/S: the rates are the last two.
			if len(f) < 4 || !nonZeroRate(f[len(f)-2]) || !nonZeroRate(f[len(f)-1]) {
				return false, fmt.Sprintf("%s: %q", rs, f)
			}
		}
		return true, ""
	})
	t.Logf("ipvsman top on %s with traffic flowing:\n%s", dir.ID, screen)
	x.Press("q")
	x.WaitScreen("the console exits", "console exited: 0")
}

// nonZeroRate: the console prints rates as "12", "3.4K", "1.2M"; "-" and
// "0" are not rates.
func nonZeroRate(s string) bool {
	v, err := strconv.ParseFloat(strings.TrimRight(s, "KMGTP"), 64)
	return err == nil && v > 0
}

package metrics

import (
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/director/health"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
	"github.com/ipvsman/ipvsman/vip"
)

// big is past 32 bits, exact in a float64: the counters must be the
// kernel's 64-bit ones.
const big = 1<<40 + 7

func key(s string) fsm.ServiceKey {
	k, err := fsm.ParseServiceKey(s)
	if err != nil {
		panic(err)
	}
	return k
}

func dest(ap string, w int) director.Dest {
	a := netip.MustParseAddrPort(ap)
	return director.Dest{Address: a.Addr(), Port: a.Port(), Forward: fsm.DirectRoute, Weight: w}
}

// fakeKernel is a table of a DR service, a fwmark service and an IPv6
// service, with their counters.
func fakeKernel() (director.Table, ipvsadm.Stats, error) {
	t := director.Table{
		"tcp:10.0.0.10:80": {Key: key("tcp:10.0.0.10:80"), Scheduler: "wrr", Dests: map[string]director.Dest{
			"10.0.0.21:80": dest("10.0.0.21:80", 3), "10.0.0.22:80": dest("10.0.0.22:80", 1)}},
		"fwmark:7":          {Key: key("fwmark:7"), Scheduler: "lc", Dests: map[string]director.Dest{"10.0.0.23:0": dest("10.0.0.23:0", 4)}},
		"tcp:[fd00::10]:80": {Key: key("tcp:[fd00::10]:80"), Scheduler: "rr", Dests: map[string]director.Dest{"[fd00::21]:80": dest("[fd00::21]:80", 1)}},
	}
	st := ipvsadm.Stats{
		"tcp:10.0.0.10:80":                {ActiveConns: 3, InactConns: 5, Conns: big, InPkts: 200, OutPkts: 0, InBytes: 30000, OutBytes: 0},
		"tcp:10.0.0.10:80/10.0.0.21:80":   {ActiveConns: 2, InactConns: 4, PersistConns: 1, Conns: big - 1, InPkts: 150, InBytes: 20000},
		"tcp:10.0.0.10:80/10.0.0.22:80":   {ActiveConns: 1, InactConns: 1, Conns: 1, InPkts: 50, InBytes: 10000},
		"fwmark:7":                        {Conns: 9, InPkts: 90, OutPkts: 80, InBytes: 900, OutBytes: 800},
		"fwmark:7/10.0.0.23:0":            {Conns: 9, InPkts: 90, OutPkts: 80, InBytes: 900, OutBytes: 800},
		"tcp:[fd00::10]:80":               {Conns: 2},
		"tcp:[fd00::10]:80/[fd00::21]:80": {Conns: 2, ActiveConns: 1},
	}
	return t, st, nil
}

func fakeState() *fsm.State {
	s := fsm.NewState()
	check := &fsm.HealthCheck{Type: "http"}
	rs := func(ap string) *fsm.RealServer {
		a := netip.MustParseAddrPort(ap)
		return &fsm.RealServer{Address: a.Addr(), Port: a.Port(), Forward: fsm.DirectRoute, Weight: 1, State: fsm.Active}
	}
	s.Config.Services["tcp:10.0.0.10:80"] = &fsm.Service{Key: key("tcp:10.0.0.10:80"), Scheduler: "wrr", Check: check,
		Servers: map[string]*fsm.RealServer{"10.0.0.21:80": rs("10.0.0.21:80"), "10.0.0.22:80": rs("10.0.0.22:80"), "10.0.0.24:80": rs("10.0.0.24:80")}}
	unchecked := rs("10.0.0.23:0")
	withOwn := rs("10.0.0.25:0")
	withOwn.Check = &fsm.HealthCheck{Type: "tcp"}
	s.Config.Services["fwmark:7"] = &fsm.Service{Key: key("fwmark:7"), Scheduler: "lc",
		Servers: map[string]*fsm.RealServer{"10.0.0.23:0": unchecked, "10.0.0.25:0": withOwn}}
	s.Verdicts["tcp:10.0.0.10:80/10.0.0.21:80"] = fsm.Verdict{Health: fsm.HealthUp}
	s.Verdicts["tcp:10.0.0.10:80/10.0.0.22:80"] = fsm.Verdict{Health: fsm.HealthDown}
	// 10.0.0.24:80: checked, no verdict yet (unknown); 10.0.0.23:0: not
	// checked (no series); 10.0.0.25:0: its own check, unknown.
	s.Config.VIPs["10.0.0.10/32"] = fsm.VIP{Prefix: netip.MustParsePrefix("10.0.0.10/32"), Interface: "eth0"}
	s.Config.VIPs["10.1.0.1/24"] = fsm.VIP{Prefix: netip.MustParsePrefix("10.1.0.1/24"), Interface: "eth0"}
	return s
}

func fakeSources() Sources {
	st := fakeState()
	return Sources{
		Node: "d1", Version: "0.8.0-test",
		Status: func() cluster.Status {
			return cluster.Status{State: "Leader", Term: 3, AppliedIndex: 42, CommitIndex: 42, LastLogIndex: 43, ConfigVersion: 7, LastContact: "0",
				Servers: []cluster.ServerStatus{{ID: "d1", Suffrage: "voter"}, {ID: "d2", Suffrage: "voter"}, {ID: "d3", Suffrage: "nonvoter"}}}
		},
		Model:  func(f func(*fsm.State, uint64)) { f(st, 42) },
		Kernel: fakeKernel,
		Totals: func() (Totals, error) {
			return Totals{Conns: big + 100, InPkts: 1000, OutPkts: 80, InBytes: 99999, OutBytes: 800}, nil
		},
		Health: func() []health.Status {
			return []health.Status{
				{Service: "tcp:10.0.0.10:80", Server: "10.0.0.21:80", Type: "http", OK: true, Latency: 1500 * time.Microsecond, Checks: 12},
				{Service: "tcp:10.0.0.10:80", Server: "10.0.0.22:80", Type: "http", OK: false, Latency: time.Second, Checks: 11},
				{Service: "tcp:10.0.0.10:80", Server: "10.0.0.24:80", Type: "http"}, // not run yet
			}
		},
		VIPs: func() vip.Stats {
			return vip.Stats{Held: []string{"10.0.0.10/32 on eth0"}, Adds: 2, Removes: 1, Announcements: 16, AnnounceErrors: 1, Errors: 0}
		},
		Sync: func() director.SyncReport {
			return director.SyncReport{Threads: []director.SyncThread{{State: "backup", SyncID: 9}, {State: "master", SyncID: 9}}}
		},
	}
}

func compare(t *testing.T, m *Metrics, want string, names ...string) {
	t.Helper()
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

func count(t *testing.T, m *Metrics, names ...string) int {
	t.Helper()
	n, err := testutil.GatherAndCount(m.Registry(), names...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNodeExporterSeries(t *testing.T) {
	m := New(fakeSources())
	compare(t, m, `
# HELP node_ipvs_connections_total The total number of connections made.
# TYPE node_ipvs_connections_total counter
node_ipvs_connections_total 1.099511627883e+12
# HELP node_ipvs_outgoing_bytes_total The total amount of outgoing data.
# TYPE node_ipvs_outgoing_bytes_total counter
node_ipvs_outgoing_bytes_total 800
# HELP node_ipvs_backend_weight The current backend weight by local and remote address.
# TYPE node_ipvs_backend_weight gauge
node_ipvs_backend_weight{local_address="",local_mark="00000007",local_port="0",proto="FWM",remote_address="10.0.0.23",remote_port="0"} 4
node_ipvs_backend_weight{local_address="10.0.0.10",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.21",remote_port="80"} 3
node_ipvs_backend_weight{local_address="10.0.0.10",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.22",remote_port="80"} 1
node_ipvs_backend_weight{local_address="fd00::10",local_mark="",local_port="80",proto="TCP",remote_address="fd00::21",remote_port="80"} 1
# HELP node_ipvs_backend_connections_active The current active connections by local and remote address.
# TYPE node_ipvs_backend_connections_active gauge
node_ipvs_backend_connections_active{local_address="",local_mark="00000007",local_port="0",proto="FWM",remote_address="10.0.0.23",remote_port="0"} 0
node_ipvs_backend_connections_active{local_address="10.0.0.10",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.21",remote_port="80"} 2
node_ipvs_backend_connections_active{local_address="10.0.0.10",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.22",remote_port="80"} 1
node_ipvs_backend_connections_active{local_address="fd00::10",local_mark="",local_port="80",proto="TCP",remote_address="fd00::21",remote_port="80"} 1
`, "node_ipvs_connections_total", "node_ipvs_outgoing_bytes_total", "node_ipvs_backend_weight", "node_ipvs_backend_connections_active")
	if n := count(t, m, "node_ipvs_incoming_packets_total", "node_ipvs_outgoing_packets_total", "node_ipvs_incoming_bytes_total", "node_ipvs_backend_connections_inactive"); n != 3+4 {
		t.Errorf("the other node_ipvs series: %d, want 3 totals and 4 backends", n)
	}
}

func TestServiceAndBackendCounters(t *testing.T) {
	m := New(fakeSources())
	compare(t, m, `
# HELP ipvsman_service_connections_total Connections scheduled to the virtual service, from the kernel (64-bit), as ipvsadm -L -n --stats --exact shows it.
# TYPE ipvsman_service_connections_total counter
ipvsman_service_connections_total{service="fwmark:7"} 9
ipvsman_service_connections_total{service="tcp:10.0.0.10:80"} 1.099511627783e+12
ipvsman_service_connections_total{service="tcp:[fd00::10]:80"} 2
# HELP ipvsman_backend_incoming_bytes_total Bytes in of the real server, from the kernel (64-bit), as ipvsadm -L -n --stats --exact shows it.
# TYPE ipvsman_backend_incoming_bytes_total counter
ipvsman_backend_incoming_bytes_total{server="10.0.0.21:80",service="tcp:10.0.0.10:80"} 20000
ipvsman_backend_incoming_bytes_total{server="10.0.0.22:80",service="tcp:10.0.0.10:80"} 10000
ipvsman_backend_incoming_bytes_total{server="10.0.0.23:0",service="fwmark:7"} 900
ipvsman_backend_incoming_bytes_total{server="[fd00::21]:80",service="tcp:[fd00::10]:80"} 0
# HELP ipvsman_backend_connections_persistent Persistence templates the kernel holds for the real server (ipvsadm -L --persistent-conn).
# TYPE ipvsman_backend_connections_persistent gauge
ipvsman_backend_connections_persistent{server="10.0.0.21:80",service="tcp:10.0.0.10:80"} 1
ipvsman_backend_connections_persistent{server="10.0.0.22:80",service="tcp:10.0.0.10:80"} 0
ipvsman_backend_connections_persistent{server="10.0.0.23:0",service="fwmark:7"} 0
ipvsman_backend_connections_persistent{server="[fd00::21]:80",service="tcp:[fd00::10]:80"} 0
# HELP ipvsman_kernel_scrape_error 1 when this scrape could not read the kernel's IPVS table or totals (the IPVS series are then absent), else 0.
# TYPE ipvsman_kernel_scrape_error gauge
ipvsman_kernel_scrape_error 0
`, "ipvsman_service_connections_total", "ipvsman_backend_incoming_bytes_total", "ipvsman_backend_connections_persistent", "ipvsman_kernel_scrape_error")
	for _, f := range []string{"connections", "incoming_packets", "outgoing_packets", "incoming_bytes", "outgoing_bytes"} {
		if n := count(t, m, "ipvsman_service_"+f+"_total"); n != 3 {
			t.Errorf("ipvsman_service_%s_total: %d series, want 3", f, n)
		}
		if n := count(t, m, "ipvsman_backend_"+f+"_total"); n != 4 {
			t.Errorf("ipvsman_backend_%s_total: %d series, want 4", f, n)
		}
	}
}

func TestClusterHealthVIPsAndSync(t *testing.T) {
	m := New(fakeSources())
	compare(t, m, `
# HELP ipvsman_raft_state 1 for this node's Raft state, 0 for the others.
# TYPE ipvsman_raft_state gauge
ipvsman_raft_state{state="Candidate"} 0
ipvsman_raft_state{state="Follower"} 0
ipvsman_raft_state{state="Leader"} 1
ipvsman_raft_state{state="Shutdown"} 0
# HELP ipvsman_leader 1 when this node is the Raft leader (it then holds the VIPs and runs the health checks), else 0.
# TYPE ipvsman_leader gauge
ipvsman_leader 1
# HELP ipvsman_raft_applied_index Raft index of the last log entry this node applied to its state.
# TYPE ipvsman_raft_applied_index gauge
ipvsman_raft_applied_index 42
# HELP ipvsman_raft_term This node's current Raft term.
# TYPE ipvsman_raft_term gauge
ipvsman_raft_term 3
# HELP ipvsman_raft_last_contact_seconds Time since this node last heard from the leader (0 on the leader; absent before the first contact).
# TYPE ipvsman_raft_last_contact_seconds gauge
ipvsman_raft_last_contact_seconds 0
# HELP ipvsman_raft_servers Members of the Raft configuration as this node sees it, by suffrage.
# TYPE ipvsman_raft_servers gauge
ipvsman_raft_servers{suffrage="nonvoter"} 1
ipvsman_raft_servers{suffrage="voter"} 2
# HELP ipvsman_health_up 1 when the replicated verdict of the real server's health checks is up, 0 when down or unknown.
# TYPE ipvsman_health_up gauge
ipvsman_health_up{server="10.0.0.21:80",service="tcp:10.0.0.10:80"} 1
ipvsman_health_up{server="10.0.0.22:80",service="tcp:10.0.0.10:80"} 0
ipvsman_health_up{server="10.0.0.24:80",service="tcp:10.0.0.10:80"} 0
ipvsman_health_up{server="10.0.0.25:0",service="fwmark:7"} 0
# HELP ipvsman_health_check_latency_seconds Latency of the real server's last health check (leader only: the checks run there).
# TYPE ipvsman_health_check_latency_seconds gauge
ipvsman_health_check_latency_seconds{server="10.0.0.21:80",service="tcp:10.0.0.10:80",type="http"} 0.0015
ipvsman_health_check_latency_seconds{server="10.0.0.22:80",service="tcp:10.0.0.10:80",type="http"} 1
# HELP ipvsman_health_checks_total Health checks run against the real server since this node became leader (leader only).
# TYPE ipvsman_health_checks_total counter
ipvsman_health_checks_total{server="10.0.0.21:80",service="tcp:10.0.0.10:80",type="http"} 12
ipvsman_health_checks_total{server="10.0.0.22:80",service="tcp:10.0.0.10:80",type="http"} 11
# HELP ipvsman_vip_held 1 when this node holds the VIP on its interface, 0 when not; one series per VIP of the model.
# TYPE ipvsman_vip_held gauge
ipvsman_vip_held{vip="10.0.0.10/32"} 1
ipvsman_vip_held{vip="10.1.0.1/24"} 0
# HELP ipvsman_vip_announcements_total Announcement rounds sent for held VIPs (gratuitous ARP request and reply, or an unsolicited neighbour advertisement).
# TYPE ipvsman_vip_announcements_total counter
ipvsman_vip_announcements_total 16
# HELP ipvsman_sync_daemon_running 1 when the kernel's connection-sync thread of the role runs on this node, else 0.
# TYPE ipvsman_sync_daemon_running gauge
ipvsman_sync_daemon_running{role="backup"} 1
ipvsman_sync_daemon_running{role="master"} 1
# HELP ipvsman_sync_id Sync ID of this node's running sync threads (absent when none runs).
# TYPE ipvsman_sync_id gauge
ipvsman_sync_id 9
# HELP ipvsman_info Always 1: this node's name, release, command protocol and --ipvs mode.
# TYPE ipvsman_info gauge
ipvsman_info{ipvs="on",node="d1",protocol="`+protocol()+`",version="0.8.0-test"} 1
`, "ipvsman_raft_state", "ipvsman_leader", "ipvsman_raft_applied_index", "ipvsman_raft_term", "ipvsman_raft_last_contact_seconds",
		"ipvsman_raft_servers", "ipvsman_health_up", "ipvsman_health_check_latency_seconds", "ipvsman_health_checks_total",
		"ipvsman_vip_held", "ipvsman_vip_announcements_total", "ipvsman_sync_daemon_running", "ipvsman_sync_id", "ipvsman_info")
	// The verdict state set: one series per verdict, 1 for the current.
	compare(t, m, `
# HELP ipvsman_health_verdict 1 for the real server's replicated health verdict (up, down, unknown), 0 for the others.
# TYPE ipvsman_health_verdict gauge
ipvsman_health_verdict{server="10.0.0.21:80",service="tcp:10.0.0.10:80",verdict="down"} 0
ipvsman_health_verdict{server="10.0.0.21:80",service="tcp:10.0.0.10:80",verdict="unknown"} 0
ipvsman_health_verdict{server="10.0.0.21:80",service="tcp:10.0.0.10:80",verdict="up"} 1
ipvsman_health_verdict{server="10.0.0.22:80",service="tcp:10.0.0.10:80",verdict="down"} 1
ipvsman_health_verdict{server="10.0.0.22:80",service="tcp:10.0.0.10:80",verdict="unknown"} 0
ipvsman_health_verdict{server="10.0.0.22:80",service="tcp:10.0.0.10:80",verdict="up"} 0
ipvsman_health_verdict{server="10.0.0.24:80",service="tcp:10.0.0.10:80",verdict="down"} 0
ipvsman_health_verdict{server="10.0.0.24:80",service="tcp:10.0.0.10:80",verdict="unknown"} 1
ipvsman_health_verdict{server="10.0.0.24:80",service="tcp:10.0.0.10:80",verdict="up"} 0
ipvsman_health_verdict{server="10.0.0.25:0",service="fwmark:7",verdict="down"} 0
ipvsman_health_verdict{server="10.0.0.25:0",service="fwmark:7",verdict="unknown"} 1
ipvsman_health_verdict{server="10.0.0.25:0",service="fwmark:7",verdict="up"} 0
`, "ipvsman_health_verdict")
}

func protocol() string { return strconv.Itoa(fsm.CommandProtocol) }

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// A failed kernel read leaves every IPVS series out and says so; the rest
// of the scrape is whole.
func TestKernelReadFails(t *testing.T) {
	src := fakeSources()
	src.Kernel = func() (director.Table, ipvsadm.Stats, error) { return nil, nil, errors.New("netlink: timeout") }
	m := New(src)
	compare(t, m, "# HELP ipvsman_kernel_scrape_error 1 when this scrape could not read the kernel's IPVS table or totals (the IPVS series are then absent), else 0.\n# TYPE ipvsman_kernel_scrape_error gauge\nipvsman_kernel_scrape_error 1\n", "ipvsman_kernel_scrape_error")
	if n := count(t, m, ipvsSeries...); n != 0 {
		t.Errorf("%d IPVS series after a failed kernel read, want none", n)
	}
	if n := count(t, m, "ipvsman_leader", "ipvsman_health_up", "ipvsman_vip_held", "ipvsman_sync_daemon_running"); n != 1+4+2+2 {
		t.Errorf("the other series: %d, want 9", n)
	}
	// Totals failing alone is a failed read too: no half-read kernel.
	src = fakeSources()
	src.Totals = func() (Totals, error) { return Totals{}, errors.New("no such file") }
	m = New(src)
	if n := count(t, m, ipvsSeries...); n != 0 {
		t.Errorf("%d IPVS series after a failed totals read, want none", n)
	}
	if v := gaugeValue(t, m, "ipvsman_kernel_scrape_error"); v != 1 {
		t.Errorf("ipvsman_kernel_scrape_error %v after a failed totals read, want 1", v)
	}
}

var ipvsSeries = []string{
	"node_ipvs_connections_total", "node_ipvs_incoming_packets_total", "node_ipvs_outgoing_packets_total",
	"node_ipvs_incoming_bytes_total", "node_ipvs_outgoing_bytes_total", "node_ipvs_backend_connections_active",
	"node_ipvs_backend_connections_inactive", "node_ipvs_backend_weight", "ipvsman_service_connections_total",
	"ipvsman_service_incoming_packets_total", "ipvsman_backend_connections_total", "ipvsman_backend_outgoing_bytes_total",
	"ipvsman_backend_connections_persistent",
}

func gaugeValue(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			mt := mf.GetMetric()[0]
			if g := mt.GetGauge(); g != nil {
				return g.GetValue()
			}
			return mt.GetCounter().GetValue()
		}
	}
	t.Fatalf("%s: not one series", name)
	return 0
}

// --ipvs=off: no kernel, no reconciler, no sync threads, and none of
// their series; the cluster's are there.
func TestIPVSOff(t *testing.T) {
	src := fakeSources()
	src.Kernel, src.Totals, src.Sync = nil, nil, nil
	m := New(src)
	m.ObserveReconcile(director.Report{Took: "1ms"}) // no reconciler: ignored
	if n := count(t, m, append(ipvsSeries, "ipvsman_kernel_scrape_error", "ipvsman_reconcile_duration_seconds",
		"ipvsman_reconcile_errors_total", "ipvsman_reconcile_applied_index", "ipvsman_sync_daemon_running")...); n != 0 {
		t.Errorf("%d IPVS, reconcile or sync series with --ipvs=off, want none", n)
	}
	if n := count(t, m, "ipvsman_leader", "ipvsman_raft_state", "ipvsman_vip_held", "ipvsman_leader_gained_total"); n != 1+4+2+1 {
		t.Errorf("cluster series with --ipvs=off: %d, want 8", n)
	}
	compare(t, m, "# HELP ipvsman_info Always 1: this node's name, release, command protocol and --ipvs mode.\n# TYPE ipvsman_info gauge\n"+
		`ipvsman_info{ipvs="off",node="d1",protocol="`+protocol()+`",version="0.8.0-test"} 1`+"\n", "ipvsman_info")
}

// A follower before its first contact with a leader has no last-contact
// series; after it, the seconds raft reports.
func TestFollowerLastContact(t *testing.T) {
	src := fakeSources()
	contact := "never"
	src.Status = func() cluster.Status { return cluster.Status{State: "Follower", LastContact: contact} }
	m := New(src)
	if n := count(t, m, "ipvsman_raft_last_contact_seconds"); n != 0 {
		t.Errorf("last contact %q: %d series, want none", contact, n)
	}
	if v := gaugeValue(t, m, "ipvsman_leader"); v != 0 {
		t.Errorf("ipvsman_leader %v on a follower", v)
	}
	contact = "12.5ms"
	if v := gaugeValue(t, m, "ipvsman_raft_last_contact_seconds"); v != 0.0125 {
		t.Errorf("last contact 12.5ms: %v", v)
	}
}

func TestLeadershipCountsChanges(t *testing.T) {
	m := New(fakeSources())
	for _, l := range []bool{true, true, false, false, true, false} {
		m.Leadership(l)
	}
	if g, l := testutil.ToFloat64(m.leaderGained), testutil.ToFloat64(m.leaderLost); g != 2 || l != 2 {
		t.Errorf("gained %v, lost %v; want 2 and 2 (repeats count once)", g, l)
	}
}

// failingKernel is an empty kernel that refuses one service.
type failingKernel struct{ refuse string }

func (k *failingKernel) Read() (director.Table, error)   { return director.Table{}, nil }
func (k *failingKernel) Timeouts() (fsm.Timeouts, error) { return fsm.Timeouts{}, nil }
func (k *failingKernel) SetTimeouts(fsm.Timeouts) error  { return nil }
func (k *failingKernel) Apply(op director.Op) error {
	if op.Service.Key.String() == k.refuse {
		return errors.New("file exists")
	}
	return nil
}

// The reconciler's observer feeds the histogram and the counters with
// every pass.
func TestReconcilePasses(t *testing.T) {
	m := New(fakeSources())
	table, _, _ := fakeKernel()
	r := &director.Reconciler{Kernel: &failingKernel{refuse: "fwmark:7"}, Log: discard(), Observe: m.ObserveReconcile}
	r.StepFull(director.Target{Table: table, Index: 40}) // 3 services + 4 dests; fwmark:7 and its dest fail
	r.StepFull(director.Target{Table: table, Index: 41})
	if n := count(t, m, "ipvsman_reconcile_duration_seconds"); n != 1 {
		t.Fatalf("histogram: %d series", n)
	}
	mfs, _ := m.Registry().Gather()
	for _, mf := range mfs {
		if mf.GetName() == "ipvsman_reconcile_duration_seconds" {
			if c := mf.GetMetric()[0].GetHistogram().GetSampleCount(); c != 2 {
				t.Errorf("histogram count %d, want 2 passes", c)
			}
		}
	}
	if ops, errs := testutil.ToFloat64(m.reconcileOps), testutil.ToFloat64(m.reconcileErrors); ops != 14 || errs != 4 {
		t.Errorf("ops %v, errors %v; want 14 and 4 (7 ops a pass, fwmark:7 and its dest failing twice)", ops, errs)
	}
	compare(t, m, `
# HELP ipvsman_reconcile_passes_total Reconcile passes, by result: ok (every operation succeeded) or failed.
# TYPE ipvsman_reconcile_passes_total counter
ipvsman_reconcile_passes_total{result="failed"} 2
ipvsman_reconcile_passes_total{result="ok"} 0
# HELP ipvsman_reconcile_applied_index Raft index of the state the last reconcile pass programmed.
# TYPE ipvsman_reconcile_applied_index gauge
ipvsman_reconcile_applied_index 41
# HELP ipvsman_reconcile_last_failed_ops Failed operations of the last reconcile pass (0: the kernel holds the model's table).
# TYPE ipvsman_reconcile_last_failed_ops gauge
ipvsman_reconcile_last_failed_ops 2
`, "ipvsman_reconcile_passes_total", "ipvsman_reconcile_applied_index", "ipvsman_reconcile_last_failed_ops")
}

// The handler serves the text exposition; names follow Prometheus' rules.
func TestHandlerAndLint(t *testing.T) {
	m := New(fakeSources())
	m.Leadership(true)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, body)
	}
	for _, want := range []string{"\nipvsman_leader 1\n", "\nipvsman_leader_gained_total 1\n", "\ngo_goroutines ", "\nprocess_start_time_seconds ",
		`node_ipvs_backend_connections_inactive{local_address="10.0.0.10",local_mark="",local_port="80",proto="TCP",remote_address="10.0.0.21",remote_port="80"} 4`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestParseTotals(t *testing.T) {
	// As Linux 6.1 prints it (ip_vs_stats_show).
	in := "   Total Incoming Outgoing         Incoming         Outgoing\n" +
		"   Conns  Packets  Packets            Bytes            Bytes\n" +
		"     16D      A6C        0        1000006F96C                0\n\n" +
		" Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n" +
		"       0        0        0                0                0\n"
	got, err := ParseTotals(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Totals{Conns: 0x16D, InPkts: 0xA6C, InBytes: 0x1000006F96C}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "a\nb\n", "a\nb\n1 2 3 4\n", "a\nb\n1 2 3 4 XYZ\n"} {
		if _, err := ParseTotals(bad); err == nil {
			t.Errorf("ParseTotals(%q): no error", bad)
		}
	}
	if _, err := ReadTotals("/nonexistent/ip_vs_stats"); err == nil || !strings.Contains(err.Error(), "ipvs totals") {
		t.Errorf("ReadTotals of a missing file: %v", err)
	}
}

// Drift repair's CPU and round time are read from the reconciler at each
// scrape.
func TestResyncSeries(t *testing.T) {
	src := fakeSources()
	src.Resync = func() (time.Duration, time.Duration) { return 1500 * time.Millisecond, 42 * time.Second }
	compare(t, New(src), `
# HELP ipvsman_resync_cpu_seconds_total CPU time (user and system, the kernel's dump work included) drift repair used reading the kernel table back and repairing it.
# TYPE ipvsman_resync_cpu_seconds_total counter
ipvsman_resync_cpu_seconds_total 1.5
# HELP ipvsman_resync_round_seconds How long the last complete round of drift repair took to read the whole kernel table back: the longest a hand edit stays (0: none yet).
# TYPE ipvsman_resync_round_seconds gauge
ipvsman_resync_round_seconds 42
`, "ipvsman_resync_cpu_seconds_total", "ipvsman_resync_round_seconds")
}

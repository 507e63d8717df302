package metrics

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// node_exporter's ipvs collector (collector/ipvs_linux.go): the same names,
// help and labels, so that its dashboards read ipvsman's series unchanged.
var (
	nodeBackendLabels = []string{"local_address", "local_port", "remote_address", "remote_port", "proto", "local_mark"}

	descNodeConns    = prometheus.NewDesc("node_ipvs_connections_total", "The total number of connections made.", nil, nil)
	descNodeInPkts   = prometheus.NewDesc("node_ipvs_incoming_packets_total", "The total number of incoming packets.", nil, nil)
	descNodeOutPkts  = prometheus.NewDesc("node_ipvs_outgoing_packets_total", "The total number of outgoing packets.", nil, nil)
	descNodeInBytes  = prometheus.NewDesc("node_ipvs_incoming_bytes_total", "The total amount of incoming data.", nil, nil)
	descNodeOutBytes = prometheus.NewDesc("node_ipvs_outgoing_bytes_total", "The total amount of outgoing data.", nil, nil)
	descNodeActive   = prometheus.NewDesc("node_ipvs_backend_connections_active", "The current active connections by local and remote address.", nodeBackendLabels, nil)
	descNodeInactive = prometheus.NewDesc("node_ipvs_backend_connections_inactive", "The current inactive connections by local and remote address.", nodeBackendLabels, nil)
	descNodeWeight   = prometheus.NewDesc("node_ipvs_backend_weight", "The current backend weight by local and remote address.", nodeBackendLabels, nil)
)

// counterSet is one family of the five kernel counters, for services or
// for real servers.
type counterSet struct{ conns, inPkts, outPkts, inBytes, outBytes *prometheus.Desc }

func newCounterSet(prefix, what string, labels []string) counterSet {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prefix+name, help+" "+what+", from the kernel (64-bit), as ipvsadm -L -n --stats --exact shows it.", labels, nil)
	}
	return counterSet{
		conns:    d("connections_total", "Connections scheduled to the"),
		inPkts:   d("incoming_packets_total", "Packets in (client to real server) of the"),
		outPkts:  d("outgoing_packets_total", "Packets out (real server to client, through the director: masquerading only) of the"),
		inBytes:  d("incoming_bytes_total", "Bytes in of the"),
		outBytes: d("outgoing_bytes_total", "Bytes out of the"),
	}
}

func (s counterSet) emit(ch chan<- prometheus.Metric, c ipvsadm.Counters, labels ...string) {
	for _, x := range []struct {
		d *prometheus.Desc
		v uint64
	}{{s.conns, c.Conns}, {s.inPkts, c.InPkts}, {s.outPkts, c.OutPkts}, {s.inBytes, c.InBytes}, {s.outBytes, c.OutBytes}} {
		ch <- prometheus.MustNewConstMetric(x.d, prometheus.CounterValue, float64(x.v), labels...)
	}
}

func (s counterSet) descs() []*prometheus.Desc {
	return []*prometheus.Desc{s.conns, s.inPkts, s.outPkts, s.inBytes, s.outBytes}
}

var (
	serviceCounters = newCounterSet("ipvsman_service_", "virtual service", []string{"service"})
	backendCounters = newCounterSet("ipvsman_backend_", "real server", []string{"service", "server"})

	descPersistent  = prometheus.NewDesc("ipvsman_backend_connections_persistent", "Persistence templates the kernel holds for the real server (ipvsadm -L --persistent-conn).", []string{"service", "server"}, nil)
	descScrapeError = prometheus.NewDesc("ipvsman_kernel_scrape_error", "1 when this scrape could not read the kernel's IPVS table or totals (the IPVS series are then absent), else 0.", nil, nil)
	descScrapeTime  = prometheus.NewDesc("ipvsman_kernel_scrape_duration_seconds", "Time this scrape took to read the kernel's IPVS table and totals.", nil, nil)

	descInfo        = prometheus.NewDesc("ipvsman_info", "Always 1: this node's name, release, command protocol and --ipvs mode.", []string{"node", "version", "protocol", "ipvs"}, nil)
	descRaftState   = prometheus.NewDesc("ipvsman_raft_state", "1 for this node's Raft state, 0 for the others.", []string{"state"}, nil)
	descLeader      = prometheus.NewDesc("ipvsman_leader", "1 when this node is the Raft leader (it then holds the VIPs and runs the health checks), else 0.", nil, nil)
	descTerm        = prometheus.NewDesc("ipvsman_raft_term", "This node's current Raft term.", nil, nil)
	descApplied     = prometheus.NewDesc("ipvsman_raft_applied_index", "Raft index of the last log entry this node applied to its state.", nil, nil)
	descCommit      = prometheus.NewDesc("ipvsman_raft_commit_index", "Raft commit index as this node knows it.", nil, nil)
	descLastLog     = prometheus.NewDesc("ipvsman_raft_last_log_index", "Raft index of the last entry in this node's log.", nil, nil)
	descLastContact = prometheus.NewDesc("ipvsman_raft_last_contact_seconds", "Time since this node last heard from the leader (0 on the leader; absent before the first contact).", nil, nil)
	descVoters      = prometheus.NewDesc("ipvsman_raft_servers", "Members of the Raft configuration as this node sees it, by suffrage.", []string{"suffrage"}, nil)
	descConfigVer   = prometheus.NewDesc("ipvsman_config_version", "Version of the replicated configuration this node has applied.", nil, nil)

	descHealthUp      = prometheus.NewDesc("ipvsman_health_up", "1 when the replicated verdict of the real server's health checks is up, 0 when down or unknown.", []string{"service", "server"}, nil)
	descQuorumUp      = prometheus.NewDesc("ipvsman_service_quorum_up", "1 while the service holds its quorum, 0 while it has lost it (fsm/quorum.go); one series per service with a quorum.", []string{"service"}, nil)
	descQuorumLost    = prometheus.NewDesc("ipvsman_services_quorum_lost", "Services that have lost their quorum.", nil, nil)
	descHealthVerdict = prometheus.NewDesc("ipvsman_health_verdict", "1 for the real server's replicated health verdict (up, down, unknown), 0 for the others.", []string{"service", "server", "verdict"}, nil)
	descCheckLatency  = prometheus.NewDesc("ipvsman_health_check_latency_seconds", "Latency of the real server's last health check (leader only: the checks run there).", []string{"service", "server", "type"}, nil)
	descCheckOK       = prometheus.NewDesc("ipvsman_health_check_ok", "1 when the real server's last health check passed, else 0 (leader only).", []string{"service", "server", "type"}, nil)
	descChecks        = prometheus.NewDesc("ipvsman_health_checks_total", "Health checks run against the real server since this node became leader (leader only).", []string{"service", "server", "type"}, nil)

	descVIPHeld      = prometheus.NewDesc("ipvsman_vip_held", "1 when this node holds the VIP on its interface, 0 when not; one series per VIP of the model.", []string{"vip"}, nil)
	descVIPAdds      = prometheus.NewDesc("ipvsman_vip_adds_total", "VIP addresses this node put on its interfaces.", nil, nil)
	descVIPRemoves   = prometheus.NewDesc("ipvsman_vip_removes_total", "VIP addresses this node took off its interfaces.", nil, nil)
	descVIPAnnounces = prometheus.NewDesc("ipvsman_vip_announcements_total", "Announcement rounds sent for held VIPs (gratuitous ARP request and reply, or an unsolicited neighbour advertisement).", nil, nil)
	descVIPAnnErrs   = prometheus.NewDesc("ipvsman_vip_announce_errors_total", "Announcement rounds that failed.", nil, nil)
	descVIPErrors    = prometheus.NewDesc("ipvsman_vip_errors_total", "Failed VIP address changes (each is retried).", nil, nil)

	descReconcileIndex  = prometheus.NewDesc("ipvsman_reconcile_applied_index", "Raft index of the state the last reconcile pass programmed.", nil, nil)
	descReconcileFailed = prometheus.NewDesc("ipvsman_reconcile_last_failed_ops", "Failed operations of the last reconcile pass (0: the kernel holds the model's table).", nil, nil)
	descReconcileAt     = prometheus.NewDesc("ipvsman_reconcile_last_timestamp_seconds", "When the last reconcile pass started (Unix time).", nil, nil)

	descSyncRunning = prometheus.NewDesc("ipvsman_sync_daemon_running", "1 when the kernel's connection-sync thread of the role runs on this node, else 0.", []string{"role"}, nil)
	descSyncID      = prometheus.NewDesc("ipvsman_sync_id", "Sync ID of this node's running sync threads (absent when none runs).", nil, nil)
	descSyncError   = prometheus.NewDesc("ipvsman_sync_error", "1 when the last pass over the sync threads failed (it is retried), else 0.", nil, nil)
	descSyncOff     = prometheus.NewDesc("ipvsman_sync_unavailable", "1 when connection sync is on in the model but cannot run on this node (no sync interface, mixed address families; the log says which), else 0.", nil, nil)
)

// raftStates are the states of ipvsman_raft_state, as hashicorp/raft names them.
var raftStates = []string{"Follower", "Candidate", "Leader", "Shutdown"}

var verdicts = []fsm.Health{fsm.HealthUp, fsm.HealthDown, fsm.HealthUnknown}

// collector is Metrics seen as a prometheus.Collector of scrape-time series.
type collector Metrics

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descNodeConns, descNodeInPkts, descNodeOutPkts, descNodeInBytes, descNodeOutBytes, descNodeActive, descNodeInactive, descNodeWeight,
		descPersistent, descScrapeError, descScrapeTime, descInfo, descRaftState, descLeader, descTerm, descApplied, descCommit, descLastLog,
		descLastContact, descVoters, descConfigVer, descHealthUp, descHealthVerdict, descQuorumUp, descQuorumLost, descCheckLatency, descCheckOK, descChecks,
		descVIPHeld, descVIPAdds, descVIPRemoves, descVIPAnnounces, descVIPAnnErrs, descVIPErrors,
		descReconcileIndex, descReconcileFailed, descReconcileAt, descSyncRunning, descSyncID, descSyncError, descSyncOff,
	} {
		ch <- d
	}
	for _, d := range append(serviceCounters.descs(), backendCounters.descs()...) {
		ch <- d
	}
	for _, d := range bgpDescs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(c)
	ipvs := "off"
	if m.src.Kernel != nil {
		ipvs = "on"
	}
	gauge(ch, descInfo, 1, m.src.Node, m.src.Version, strconv.Itoa(fsm.CommandProtocol), ipvs)
	m.collectRaft(ch)
	m.collectModel(ch)
	m.collectHealth(ch)
	m.collectVIPs(ch)
	m.collectKernel(ch)
	m.collectReconcile(ch)
	m.collectSync(ch)
	m.collectBGP(ch)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *Metrics) collectRaft(ch chan<- prometheus.Metric) {
	if m.src.Status == nil {
		return
	}
	st := m.src.Status()
	for _, s := range raftStates {
		gauge(ch, descRaftState, b2f(st.State == s), s)
	}
	gauge(ch, descLeader, b2f(st.State == "Leader"))
	gauge(ch, descTerm, float64(st.Term))
	gauge(ch, descApplied, float64(st.AppliedIndex))
	gauge(ch, descCommit, float64(st.CommitIndex))
	gauge(ch, descLastLog, float64(st.LastLogIndex))
	gauge(ch, descConfigVer, float64(st.ConfigVersion))
	if d, ok := lastContact(st); ok {
		gauge(ch, descLastContact, d.Seconds())
	}
	count := map[string]int{"voter": 0, "nonvoter": 0}
	for _, s := range st.Servers {
		count[s.Suffrage]++
	}
	for _, k := range slices.Sorted(maps.Keys(count)) {
		gauge(ch, descVoters, float64(count[k]), k)
	}
}

// lastContact reads raft's "last_contact" stat: "0" on the leader,
// "never" before any contact, else a duration.
func lastContact(st cluster.Status) (time.Duration, bool) {
	switch st.LastContact {
	case "", "never":
		return 0, false
	case "0":
		return 0, true
	}
	d, err := time.ParseDuration(st.LastContact)
	return d, err == nil
}

// collectModel reports every checked real server's replicated verdict: the
// same on every node, whichever leads.
func (m *Metrics) collectModel(ch chan<- prometheus.Metric) {
	if m.src.Model == nil {
		return
	}
	type row struct {
		service, server string
		health          fsm.Health
	}
	var rows []row
	var quorum map[string]bool
	m.src.Model(func(s *fsm.State, _ uint64) {
		quorum = s.QuorumStates()
		for _, key := range s.Config.SortedServiceKeys() {
			svc := s.Config.Services[key]
			for _, rk := range svc.SortedServerKeys() {
				if svc.Check == nil && svc.Servers[rk].Check == nil {
					continue // not checked: no verdict to report
				}
				h := s.Verdicts[fsm.VerdictKey(key, rk)].Health
				if h == "" {
					h = fsm.HealthUnknown
				}
				rows = append(rows, row{key, rk, h})
			}
		}
	})
	for _, r := range rows {
		gauge(ch, descHealthUp, b2f(r.health == fsm.HealthUp), r.service, r.server)
		for _, v := range verdicts {
			gauge(ch, descHealthVerdict, b2f(r.health == v), r.service, r.server, string(v))
		}
	}
	lost := 0
	for k, up := range quorum {
		gauge(ch, descQuorumUp, b2f(up), k)
		if !up {
			lost++
		}
	}
	gauge(ch, descQuorumLost, float64(lost))
}

func (m *Metrics) collectHealth(ch chan<- prometheus.Metric) {
	if m.src.Health == nil {
		return
	}
	for _, s := range m.src.Health() {
		if s.Checks == 0 {
			continue // scheduled, not run yet: no latency to tell
		}
		gauge(ch, descCheckLatency, s.Latency.Seconds(), s.Service, s.Server, s.Type)
		gauge(ch, descCheckOK, b2f(s.OK), s.Service, s.Server, s.Type)
		counter(ch, descChecks, s.Checks, s.Service, s.Server, s.Type)
	}
}

// collectVIPs reports each VIP of the model as held (1) or not (0) here.
func (m *Metrics) collectVIPs(ch chan<- prometheus.Metric) {
	if m.src.VIPs == nil {
		return
	}
	st := m.src.VIPs()
	held := map[string]bool{}
	for _, h := range st.Held {
		p, _, _ := strings.Cut(h, " on ") // vip.Addr.String: "10.0.0.10/32 on eth0"
		held[p] = true
	}
	all := slices.Collect(maps.Keys(held))
	if m.src.Model != nil {
		m.src.Model(func(s *fsm.State, _ uint64) {
			for k := range s.Config.VIPs {
				if !held[k] {
					all = append(all, k)
				}
			}
		})
	}
	slices.Sort(all)
	for _, v := range all {
		gauge(ch, descVIPHeld, b2f(held[v]), v)
	}
	counter(ch, descVIPAdds, st.Adds)
	counter(ch, descVIPRemoves, st.Removes)
	counter(ch, descVIPAnnounces, st.Announcements)
	counter(ch, descVIPAnnErrs, st.AnnounceErrors)
	counter(ch, descVIPErrors, st.Errors)
}

// collectKernel reads the kernel now. On a failed read it reports the error
// and no IPVS series at all: a stale or partial value would be a lie, and an
// absent counter is what Prometheus' rate() handles.
func (m *Metrics) collectKernel(ch chan<- prometheus.Metric) {
	if m.src.Kernel == nil {
		return
	}
	start := time.Now()
	table, stats, err := m.src.Kernel()
	var tot Totals
	if err == nil && m.src.Totals != nil {
		tot, err = m.src.Totals()
	}
	gauge(ch, descScrapeTime, time.Since(start).Seconds())
	m.noteScrape(err)
	if err != nil {
		gauge(ch, descScrapeError, 1)
		return
	}
	gauge(ch, descScrapeError, 0)
	if m.src.Totals != nil {
		counter(ch, descNodeConns, tot.Conns)
		counter(ch, descNodeInPkts, tot.InPkts)
		counter(ch, descNodeOutPkts, tot.OutPkts)
		counter(ch, descNodeInBytes, tot.InBytes)
		counter(ch, descNodeOutBytes, tot.OutBytes)
	}
	for _, key := range slices.Sorted(maps.Keys(table)) {
		svc := table[key]
		serviceCounters.emit(ch, stats[key], key)
		for _, dk := range slices.Sorted(maps.Keys(svc.Dests)) {
			d := svc.Dests[dk]
			c := stats[fsm.VerdictKey(key, dk)]
			backendCounters.emit(ch, c, key, dk)
			gauge(ch, descPersistent, float64(c.PersistConns), key, dk)
			nl := nodeLabels(svc.Key, d)
			gauge(ch, descNodeActive, float64(c.ActiveConns), nl...)
			gauge(ch, descNodeInactive, float64(c.InactConns), nl...)
			gauge(ch, descNodeWeight, float64(d.Weight), nl...)
		}
	}
}

// nodeLabels are node_exporter's backend label values, as procfs parses
// /proc/net/ip_vs: proto "TCP", "UDP" or "FWM"; for a fwmark service an
// empty local address, local port 0 and the mark as the kernel prints it
// (%08X); addresses in Go's usual form.
func nodeLabels(k fsm.ServiceKey, d director.Dest) []string {
	local, port, mark := "", "0", ""
	proto := strings.ToUpper(string(k.Protocol))
	if k.Protocol == fsm.FWMark {
		proto, mark = "FWM", fmt.Sprintf("%08X", k.Mark)
	} else {
		local, port = k.Address.String(), strconv.Itoa(int(k.Port))
	}
	return []string{local, port, d.Address.String(), strconv.Itoa(int(d.Port)), proto, mark}
}

func (m *Metrics) noteScrape(err error) {
	m.mu.Lock()
	was := m.scrapeErr
	m.scrapeErr = err
	m.mu.Unlock()
	if m.src.Log == nil {
		return
	}
	switch {
	case err != nil && was == nil:
		m.src.Log.Warn("metrics: kernel ipvs read failed; ipvs series left out until it works", "node", m.src.Node, "err", err)
	case err == nil && was != nil:
		m.src.Log.Info("metrics: kernel ipvs read works again", "node", m.src.Node)
	}
}

func (m *Metrics) collectReconcile(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	r, ok := m.lastPass, m.havePass
	m.mu.Unlock()
	if !ok {
		return
	}
	gauge(ch, descReconcileIndex, float64(r.Index))
	gauge(ch, descReconcileFailed, float64(r.Failed))
	gauge(ch, descReconcileAt, float64(r.At.UnixNano())/1e9)
}

func (m *Metrics) collectSync(ch chan<- prometheus.Metric) {
	if m.src.Sync == nil {
		return
	}
	r := m.src.Sync()
	running := map[string]bool{}
	for _, t := range r.Threads {
		running[t.State] = true
	}
	gauge(ch, descSyncRunning, b2f(running["master"]), "master")
	gauge(ch, descSyncRunning, b2f(running["backup"]), "backup")
	if len(r.Threads) > 0 {
		gauge(ch, descSyncID, float64(r.Threads[0].SyncID))
	}
	gauge(ch, descSyncError, b2f(r.Err != ""))
	gauge(ch, descSyncOff, b2f(r.Why != ""))
}

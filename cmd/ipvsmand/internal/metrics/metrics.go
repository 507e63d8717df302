// Package metrics is ipvsman's Prometheus exposition: one node's kernel
// IPVS counters, health verdicts and checks, Raft state, VIPs, reconcile
// passes and sync threads (docs/metrics.md lists every series). Besides
// cmd/ipvsmand and its server, it is the only place that knows every part.
//
// Nothing is cached: each scrape asks the injected sources, so a counter is
// the kernel's value at the moment of the scrape. Where node_exporter's ipvs
// collector has a series, the same name and labels are used, so that its
// dashboards and alerts work unchanged; everything else is ipvsman_….
//
// It only reads: it holds no handle of its own (the one file it opens is
// /proc/net/ip_vs_stats) and never writes the model, the kernel or the
// VIPs, so a scrape cannot change what it measures.
package metrics

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/director/health"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
	"github.com/ipvsman/ipvsman/vip"
)

// Sources are what a scrape reads. A nil func leaves its series out: the
// daemon sets them as its flags allow (--ipvs=off: no Kernel, Totals,
// Director, Sync; --vips=off: no VIPs).
type Sources struct {
	Node    string
	Version string       // the build's release
	Log     *slog.Logger // kernel read failures, once per change; nil: none
	// Status is the Raft view (cluster.Node.Status).
	Status func() cluster.Status
	// Model runs f on the replicated state under its read lock
	// (cluster.Node.View); the collector copies what it needs and returns.
	Model func(f func(s *fsm.State, applied uint64))
	// Kernel dumps this node's IPVS table with its 64-bit counters, keyed
	// as ipvsadm.Stats says (director.Netlink.ReadStats).
	Kernel func() (director.Table, ipvsadm.Stats, error)
	// Totals are the kernel's IPVS-wide counters, /proc/net/ip_vs_stats
	// (ReadTotals): node_exporter's source for node_ipvs_*_total.
	Totals func() (Totals, error)
	// Health is the leader's checks (health.Runner.Statuses); empty on a
	// follower.
	Health func() []health.Status
	// VIPs is the VIP manager's state (vip.Manager.Stats).
	VIPs func() vip.Stats
	// Sync is the sync threads' last pass (director.SyncDaemons.Last).
	Sync func() director.SyncReport
	// Resync is drift repair's CPU so far and its last round's duration
	// (director.Reconciler.ResyncCPU, ResyncRound).
	Resync func() (cpu, round time.Duration)
	// BGP is the ecmp announcer and its BGP sessions (the node status's
	// BGP section); nil or a nil answer: BGP off, no series.
	BGP func() *api.BGPStatus
	// Failovers counts leadership changes; the daemon makes it before the
	// Raft node opens (NewFailovers). nil: New makes its own.
	Failovers *Failovers
}

// Failovers counts this node's leadership changes. It exists apart from
// the registry so that the daemon can make it before the Raft node opens,
// and its leadership hook counts the first election, while the registry is
// made once every source exists. A nil *Failovers counts nothing
// (--metrics=off).
type Failovers struct {
	gained, lost prometheus.Counter

	mu      sync.Mutex
	leading bool
}

// NewFailovers makes the counters; New registers them.
func NewFailovers() *Failovers {
	return &Failovers{
		gained: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ipvsman_leader_gained_total",
			Help: "Times this node became the Raft leader (and, with --vips=on, took the VIPs): failovers and transfers to it, the first election included.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ipvsman_leader_lost_total",
			Help: "Times this node stopped being the Raft leader (and dropped the VIPs).",
		}),
	}
}

// Leadership records a leadership change as the daemon's hook reports it;
// repeated calls with the same value count once.
func (f *Failovers) Leadership(leader bool) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if leader == f.leading {
		return
	}
	f.leading = leader
	if leader {
		f.gained.Inc()
	} else {
		f.lost.Inc()
	}
}

// Metrics is one node's registry: the scrape-time collector over Sources,
// the counters the daemon's hooks drive, and Go's and the process's own.
type Metrics struct {
	src Sources
	reg *prometheus.Registry

	reconcileDuration prometheus.Histogram
	reconcileOps      prometheus.Counter
	reconcileErrors   prometheus.Counter
	reconcilePasses   *prometheus.CounterVec
	failovers         *Failovers
	leaderGained      prometheus.Counter // failovers' own
	leaderLost        prometheus.Counter

	mu        sync.Mutex
	lastPass  director.Report
	havePass  bool
	scrapeErr error // the last kernel read's error (logged when it changes)
}

// ReconcileBuckets span a no-op incremental pass (tens of µs) to a full
// apply of thousands of services under emulation (seconds).
var ReconcileBuckets = prometheus.ExponentialBuckets(0.0001, 4, 10)

// New builds the registry. The reconcile series exist only when the node
// programs IPVS (Kernel set).
func New(src Sources) *Metrics {
	m := &Metrics{src: src, reg: prometheus.NewRegistry(), failovers: src.Failovers}
	if m.failovers == nil {
		m.failovers = NewFailovers()
	}
	m.leaderGained, m.leaderLost = m.failovers.gained, m.failovers.lost
	m.reg.MustRegister(m.leaderGained, m.leaderLost,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		(*collector)(m))
	if src.Kernel != nil {
		m.reconcileDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ipvsman_reconcile_duration_seconds",
			Help:    "Time of each reconcile pass of the kernel IPVS table (read or cached table, plan, apply).",
			Buckets: ReconcileBuckets,
		})
		m.reconcileOps = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ipvsman_reconcile_ops_total",
			Help: "Kernel operations the reconcile passes applied or tried.",
		})
		m.reconcileErrors = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ipvsman_reconcile_errors_total",
			Help: "Failed kernel operations (and failed table reads) of the reconcile passes; each is retried.",
		})
		m.reconcilePasses = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ipvsman_reconcile_passes_total",
			Help: "Reconcile passes, by result: ok (every operation succeeded) or failed.",
		}, []string{"result"})
		m.reconcilePasses.WithLabelValues("ok")
		m.reconcilePasses.WithLabelValues("failed")
		m.reg.MustRegister(m.reconcileDuration, m.reconcileOps, m.reconcileErrors, m.reconcilePasses)
		if src.Resync != nil {
			m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "ipvsman_resync_cpu_seconds_total",
				Help: "CPU time (user and system, the kernel's dump work included) drift repair used reading the kernel table back and repairing it.",
			}, func() float64 { cpu, _ := src.Resync(); return cpu.Seconds() }),
				prometheus.NewGaugeFunc(prometheus.GaugeOpts{
					Name: "ipvsman_resync_round_seconds",
					Help: "How long the last complete round of drift repair took to read the whole kernel table back: the longest a hand edit stays (0: none yet).",
				}, func() float64 { _, round := src.Resync(); return round.Seconds() }))
		}
	}
	return m
}

// Registry is where every series is registered (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the exposition (GET /metrics). A failing source never
// fails the scrape: the kernel's is reported by ipvsman_kernel_scrape_error.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// ObserveReconcile records one reconcile pass (director.Reconciler.Observe).
func (m *Metrics) ObserveReconcile(r director.Report) {
	if m.reconcileDuration == nil {
		return
	}
	if d, err := time.ParseDuration(r.Took); err == nil {
		m.reconcileDuration.Observe(d.Seconds())
	}
	m.reconcileOps.Add(float64(r.Ops))
	m.reconcileErrors.Add(float64(r.Failed))
	result := "ok"
	if r.Failed > 0 {
		result = "failed"
	}
	m.reconcilePasses.WithLabelValues(result).Inc()
	m.mu.Lock()
	m.lastPass, m.havePass = r, true
	m.mu.Unlock()
}

// Leadership records a leadership change (Failovers.Leadership).
func (m *Metrics) Leadership(leader bool) { m.failovers.Leadership(leader) }

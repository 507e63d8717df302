package main

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/cluster/release"
	"github.com/ipvsman/ipvsman/cmd/ipvsmand/internal/metrics"
	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/director/health"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
	"github.com/ipvsman/ipvsman/vip"
)

// promMetrics wires director/metrics into the daemon: GET /metrics on the
// API listener, without the token (see docs/metrics.md for why). A nil
// *promMetrics (--metrics=off) does nothing.
//
// The registry exists before the Raft node opens, so that the leadership
// hook counts the first election; the sources it reads are handed over
// later, all before the API serves its first scrape.
type promMetrics struct {
	m *metrics.Metrics

	node   *cluster.Node
	kernel *director.Netlink
	syncd  *director.SyncDaemons
	vips   *vip.Manager
	checks func() []health.Status
}

func newMetrics(o options, log *slog.Logger) (*promMetrics, error) {
	switch o.metrics {
	case "off":
		return nil, nil
	case "on":
	default:
		return nil, fmt.Errorf("--metrics %q: want on or off", o.metrics)
	}
	p := &promMetrics{}
	src := metrics.Sources{
		Node: o.nodeID, Version: release.Version, Log: log,
		Status: func() cluster.Status { return p.node.Status() },
		Model:  func(f func(*fsm.State, uint64)) { p.node.View(f) },
		Health: func() []health.Status { return p.checks() },
	}
	if o.ipvs == "on" {
		// Read live at every scrape: the counters are the kernel's at that
		// moment, never a cached copy.
		src.Kernel = func() (director.Table, ipvsadm.Stats, error) { return p.kernel.ReadStats() }
		src.Totals = func() (metrics.Totals, error) { return metrics.ReadTotals(metrics.TotalsPath) }
		src.Sync = func() director.SyncReport { return p.syncd.Last() }
	}
	if o.vips == "on" {
		src.VIPs = func() vip.Stats { return p.vips.Stats() }
	}
	p.m = metrics.New(src)
	return p, nil
}

// leadership is the leadership hook's share: the failover counters.
func (p *promMetrics) leadership(leader bool) {
	if p != nil {
		p.m.Leadership(leader)
	}
}

// observeReconcile is the reconciler's observer.
func (p *promMetrics) observeReconcile(r director.Report) {
	if p != nil {
		p.m.ObserveReconcile(r)
	}
}

// ipvs hands over the kernel table and the sync threads (--ipvs=on).
func (p *promMetrics) ipvs(k *director.Netlink, s *director.SyncDaemons) {
	if p != nil {
		p.kernel, p.syncd = k, s
	}
}

// handler hands over the rest and returns GET /metrics (nil: off).
func (p *promMetrics) handler(node *cluster.Node, vips *vip.Manager, checks func() []health.Status) http.Handler {
	if p == nil {
		return nil
	}
	p.node, p.vips, p.checks = node, vips, checks
	return p.m.Handler()
}

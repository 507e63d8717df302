package main

import (
	"fmt"
	"time"

	"github.com/ipvsman/ipvsman/cluster/release"
	"github.com/ipvsman/ipvsman/cmd/ipvsmand/internal/metrics"
)

// newFailovers checks --metrics and makes the leadership counters, which
// the Raft node's hook drives from the first election on; nil: off.
func newFailovers(flag string) (*metrics.Failovers, error) {
	switch flag {
	case "off":
		return nil, nil
	case "on":
		return metrics.NewFailovers(), nil
	}
	return nil, fmt.Errorf("--metrics %q: want on or off", flag)
}

// newMetrics is the registry over every source the node has (nil with
// --metrics=off), served at GET /metrics behind the API's tokens
// (docs/metrics.md). Each scrape reads the sources live: the counters are
// the kernel's at that moment, never a cached copy.
func newMetrics(d *daemon) *metrics.Metrics {
	if d.failovers == nil {
		return nil
	}
	src := metrics.Sources{
		Node: d.o.nodeID, Version: release.Version, Log: d.log,
		Status: d.node.Status, Model: d.node.View, Health: d.checks.runner.Statuses,
		Failovers: d.failovers, BGP: d.bgpStatus,
	}
	if p := d.ipvs; p != nil {
		src.Kernel = p.kernel.ReadStats
		src.Totals = func() (metrics.Totals, error) { return metrics.ReadTotals(metrics.TotalsPath) }
		src.Sync = p.syncd.Last
		src.Resync = func() (time.Duration, time.Duration) { return p.rec.ResyncCPU(), p.rec.ResyncRound() }
	}
	if d.vips != nil {
		src.VIPs = d.vips.Stats
	}
	return metrics.New(src)
}

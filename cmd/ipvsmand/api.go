package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ipvsman/ipvsman/cmd/ipvsmand/internal/server"
	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// serveAPI serves the API on its listener, over every part that is on.
func (d *daemon) serveAPI() error {
	o := d.o
	d.reload.tokens = server.NewTokens(d.token, d.readOnly)
	srv := &server.Server{
		Node: d.node, Tokens: d.reload.tokens, Limits: o.limits, Self: d.self, Replace: o.replace, IPVS: o.ipvs, Log: d.log, TLS: d.tls, MaxWait: o.maxWriteWait,
		Health: d.checks.runner.Statuses, Throttle: d.checks.runner.Throttle, Bulk: o.realtime.ordinary,
	}
	if d.vips != nil {
		srv.VIPs = d.vips.Stats
	}
	if p := d.ipvs; p != nil {
		srv.Director = func() *director.Report { r := p.rec.Last(); return &r }
		srv.Sync = func() *director.SyncReport {
			r := p.syncd.Last()
			if conns, err := director.ReadConns(); err == nil {
				r = director.CountConns(r, conns)
			}
			return &r
		}
		srv.Conns = director.ReadConns
		srv.Kernel = func() (*fsm.Config, ipvsadm.Stats, error) { return director.KernelView(p.kernel) }
		srv.Forwarding = d.forwardingStatus
	}
	srv.BGP = d.bgpStatus
	if d.metrics != nil {
		srv.Metrics = d.metrics.Handler()
	}
	// The server's own log carries refused TLS handshakes (a client with
	// a certificate of another CA, plain HTTP to an https port).
	d.api = &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(d.log.With("node", o.nodeID, "component", "api").Handler(), slog.LevelWarn)}
	d.stop.api = d.stack.push("API", func(ctx context.Context) { _ = d.api.Shutdown(ctx) })
	go func() {
		if err := d.api.Serve(d.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.fail(fmt.Errorf("api: %w", err))
		}
	}()
	return nil
}

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/cmd/ipvsmand/internal/metrics"
	"github.com/ipvsman/ipvsman/cmd/ipvsmand/internal/notify"
	"github.com/ipvsman/ipvsman/cmd/ipvsmand/internal/server"
	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/director/check"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/vip"
)

// daemon is one director node: its parts, built by newDaemon in the order
// each needs the others, each pushing its closer on one stack, and stopped
// by shutdown in the one order there is.
type daemon struct {
	o     options
	log   *slog.Logger
	stack stack
	stop  stops
	fatal chan error

	tls             *cluster.TLS // nil: plain TCP and HTTP (loopback)
	token, readOnly string
	ln              net.Listener // the API's
	self            fsm.Member   // this node's addresses, for joins

	wire      *vip.Wire
	vips      *vip.Manager // nil: --vips=off
	failovers *metrics.Failovers
	ipvs      *ipvs // nil: --ipvs=off
	checks    *checks
	exec      *check.Exec // how exec checks run here (--check-dir, --check-user)
	syncWake  chan struct{}
	node      *cluster.Node
	metrics   *metrics.Metrics // nil: --metrics=off
	api       *http.Server
	reload    reloadState // what SIGHUP changes (reload.go)

	hooks        *notify.Notifier // nil: no hook configured
	ecmp         *ecmpPart        // nil: BGP off (bgp.go)
	ecmpWake     chan struct{}    // the announcer's: readiness, kernel passes, state
	tracked      atomic.Bool      // the readiness tracker has reported once
	verdictHooks bool             // a hook wants real servers' up and down
}

// stops are the closers shutdown runs first, in its order; nil: the part
// is off.
type stops struct {
	vips, join, checks, node, api, reconciler, sync, follow, track, verdicts, quorum, hooks *closer
}

// newDaemon builds and starts every part, or none: an error unwinds what
// was built.
func newDaemon(o options, log *slog.Logger) (*daemon, error) {
	d := &daemon{o: o, log: log, fatal: make(chan error, 1), syncWake: make(chan struct{}, 1), ecmpWake: make(chan struct{}, 1)}
	for _, step := range []func() error{
		d.checkModes,
		d.startHooks, // before the VIPs: their start-up cleanup is an event too
		d.openVIPs,   // before anything else: see openVIPs
		d.loadSettings,
		d.listenAPI,
		d.openIPVS,
		d.openNode,
		d.startParts,
		d.serveAPI,
	} {
		if err := step(); err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			d.stack.unwind(ctx)
			return nil, err
		}
	}
	log.Info("ipvsmand started", "node", o.nodeID, "raft_addr", o.raftAddr, "api_addr", d.ln.Addr().String(), "ipvs", o.ipvs, "tls", d.tls != nil)
	d.join()
	return d, nil
}

// run serves until ctx ends (a signal) or a part fails, then shuts down.
func (d *daemon) run(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
		d.log.Info("shutting down", "node", d.o.nodeID, "reason", "signal")
	case err = <-d.fatal:
		d.log.Error("stopping", "node", d.o.nodeID, "err", err)
	}
	d.shutdown()
	return err
}

// shutdown is the one order of stopping. The VIPs go first: once this
// node stops serving, nothing may answer for them here. Then what decides
// and writes (the join, health checks, Raft), the API, and the loops that
// follow the state; last, the stack unwinds the handles (netlink, the
// sync socket, the announcement sockets, the listener).
func (d *daemon) shutdown() {
	// A planned drain of the ecmp VIPs comes before everything, the
	// watchdog included: the node serves while the routers move the flows
	// away, for --bgp-drain-timeout at most.
	d.drainECMP()
	defer shutdownWatchdog(d.log, 25*time.Second)()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range []*closer{
		d.stop.vips,
		d.stop.join,
		d.stop.checks,
		d.stop.node,
		d.stop.api,
		d.stop.reconciler,
		d.stop.sync, // stops the sync master
		d.stop.follow,
		d.stop.track,
		d.stop.verdicts,
		d.stop.quorum,
		d.stop.hooks, // last: the hooks of the VIPs dropped and of leadership lost run
	} {
		c.close(ctx)
	}
	d.stack.unwind(ctx)
	d.log.Info("stopped", "node", d.o.nodeID)
}

// fail stops the daemon with err (the first one wins).
func (d *daemon) fail(err error) {
	select {
	case d.fatal <- err:
	default:
	}
}

// checkModes checks --ipvs (and the kernel for it) and --node-id.
func (d *daemon) checkModes() error {
	switch d.o.ipvs {
	case "off":
		d.log.Info("ipvs programming off: running the cluster only", "node", d.o.nodeID)
	case "on":
		if err := director.CheckKernel(); err != nil {
			return fmt.Errorf("--ipvs=on: %w; load the ip_vs module (modprobe ip_vs) or run with --ipvs=off", err)
		}
		d.log.Info("ipvs present in the kernel", "node", d.o.nodeID)
	default:
		return fmt.Errorf("--ipvs %q: want on or off", d.o.ipvs)
	}
	if err := fsm.ValidateNodeID(d.o.nodeID); err != nil {
		return fmt.Errorf("--node-id: %w", err)
	}
	return nil
}

// openVIPs comes before anything else: addresses a crashed predecessor
// left would answer for a VIP this node does not own.
func (d *daemon) openVIPs() error {
	d.wire = &vip.Wire{}
	d.stack.push("announcement sockets", func(context.Context) { d.wire.Close() })
	switch d.o.vips {
	case "on":
		if err := os.MkdirAll(d.o.dataDir, 0o700); err != nil {
			return fmt.Errorf("--data-dir %q: %w", d.o.dataDir, err)
		}
		if d.o.vipProbeLimit < 0 {
			return fmt.Errorf("--vip-probe-limit %s: must not be negative (0: no probe)", d.o.vipProbeLimit)
		}
		d.vips = &vip.Manager{Node: d.o.nodeID, Addrs: vip.Netlink{}, Announcer: d.wire, StateFile: filepath.Join(d.o.dataDir, "vips.json"), Log: d.log, OnChange: d.vipChanged}
		if d.o.vipProbeLimit > 0 {
			d.vips.Prober, d.vips.ProbeLimit = d.wire, d.o.vipProbeLimit
		}
		if err := d.vips.Start(); err != nil {
			d.log.Error("vip start-up cleanup incomplete; retrying", "node", d.o.nodeID, "err", err)
		}
		d.stop.vips = d.stack.push("VIPs", func(context.Context) { d.vips.Close("shutdown") })
	case "off":
	default:
		return fmt.Errorf("--vips %q: want on or off", d.o.vips)
	}
	return nil
}

// loadSettings reads and checks what the flags name: TLS material,
// listen addresses, metrics, the profiling server, tokens and limits.
func (d *daemon) loadSettings() error {
	var err error
	o := d.o
	if d.tls, err = loadTLS(o.tlsCert, o.tlsKey, o.tlsCA, o.nodeID); err != nil {
		return err
	}
	if err := checkListeners(o.raftAddr, o.apiAddr, o.debugAddr, d.tls != nil); err != nil {
		return err
	}
	if err := checkPeersInClear(o.join, o.apiAdvertise, d.tls != nil); err != nil {
		return err
	}
	if d.failovers, err = newFailovers(o.metrics); err != nil {
		return err
	}
	if o.debugAddr != "" {
		if err := serveDebug(o.debugAddr, d.log); err != nil {
			return err
		}
	}
	if d.token, err = readToken("--token-file", o.tokenFile); err != nil {
		return err
	}
	if d.readOnly, err = readOnlyToken(o.readTokenFile, d.token); err != nil {
		return err
	}
	if err := checkResync(o.resync, o.resyncCPU); err != nil {
		return err
	}
	if o.maxWriteWait <= 0 {
		return fmt.Errorf("--max-write-wait %s: want a positive duration", o.maxWriteWait)
	}
	if err := checkLimits(o.limits); err != nil {
		return err
	}
	if err := checkTrack(o.track); err != nil {
		return err
	}
	if d.exec, err = openExec(o.checkDir, o.checkUser, d.log); err != nil {
		return err
	}
	if o.bootstrap && o.join != "" {
		return errors.New("--bootstrap and --join: give one, not both")
	}
	if o.bootstrap && o.replace {
		return errors.New("--bootstrap and --replace: --replace takes over a member of an existing cluster; give it with --join")
	}
	return nil
}

// listenAPI opens the API's listener and settles this node's addresses.
func (d *daemon) listenAPI() error {
	ln, err := net.Listen("tcp", d.o.apiAddr)
	if err != nil {
		return fmt.Errorf("--api-addr %q: %w", d.o.apiAddr, err)
	}
	d.stack.push("API listener", func(context.Context) { ln.Close() })
	advertise := d.o.apiAdvertise
	if advertise == "" {
		advertise = ln.Addr().String()
	}
	if d.tls != nil {
		ln = tls.NewListener(ln, d.tls.APIServer())
	}
	d.ln = ln
	gossipAddr, err := defaultGossipAddr(d.o.gossipAddr, d.o.raftAddr)
	if err != nil {
		return err
	}
	d.self = fsm.Member{ID: d.o.nodeID, RaftAddr: d.o.raftAddr, APIAddr: advertise, GossipAddr: gossipAddr}
	return nil
}

// openNode opens the Raft node. Every part its leadership hook tells is
// built before it; the health checks are told the node once it is open.
func (d *daemon) openNode() error {
	o := d.o
	d.checks = newChecks(o.nodeID, d.log, check.Options{Exec: d.exec})
	d.stop.checks = d.stack.push("health checks", func(context.Context) { d.checks.close() })
	cfg := o.timing
	cfg.NodeID, cfg.DataDir, cfg.RaftAddr, cfg.APIAddr, cfg.Bootstrap, cfg.Logger = o.nodeID, o.dataDir, o.raftAddr, d.self.APIAddr, o.bootstrap, d.log
	cfg.TLS = d.tls
	cfg.Gossip = cluster.GossipConfig{Addr: d.self.GossipAddr, Key: cluster.GossipKey(d.token), Profile: o.gossipProfile}
	cfg.Rejoin = o.join != ""
	cfg.Leadership = d.leadership
	cfg.Admit = admitFor(&o, admitExec(d.exec, o.nodeID), d.log)
	cfg.Fatal = d.fail
	cfg.Bulk = o.realtime.ordinary
	node, err := cluster.Open(cfg)
	if err != nil {
		return err
	}
	d.node = node
	d.stop.node = d.stack.push("raft node", func(ctx context.Context) {
		if err := node.Shutdown(ctx); err != nil {
			d.log.Warn("raft shutdown", "err", err)
		}
	})
	d.checks.opened(node)
	return nil
}

// leadership is the Raft node's hook.
func (d *daemon) leadership(leader bool, reason string) {
	// VIPs first: on a loss nothing may come before dropping them. The
	// hooks hear of leadership before the VIPs' adds and after their
	// removals, as keepalived's notify_master and notify_backup do.
	if leader {
		d.hooks.Notify(notify.Event{Kind: notify.Leader, Reason: reason})
	}
	if d.vips != nil {
		if leader {
			d.vips.Lead(reason)
		} else {
			d.vips.Follow(reason)
		}
	}
	if !leader {
		d.hooks.Notify(notify.Event{Kind: notify.Backup, Reason: reason})
	}
	d.checks.lead(leader)
	d.failovers.Leadership(leader)
	poke(d.syncWake)
}

// startParts builds the metrics over every source, then starts what
// follows the replicated state: the VIPs, the reconciler, the sync threads.
func (d *daemon) startParts() error {
	d.metrics = newMetrics(d)
	if d.vips != nil {
		d.vips.IsLeader = func() bool { return d.node.IsLeader() && !d.node.Draining() }
		d.stop.follow = d.stack.push("VIP follower", start(func(ctx context.Context) { followVIPs(ctx, d.node, d.vips) }))
	}
	if d.ipvs != nil {
		d.startIPVS()
	}
	d.startReadiness()
	if err := d.startBGP(); err != nil {
		return err
	}
	if d.verdictHooks {
		d.stop.verdicts = d.stack.push("verdict hooks", start(d.watchVerdicts))
	}
	d.stop.quorum = d.stack.push("quorum watch", start(d.watchQuorum))
	return nil
}

// startHooks starts the notify hooks (checked and built before anything
// that reports to them).
func (d *daemon) startHooks() error {
	d.newNotifier()
	return nil
}

// join asks the member --join names to add this node, until it has. A
// join the cluster refuses stops the daemon with the reason: this node
// cannot become a member as started (its ID is a live member's at another
// address, or a dead one's without --replace, or not its certificate's).
func (d *daemon) join() {
	if d.o.join == "" {
		return
	}
	c := &api.Client{Base: d.o.join, Token: d.token, Actor: "ipvsmand@" + d.o.nodeID, PlainFix: server.PlainFix}
	if d.tls != nil {
		c.TLS, c.CA = d.tls.PeerClient(), fmt.Sprintf("--tls-ca %q", d.o.tlsCA)
	} else {
		c.NodeKey = server.NodeKey(d.token)
	}
	req := api.JoinRequest{Member: d.self, Replace: d.o.replace}
	d.stop.join = d.stack.push("join", start(func(ctx context.Context) {
		if err := api.JoinLoop(ctx, c, req, d.log); err != nil && ctx.Err() == nil {
			d.fail(fmt.Errorf("--join %s: %w", d.o.join, err))
		}
	}))
}

// Command ipvsmand is the ipvsman daemon: one director node of the cluster.
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
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
	"github.com/ipvsman/ipvsman/vip"
)

type options struct {
	nodeID, dataDir, raftAddr, apiAddr, apiAdvertise string
	bootstrap                                        bool
	join, tokenFile, ipvs, logLevel, logFormat       string
	readTokenFile                                    string
	limits                                           api.Limits
	exclusive                                        bool
	vips, debugAddr, syncIface                       string
	gossipAddr, gossipProfile                        string
	metrics                                          string
	tlsCert, tlsKey, tlsCA                           string
	version                                          bool
	resync, maxWriteWait                             time.Duration
	timing                                           cluster.Config
	realtime                                         realtime
}

func main() {
	var o options
	cmd := &cobra.Command{
		Use:           "ipvsmand",
		Short:         "ipvsman daemon: one director node of a replicated IPVS cluster",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.version {
				fmt.Printf("ipvsmand %s (protocol %d)\n", cluster.Version, fsm.CommandProtocol)
				return nil
			}
			return run(o)
		},
	}
	f := cmd.Flags()
	host, _ := os.Hostname()
	f.StringVar(&o.nodeID, "node-id", host, "stable, unique name of this node")
	f.StringVar(&o.dataDir, "data-dir", "/var/lib/ipvsman", "directory for the Raft log, snapshots and node identity")
	f.StringVar(&o.raftAddr, "raft-addr", "127.0.0.1:7000", "host:port for Raft traffic, reachable by the other nodes")
	f.StringVar(&o.apiAddr, "api-addr", "127.0.0.1:7080", "host:port the HTTP API listens on (loopback unless told otherwise)")
	f.StringVar(&o.apiAdvertise, "api-advertise", "", "API address other nodes use to reach this one (default: --api-addr)")
	f.BoolVar(&o.bootstrap, "bootstrap", false, "create a new cluster with this node as its first member (ignored when the data dir has state)")
	f.StringVar(&o.join, "join", "", "API address of any member to join through (a new node joins as a non-voter and is promoted once caught up)")
	f.StringVar(&o.gossipAddr, "gossip-addr", "", "host:port for membership gossip (memberlist, encrypted with a key derived from the token; default: the --raft-addr host, port 7946)")
	f.StringVar(&o.gossipProfile, "gossip-profile", "lan", "gossip timing: lan (memberlist's LAN defaults) or local (shorter probes, fewer retransmits); a crashed node is declared dead in about 5-8 s")
	f.DurationVar(&o.timing.PromoteAfter, "promote-after", 3*time.Second, "a joined non-voter becomes a voter once caught up and alive this long")
	f.DurationVar(&o.timing.DeadAfter, "dead-after", 30*time.Second, "report (log, once) a member gossip has seen dead this long")
	f.DurationVar(&o.timing.RemoveDeadAfter, "remove-dead-after", 0, "remove a member gossip has seen dead this long, if at least 3 voters remain and most are alive; 0: never (dead members are only reported)")
	f.BoolVar(&o.version, "version", false, "print the version and command protocol, and exit")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the shared cluster token (required)")
	f.Float64Var(&o.limits.WritesPerSecond, "max-writes-per-second", 50, "writes (POST) one client address may send this node per second, on average; 0: no limit")
	f.IntVar(&o.limits.WriteBurst, "write-burst", 100, "writes one client may send at once before --max-writes-per-second applies")
	f.IntVar(&o.limits.MaxServices, "max-services", 10000, "the most virtual services a write may leave in the configuration; 0: no limit")
	f.IntVar(&o.limits.MaxRealServers, "max-real-servers", 100000, "the most real servers (all services together) a write may leave in the configuration; 0: no limit")
	f.DurationVar(&o.maxWriteWait, "max-write-wait", api.DefaultMaxWriteWait, "the longest a write may wait for the cluster: a client's --timeout is honoured up to this (a client that names none gets "+api.DefaultWriteWait.String()+")")
	f.StringVar(&o.readTokenFile, "read-token-file", "", "file holding a read-only API token (the same on every node): it may read everything and change nothing")
	f.StringVar(&o.ipvs, "ipvs", "on", "program the kernel's IPVS table: on, or off (cluster only, for hosts without IPVS and tests)")
	f.StringVar(&o.vips, "vips", "on", "hold the VIPs while leader and announce them: on, or off (several nodes sharing one network namespace, tests)")
	f.BoolVar(&o.exclusive, "ipvs-exclusive", false, "own the whole IPVS table: also delete services the model never had")
	f.StringVar(&o.syncIface, "sync-interface", "", "interface for IPVS connection sync between the directors (default: the one holding --raft-addr)")
	f.DurationVar(&o.resync, "resync", 10*time.Second, "full reconcile of the kernel table at least this often")
	f.DurationVar(&o.timing.HeartbeatTimeout, "heartbeat-timeout", 150*time.Millisecond, "Raft heartbeat timeout")
	f.DurationVar(&o.timing.ElectionTimeout, "election-timeout", 150*time.Millisecond, "Raft election timeout")
	f.DurationVar(&o.timing.LeaderLeaseTimeout, "leader-lease-timeout", 75*time.Millisecond, "Raft leader lease; must be below the heartbeat timeout so an isolated leader steps down first")
	f.DurationVar(&o.timing.CommitTimeout, "commit-timeout", 20*time.Millisecond, "Raft commit timeout")
	o.realtime.register(f)
	f.StringVar(&o.metrics, "metrics", "on", "serve Prometheus metrics at GET /metrics on the API address, with the read-only or cluster token like any read (docs/metrics.md): on or off")
	f.StringVar(&o.debugAddr, "debug-addr", "", "host:port serving Go's /debug/pprof profiles (unauthenticated: loopback only); empty: off")
	f.StringVar(&o.tlsCert, "tls-cert", "", "this node's certificate (PEM), signed by --tls-ca for server and client use: Raft and the API run over TLS (required unless --raft-addr and --api-addr are loopback; ipvsman tls init makes one)")
	f.StringVar(&o.tlsKey, "tls-key", "", "the private key (PEM) of --tls-cert")
	f.StringVar(&o.tlsCA, "tls-ca", "", "the cluster CA (PEM): nodes must present a certificate it signed")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "text", "text or json")
	registerGenMan(cmd)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ipvsmand:", err)
		os.Exit(1)
	}
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func readToken(flag, path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("%s: missing (writes and joins need the shared cluster token)", flag)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", flag, path, err)
	}
	t := strings.TrimSpace(string(b))
	if len(t) < 16 {
		return "", fmt.Errorf("%s %q: token has %d characters, want at least 16", flag, path, len(t))
	}
	return t, nil
}

// checkLimits refuses negative limits, naming the flag.
func checkLimits(l api.Limits) error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"--max-writes-per-second", l.WritesPerSecond}, {"--write-burst", float64(l.WriteBurst)}, {"--max-services", float64(l.MaxServices)}, {"--max-real-servers", float64(l.MaxRealServers)}} {
		if f.v < 0 {
			return fmt.Errorf("%s %g: want 0 (no limit) or more", f.name, f.v)
		}
	}
	return nil
}

// readOnlyToken reads --read-token-file, if given; it must differ from the
// cluster token, or the read-only role would be the admin's.
func readOnlyToken(path, admin string) (string, error) {
	if path == "" {
		return "", nil
	}
	t, err := readToken("--read-token-file", path)
	if err == nil && t == admin {
		err = fmt.Errorf("--read-token-file %q: the same token as --token-file: a read-only token must differ from the cluster token", path)
	}
	return t, err
}

func run(o options) error {
	log, err := newLogger(o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	o.realtime.apply(log)
	switch o.ipvs {
	case "off":
		log.Info("ipvs programming off: running the cluster only", "node", o.nodeID)
	case "on":
		if err := director.CheckKernel(); err != nil {
			return fmt.Errorf("--ipvs=on: %w; load the ip_vs module (modprobe ip_vs) or run with --ipvs=off", err)
		}
		log.Info("ipvs present in the kernel", "node", o.nodeID)
	default:
		return fmt.Errorf("--ipvs %q: want on or off", o.ipvs)
	}
	if err := fsm.ValidateNodeID(o.nodeID); err != nil {
		return fmt.Errorf("--node-id: %w", err)
	}
	// Before anything else: addresses a crashed predecessor left would
	// answer for a VIP this node does not own.
	var vips *vip.Manager
	wire := &vip.Wire{}
	defer wire.Close()
	switch o.vips {
	case "on":
		if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
			return fmt.Errorf("--data-dir %q: %w", o.dataDir, err)
		}
		vips = &vip.Manager{Node: o.nodeID, Addrs: vip.Netlink{}, Announcer: wire, StateFile: filepath.Join(o.dataDir, "vips.json"), Log: log}
		if err := vips.Start(); err != nil {
			log.Error("vip start-up cleanup incomplete; retrying", "node", o.nodeID, "err", err)
		}
	case "off":
	default:
		return fmt.Errorf("--vips %q: want on or off", o.vips)
	}
	tlsMat, err := loadTLS(o.tlsCert, o.tlsKey, o.tlsCA)
	if err != nil {
		return err
	}
	if err := checkListeners(o.raftAddr, o.apiAddr, o.debugAddr, tlsMat != nil); err != nil {
		return err
	}
	pm, err := newMetrics(o, log)
	if err != nil {
		return err
	}
	if o.debugAddr != "" {
		if err := serveDebug(o.debugAddr, log); err != nil {
			return err
		}
	}
	token, err := readToken("--token-file", o.tokenFile)
	if err != nil {
		return err
	}
	readOnly, err := readOnlyToken(o.readTokenFile, token)
	if err != nil {
		return err
	}
	if o.maxWriteWait <= 0 {
		return fmt.Errorf("--max-write-wait %s: want a positive duration", o.maxWriteWait)
	}
	if err := checkLimits(o.limits); err != nil {
		return err
	}
	if o.bootstrap && o.join != "" {
		return errors.New("--bootstrap and --join: give one, not both")
	}
	ln, err := net.Listen("tcp", o.apiAddr)
	if err != nil {
		return fmt.Errorf("--api-addr %q: %w", o.apiAddr, err)
	}
	advertise := o.apiAdvertise
	if advertise == "" {
		advertise = ln.Addr().String()
	}
	if tlsMat != nil {
		ln = tls.NewListener(ln, tlsMat.APIServer())
	}

	gossipAddr, err := defaultGossipAddr(o.gossipAddr, o.raftAddr)
	if err != nil {
		ln.Close()
		return err
	}
	cfg := o.timing
	cfg.NodeID, cfg.DataDir, cfg.RaftAddr, cfg.APIAddr, cfg.Bootstrap, cfg.Logger = o.nodeID, o.dataDir, o.raftAddr, advertise, o.bootstrap, log
	cfg.TLS = tlsMat
	cfg.Gossip = cluster.GossipConfig{Addr: gossipAddr, Key: cluster.GossipKey(token), Profile: o.gossipProfile}
	cfg.Rejoin = o.join != ""
	hc := newChecks(o.nodeID, log)
	syncWake := make(chan struct{}, 1)
	cfg.Leadership = func(leader bool, reason string) {
		// VIPs first: on a loss nothing may come before dropping them.
		if vips != nil {
			if leader {
				vips.Lead(reason)
			} else {
				vips.Follow(reason)
			}
		}
		hc.lead(leader)
		pm.leadership(leader)
		poke(syncWake)
	}
	fatal := make(chan error, 1)
	cfg.Fatal = func(err error) {
		select {
		case fatal <- err:
		default:
		}
	}
	node, err := cluster.Open(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	self := fsm.Member{ID: o.nodeID, RaftAddr: o.raftAddr, APIAddr: advertise, GossipAddr: gossipAddr}
	srv := &api.Server{Node: node, Token: token, ReadToken: readOnly, Limits: o.limits, Self: self, IPVS: o.ipvs, Log: log, TLS: tlsMat, MaxWait: o.maxWriteWait}
	hc.opened(node)
	srv.Health, srv.Throttle = hc.runner.Statuses, hc.runner.Throttle
	if vips != nil {
		vips.IsLeader = func() bool { return node.IsLeader() && !node.Draining() }
		srv.VIPs = vips.Stats
		go followVIPs(ctx, node, vips)
	}
	if o.ipvs == "on" {
		rec, kernel, err := startReconciler(ctx, node, o, pm.observeReconcile, log)
		if err != nil {
			node.Shutdown(context.Background())
			ln.Close()
			return err
		}
		srv.Director = func() *director.Report { r := rec.Last(); return &r }
		syncd, err := startSync(ctx, node, o, syncWake, log)
		if err != nil {
			node.Shutdown(context.Background())
			ln.Close()
			return err
		}
		srv.Sync = func() *director.SyncReport {
			r := syncd.Last()
			if conns, err := director.ReadConns(); err == nil {
				for _, c := range conns {
					r.Conns++
					if c.Synced {
						r.Synced++
					}
				}
			}
			return &r
		}
		srv.Conns = director.ReadConns
		pm.ipvs(kernel, syncd)
		srv.Kernel = func() (*fsm.Config, ipvsadm.Stats, error) {
			t, st, err := kernel.ReadStats()
			if err != nil {
				return nil, nil, err
			}
			to, err := kernel.Timeouts()
			if err != nil {
				return nil, nil, err
			}
			cfg := t.Config()
			cfg.Timeouts = &to
			return cfg, st, nil
		}
	}
	srv.Metrics = pm.handler(node, vips, hc.runner.Statuses)
	// The server's own log carries refused TLS handshakes (a client with
	// a certificate of another CA, plain HTTP to an https port).
	httpSrv := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.With("node", o.nodeID, "component", "api").Handler(), slog.LevelWarn)}
	go func() {
		if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fatal <- fmt.Errorf("api: %w", err)
		}
	}()
	log.Info("ipvsmand started", "node", o.nodeID, "raft_addr", o.raftAddr, "api_addr", ln.Addr().String(), "ipvs", o.ipvs, "tls", tlsMat != nil)

	if o.join != "" {
		c := &api.Client{Base: o.join, Token: token, Actor: "ipvsmand@" + o.nodeID}
		if tlsMat != nil {
			c.TLS, c.CA = tlsMat.PeerClient(), fmt.Sprintf("--tls-ca %q", o.tlsCA)
		}
		go api.JoinLoop(ctx, c, self, log)
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "node", o.nodeID, "reason", "signal")
	case runErr = <-fatal:
		log.Error("stopping", "node", o.nodeID, "err", runErr)
	}
	defer shutdownWatchdog(log, 25*time.Second)()
	if vips != nil {
		vips.Close("shutdown")
	}
	hc.lead(false)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := node.Shutdown(sctx); err != nil {
		log.Warn("raft shutdown", "err", err)
	}
	_ = httpSrv.Shutdown(sctx)
	log.Info("stopped", "node", o.nodeID)
	return runErr
}

// shutdownWatchdog bounds the shutdown: a step that hangs would keep a
// stopped node's process, and with it its Raft address, alive. After
// limit it logs every goroutine's stack, so the hang can be found, and
// exits. The returned func disarms it.
func shutdownWatchdog(log *slog.Logger, limit time.Duration) func() {
	t := time.AfterFunc(limit, func() {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		log.Error("shutdown did not finish; exiting", "after", limit.String(), "stacks", string(buf))
		os.Exit(4)
	})
	return func() { t.Stop() }
}

// defaultGossipAddr is addr, or the Raft address's host on memberlist's
// usual port.
func defaultGossipAddr(addr, raftAddr string) (string, error) {
	if addr != "" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", fmt.Errorf("--gossip-addr %q: %w", addr, err)
		}
		return addr, nil
	}
	host, _, err := net.SplitHostPort(raftAddr)
	if err != nil {
		return "", fmt.Errorf("--raft-addr %q: %w", raftAddr, err)
	}
	return net.JoinHostPort(host, "7946"), nil
}

// vipTick paces announcements and the second check of leadership.
const vipTick = 10 * time.Millisecond

// followVIPs keeps the VIP manager's copy of the model's VIPs current and
// runs its ticker.
func followVIPs(ctx context.Context, node *cluster.Node, m *vip.Manager) {
	changes := node.Subscribe()
	go m.Run(ctx.Done(), vipTick)
	for {
		var v map[string]fsm.VIP
		node.View(func(s *fsm.State, _ uint64) { v = s.Config.VIPs })
		m.Update(v)
		select {
		case <-ctx.Done():
			return
		case <-changes:
		}
	}
}

// startReconciler makes this node's kernel table follow the replicated
// state: on every change, on the resync timer, and after failures.
func startReconciler(ctx context.Context, node *cluster.Node, o options, observe func(director.Report), log *slog.Logger) (*director.Reconciler, *director.Netlink, error) {
	k, err := director.NewNetlink()
	if err != nil {
		return nil, nil, fmt.Errorf("--ipvs=on: %w", err)
	}
	rec := &director.Reconciler{Kernel: k, Log: log, Exclusive: o.exclusive, Resync: o.resync, Observe: observe}
	changes := node.Subscribe()
	go func() {
		defer k.Close()
		rec.Run(ctx, changes, func() director.Target {
			var t director.Target
			node.View(func(s *fsm.State, applied uint64) {
				t = director.Target{Table: director.Desired(s), Timeouts: s.Config.Timeouts, Managed: director.Managed(s), Version: s.Version, Index: applied}
			})
			return t
		})
	}()
	return rec, k, nil
}

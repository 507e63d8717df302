// Command ipvsmand is the ipvsman daemon: one director node of the cluster.
//
// It is wiring and life cycle: it checks the flags, builds the node's parts
// (the VIP manager, the Raft node, the reconciler and sync threads, the
// health runner, readiness, the API, metrics and hooks) in the order each
// needs the others, routes leadership and state changes between them, and
// stops them in one order, the VIPs first. With its internal server and
// metrics it is the only code that imports cluster, director and vip
// together.
//
// It makes none of their decisions: who leads is the cluster's, what the
// kernel holds the director's, which addresses are up the VIP manager's,
// what the model accepts fsm's.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/cluster/pki"
	"github.com/ipvsman/ipvsman/cluster/release"
	"github.com/ipvsman/ipvsman/cmd/ipvsmand/internal/server"
	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/director/check"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/vip"
)

type options struct {
	nodeID, dataDir, raftAddr, apiAddr, apiAdvertise string
	bootstrap, replace                               bool
	join, tokenFile, ipvs, logLevel, logFormat       string
	readTokenFile                                    string
	limits                                           server.Limits
	exclusive                                        bool
	ipvsSysctls                                      string // ipvs.go
	vips, debugAddr, syncIface                       string
	vipProbeLimit                                    time.Duration
	gossipAddr, gossipProfile                        string
	metrics                                          string
	tlsCert, tlsKey, tlsCA                           string
	checkDir, checkUser                              string
	config                                           string // cmdline.go, reload.go
	version                                          bool
	releaseVIPs                                      bool // releasevips.go
	resync, maxWriteWait                             time.Duration
	resyncCPU                                        float64 // percent of one CPU
	timing                                           cluster.Config
	track                                            trackOptions
	bgp                                              bgpOptions // bgp.go
	notify                                           notifyOptions
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
		RunE: func(c *cobra.Command, _ []string) error {
			if o.version {
				fmt.Printf("ipvsmand %s (protocol %d)\n", release.Version, fsm.CommandProtocol)
				return nil
			}
			if o.releaseVIPs {
				return runReleaseVIPs(o, commandLine(c.Flags()))
			}
			return run(o, commandLine(c.Flags()))
		},
	}
	defineFlags(cmd.Flags(), &o)
	registerGenMan(cmd)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ipvsmand:", err)
		os.Exit(1)
	}
}

// defineFlags defines the daemon's flags on f, into o: on the command
// line's set, and on the sets a --config file is read into (cmdline.go).
func defineFlags(f *pflag.FlagSet, o *options) {
	host, _ := os.Hostname()
	f.StringVar(&o.nodeID, "node-id", host, "stable, unique name of this node")
	f.StringVar(&o.dataDir, "data-dir", "/var/lib/ipvsman", "directory for the Raft log, snapshots and node identity")
	f.StringVar(&o.raftAddr, "raft-addr", "127.0.0.1:7000", "host:port for Raft traffic, reachable by the other nodes")
	f.StringVar(&o.apiAddr, "api-addr", "127.0.0.1:7080", "host:port the HTTP API listens on (loopback unless told otherwise)")
	f.StringVar(&o.apiAdvertise, "api-advertise", "", "API address other nodes use to reach this one (default: --api-addr); off loopback only with the --tls-* flags")
	f.BoolVar(&o.bootstrap, "bootstrap", false, "create a new cluster with this node as its first member (ignored when the data dir has state)")
	f.StringVar(&o.join, "join", "", "API address of any member to join through (a new node joins as a non-voter and is promoted once caught up); off loopback only with the --tls-* flags: the join carries the token")
	f.BoolVar(&o.replace, "replace", false, "with --join (or ipvsman cluster join): take over the --node-id of a dead member recorded at another Raft address; it leaves the configuration and this node joins as a non-voter. Refused while that member is alive. Without it, a join under a known ID at another address is refused")
	f.StringVar(&o.gossipAddr, "gossip-addr", "", "host:port for membership gossip (memberlist, encrypted with a key derived from the token; default: the --raft-addr host, port 7946)")
	f.StringVar(&o.gossipProfile, "gossip-profile", "lan", "gossip timing: lan (memberlist's LAN defaults) or local (shorter probes, fewer retransmits); a crashed node is declared dead in about 5-8 s")
	f.DurationVar(&o.timing.PromoteAfter, "promote-after", cluster.DefaultPromoteAfter, "a joined non-voter becomes a voter once caught up and alive this long")
	f.DurationVar(&o.timing.DeadAfter, "dead-after", cluster.DefaultDeadAfter, "report (log, once) a member gossip has seen dead this long")
	f.DurationVar(&o.timing.RemoveDeadAfter, "remove-dead-after", 0, "remove a member gossip has seen dead this long, if at least 3 voters remain and most are alive; 0: never (dead members are only reported)")
	f.BoolVar(&o.version, "version", false, "print the version and command protocol, and exit")
	f.BoolVar(&o.releaseVIPs, "release-vips", false, "remove from their interfaces the VIP addresses DATA/vips.json records (what a dead daemon of this node left up), and exit; takes the daemon's other flags and --config for --data-dir and ignores the rest. The packaged unit runs it as ExecStopPost, after the daemon ended by any means")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the shared cluster token (required; mode 0600: one group or others may read is refused)")
	f.Float64Var(&o.limits.WritesPerSecond, "max-writes-per-second", 50, "writes (POST) one client address may send this node per second, on average; 0: no limit")
	f.IntVar(&o.limits.WriteBurst, "write-burst", 100, "writes one client may send at once before --max-writes-per-second applies")
	f.IntVar(&o.limits.MaxServices, "max-services", 10000, "the most virtual services a write may leave in the configuration; 0: no limit")
	f.IntVar(&o.limits.MaxRealServers, "max-real-servers", 100000, "the most real servers (all services together) a write may leave in the configuration; 0: no limit")
	f.DurationVar(&o.maxWriteWait, "max-write-wait", api.DefaultMaxWriteWait, "the longest a write may wait for the cluster: a client's --timeout is honoured up to this (a client that names none gets "+api.DefaultWriteWait.String()+")")
	f.StringVar(&o.readTokenFile, "read-token-file", "", "file holding a read-only API token (the same on every node): it may read everything and change nothing; mode 0600 like --token-file")
	f.StringVar(&o.ipvs, "ipvs", "on", "program the kernel's IPVS table: on, or off (cluster only, for hosts without IPVS and tests)")
	f.StringVar(&o.vips, "vips", "on", "hold the VIPs while leader and announce them: on, or off (several nodes sharing one network namespace, tests)")
	f.DurationVar(&o.vipProbeLimit, "vip-probe-limit", vip.DefaultProbeLimit, "before a new leader adds a VIP it sends an ARP probe (IPv4): while another node still answers for the address (a former leader that has not let go yet), it is left to it, for at most this long; 0: no probe")
	f.BoolVar(&o.exclusive, "ipvs-exclusive", false, "own the whole IPVS table: also delete services this node did not create (another tool's, hand-made ones); docs/coexistence.md")
	f.StringVar(&o.ipvsSysctls, "ipvs-sysctls", "", "IPVS sysctls (/proc/sys/net/ipv4/vs) ipvsmand keeps set, name=value separated by commas, e.g. expire_nodest_conn=1,expire_quiescent_template=1; none by default: they are global to the network namespace, other tools' services see them too (the sync ones follow the model's sync setting)")
	f.StringVar(&o.syncIface, "sync-interface", "", "interface for IPVS connection sync between the directors (default: the one holding --raft-addr)")
	f.DurationVar(&o.resync, "resync", 10*time.Second, "drift repair reads the whole kernel table back (a slice of services at a time) and repairs hand edits and flushes this often, unless that costs more than --resync-cpu")
	f.Float64Var(&o.resyncCPU, "resync-cpu", 100*director.DefaultResyncCPU, "the most drift repair may use, in percent of one CPU: a table too large to read back every --resync at this cost is read back as fast as it allows (ipvsman_resync_round_seconds says how fast)")
	f.DurationVar(&o.timing.HeartbeatTimeout, "heartbeat-timeout", cluster.DefaultHeartbeatTimeout, "Raft heartbeat timeout: a follower that has not heard from the leader this long (up to twice this, at random) starts an election")
	f.DurationVar(&o.timing.ElectionTimeout, "election-timeout", cluster.DefaultElectionTimeout, "Raft election timeout: how long a candidate waits for votes before it tries again")
	f.DurationVar(&o.timing.LeaderLeaseTimeout, "leader-lease-timeout", cluster.DefaultLeaderLeaseTimeout, "Raft leader lease: a leader that has not heard from a quorum this long steps down and drops its VIPs; at most the heartbeat timeout. A new leader waits the lease less half the heartbeat timeout before it takes the VIPs, so an isolated leader has let go first; a longer lease rides out longer stalls of a busy leader and adds that much to a failover")
	f.DurationVar(&o.timing.CommitTimeout, "commit-timeout", cluster.DefaultCommitTimeout, "Raft commit timeout")
	o.realtime.register(f)
	f.StringVar(&o.metrics, "metrics", "on", "serve Prometheus metrics at GET /metrics on the API address, with the read-only or cluster token like any read (docs/metrics.md): on or off")
	f.StringVar(&o.debugAddr, "debug-addr", "", "host:port serving Go's /debug/pprof profiles (unauthenticated: loopback only); empty: off")
	f.StringVar(&o.tlsCert, "tls-cert", "", "this node's certificate (PEM), signed by --tls-ca for server and client use: Raft and the API run over TLS (required unless --raft-addr and --api-addr are loopback; ipvsman tls init makes one)")
	f.StringVar(&o.tlsKey, "tls-key", "", "the private key (PEM) of --tls-cert (mode 0600: one group or others may read is refused)")
	f.StringVar(&o.tlsCA, "tls-ca", "", "the cluster CA (PEM): nodes must present a certificate it signed")
	f.StringVar(&o.checkDir, "check-dir", check.DefaultCheckDir, "exec health checks run only programs in this directory, named by their name or path in it (no $PATH, no shell); it, every directory above it and each program must belong to root and not be writable by group or others. Whoever holds the cluster token may run these programs on the leader, as --check-user")
	f.StringVar(&o.checkUser, "check-user", "", "run exec health checks as this user (a name or a uid), with its primary group and no supplementary groups; empty: as the daemon's user (root)")
	registerTrack(f, &o.track)
	registerBGP(f, &o.bgp)
	registerNotify(f, &o.notify)
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "text", "text or json")
	f.StringVar(&o.config, "config", "", "file of flags, one per line (--log-level=debug or log-level = debug; # comments); flags on the command line win over it. SIGHUP reads it again: see SIGNALS")
}

// newLogger logs at level, which a reload may change.
func newLogger(level *slog.LevelVar, format string) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// optionsLogger is the logger o's --log-level and --log-format ask for,
// with the level a reload may change.
func optionsLogger(o options) (*slog.Logger, *slog.LevelVar, error) {
	level := new(slog.LevelVar)
	lv, err := parseLevel(o.logLevel)
	if err != nil {
		return nil, nil, err
	}
	level.Set(lv)
	log, err := newLogger(level, o.logFormat)
	return log, level, err
}

// parseLevel reads --log-level.
func parseLevel(level string) (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return lv, nil
}

// readToken reads a token file, at start and on every reload: one that
// group or others may read or change is refused (pki.ReadSecret), so that
// a reload of a file left readable changes nothing.
func readToken(flag, path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("%s: missing (writes and joins need the shared cluster token)", flag)
	}
	b, err := pki.ReadSecret(flag, path)
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(string(b))
	if len(t) < 16 {
		return "", fmt.Errorf("%s %q: token has %d characters, want at least 16", flag, path, len(t))
	}
	return t, nil
}

// checkResync refuses a drift-repair period or budget that would never
// repair anything or take more than the CPU, naming the flag.
func checkResync(period time.Duration, cpuPct float64) error {
	if period <= 0 {
		return fmt.Errorf("--resync %s: want a positive duration", period)
	}
	if !(cpuPct > 0 && cpuPct <= 100) {
		return fmt.Errorf("--resync-cpu %g: want a percentage of one CPU above 0, at most 100", cpuPct)
	}
	return nil
}

// checkLimits refuses negative limits, naming the flag.
func checkLimits(l server.Limits) error {
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

// run starts the daemon with the command line's flags over the --config
// file's, and serves until SIGTERM or SIGINT; SIGHUP reloads (reload.go).
func run(o options, cmdline map[string][]string) error {
	// First: from here on SIGHUP reloads (once the daemon is up), never
	// kills.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	o, values, err := loadOptions(cmdline, o.config)
	if err != nil {
		return err
	}
	log, level, err := optionsLogger(o)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	setProcs(log)
	o.realtime.apply(log)
	d, err := newDaemon(o, log)
	if err != nil {
		return err
	}
	d.reload.start(cmdline, values, level)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	reloads, stopReloads := context.WithCancel(ctx)
	defer stopReloads()
	wg.Go(func() { d.reloadOn(reloads, hup) })
	return d.run(ctx)
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
// runs its ticker, until ctx ends.
func followVIPs(ctx context.Context, node *cluster.Node, m *vip.Manager) {
	changes := node.Subscribe()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { m.Run(ctx.Done(), vipTick) })
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

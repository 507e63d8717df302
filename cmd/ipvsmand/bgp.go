package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/vip/bgp"
	"github.com/ipvsman/ipvsman/vip/ecmp"
)

// bgpOptions are the flags of the ecmp VIP mode's BGP speaker.
type bgpOptions struct {
	as           uint32
	routerID     string
	peers        []string
	drainTimeout time.Duration
}

func registerBGP(f *pflag.FlagSet, b *bgpOptions) {
	f.Uint32Var(&b.as, "bgp-as", 0, "this node's BGP AS: ecmp VIPs are announced to the --bgp-peer routers while this node is ready; 0 (with no --bgp-peer): BGP off")
	f.StringVar(&b.routerID, "bgp-router-id", "", "BGP router ID, an IPv4 address unique among the routers' peers (default: the --raft-addr host, when it is IPv4)")
	f.StringArrayVar(&b.peers, "bgp-peer", nil, "a router to announce the ecmp VIPs to: ADDRESS,as=N[,bfd][,bfd-interval=300ms][,bfd-multiplier=3][,hold=9s][,local=ADDRESS][,password-file=PATH]; directly connected (repeat for more)")
	f.DurationVar(&b.drainTimeout, "bgp-drain-timeout", 30*time.Second, "on SIGTERM the ecmp VIPs are announced with GRACEFUL_SHUTDOWN (65535:0) and withdrawn once the traffic has left this node's ecmp services (no active connection, or no packet for "+ecmp.DefaultDrainQuiet.String()+"), or after this long")
}

// bgpConfig checks the BGP flags and maps them onto the speaker's
// configuration; ok is false when BGP is off (no --bgp-peer and no
// --bgp-as). raftAddr gives the default router ID.
func bgpConfig(o bgpOptions, raftAddr string) (bgp.Config, bool, error) {
	if len(o.peers) == 0 {
		return bgp.Config{}, false, nil
	}
	if o.as == 0 {
		return bgp.Config{}, false, fmt.Errorf("--bgp-peer %q without --bgp-as: want this node's AS (1 to 4294967295)", o.peers[0])
	}
	if o.drainTimeout < 0 || o.drainTimeout > 5*time.Minute {
		return bgp.Config{}, false, fmt.Errorf("--bgp-drain-timeout %s: want 0 to 5m", o.drainTimeout)
	}
	cfg := bgp.Config{LocalAS: o.as}
	id, err := routerID(o.routerID, raftAddr)
	if err != nil {
		return bgp.Config{}, false, err
	}
	cfg.RouterID = id
	for _, s := range o.peers {
		p, err := parsePeer(s)
		if err != nil {
			return bgp.Config{}, false, err
		}
		cfg.Peers = append(cfg.Peers, p)
	}
	return cfg, true, nil
}

func routerID(flag, raftAddr string) (netip.Addr, error) {
	if flag != "" {
		a, err := netip.ParseAddr(flag)
		if err != nil || !a.Is4() || a.IsUnspecified() {
			return netip.Addr{}, fmt.Errorf("--bgp-router-id %q: want an IPv4 address", flag)
		}
		return a, nil
	}
	host, _, err := net.SplitHostPort(raftAddr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("--raft-addr %q: %w", raftAddr, err)
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Unmap().Is4() || a.IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("--bgp-router-id: the --raft-addr host %q is no IPv4 address to default to; give one", host)
	}
	return a.Unmap(), nil
}

// parsePeer reads one --bgp-peer: an address, then key=value options and
// the bare word bfd, separated by commas.
func parsePeer(s string) (bgp.Peer, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("--bgp-peer %q: %s", s, fmt.Sprintf(format, a...))
	}
	fields := strings.Split(s, ",")
	addr, err := netip.ParseAddr(strings.TrimSpace(fields[0]))
	if err != nil {
		return bgp.Peer{}, bad("want the router's address first (ADDRESS,as=N...), not %q", fields[0])
	}
	p := bgp.Peer{Address: addr}
	var bfd bgp.BFD
	bfdOn, bfdSet := false, false
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "as":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n == 0 {
				return bgp.Peer{}, bad("as=%q: want the router's AS, 1 to 4294967295", v)
			}
			p.AS = uint32(n)
		case "bfd":
			if v != "" {
				return bgp.Peer{}, bad("bfd takes no value (bfd-interval=, bfd-multiplier= set its timers)")
			}
			bfdOn = true
		case "bfd-interval":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return bgp.Peer{}, bad("bfd-interval=%q: want a duration, e.g. 300ms", v)
			}
			bfd.MinTx, bfd.MinRx, bfdSet = d, d, true
		case "bfd-multiplier":
			n, err := strconv.ParseUint(v, 10, 8)
			if err != nil || n == 0 {
				return bgp.Peer{}, bad("bfd-multiplier=%q: want 1 to 255", v)
			}
			bfd.Multiplier, bfdSet = uint8(n), true
		case "hold":
			d, err := time.ParseDuration(v)
			if err != nil {
				return bgp.Peer{}, bad("hold=%q: want a duration, e.g. 9s", v)
			}
			p.HoldTime = d
		case "local":
			a, err := netip.ParseAddr(v)
			if err != nil {
				return bgp.Peer{}, bad("local=%q: want this node's address on the router's subnet", v)
			}
			p.LocalAddress = a
		case "password-file":
			b, err := os.ReadFile(v)
			if err != nil {
				return bgp.Peer{}, bad("password-file: %v", err)
			}
			p.Password = strings.TrimRight(string(b), "\r\n")
			if p.Password == "" {
				return bgp.Peer{}, bad("password-file %q is empty", v)
			}
		default:
			return bgp.Peer{}, bad("unknown option %q: want as=, bfd, bfd-interval=, bfd-multiplier=, hold=, local=, password-file=", k)
		}
	}
	if p.AS == 0 {
		return bgp.Peer{}, bad("as= missing: want the router's AS, e.g. %s,as=65000", addr)
	}
	if bfdSet && !bfdOn {
		return bgp.Peer{}, bad("bfd-interval or bfd-multiplier without bfd")
	}
	if bfdOn {
		p.BFD = &bfd
	}
	return p, nil
}

// ecmpPart is the speaker and the announcer that drives it; nil on a
// node with BGP off.
type ecmpPart struct {
	speaker *bgp.Speaker
	ann     *ecmp.Announcer
	run     *closer // the announcer's goroutine
}

// speakerAdapter gives the announcer the speaker's calls without
// communities.
type speakerAdapter struct{ s *bgp.Speaker }

func (a speakerAdapter) Announce(p netip.Prefix) error { return a.s.Announce(p) }
func (a speakerAdapter) Drain(p netip.Prefix) error    { return a.s.Drain(p) }
func (a speakerAdapter) Withdraw(p netip.Prefix) error { return a.s.Withdraw(p) }

// startBGP starts the speaker and the announcer (BGP on), or watches for
// ecmp VIPs a node without BGP will never announce (BGP off).
func (d *daemon) startBGP() error {
	cfg, on, err := bgpConfig(d.o.bgp, d.o.raftAddr)
	if err != nil {
		return err
	}
	if !on {
		if d.o.bgp.as != 0 {
			d.log.Warn("--bgp-as without --bgp-peer: BGP off", "node", d.o.nodeID, "as", d.o.bgp.as)
		}
		changes := d.node.Subscribe()
		d.stack.push("ecmp without BGP", start(func(ctx context.Context) { d.warnECMPWithoutBGP(ctx, changes) }))
		return nil
	}
	sp, err := bgp.New(cfg, d.log.With("node", d.o.nodeID))
	if err != nil {
		return err
	}
	d.stack.push("BGP speaker", func(context.Context) { _ = sp.Close() })
	catchUp := uint64(cluster.MaxPromoteLag)
	started := d.node.Status().LastLogIndex
	settling := readinessSettle(d.o.track)
	settled := time.Now().Add(settling)
	ann := &ecmp.Announcer{Speaker: speakerAdapter{sp}, Log: d.log, Node: d.o.nodeID,
		Inputs: func() ecmp.Inputs {
			in := d.ecmpInputs(started, catchUp)
			if in.Ready && time.Now().Before(settled) {
				// One reason for the whole wait: each new one is logged.
				in.Ready, in.Reason = false, fmt.Sprintf("readiness settling for %s after start (--track-fall probes)", settling)
			}
			return in
		}}
	// The one wake the settling needs; stopped with the announcer.
	settle := time.AfterFunc(time.Until(settled), func() { poke(d.ecmpWake) })
	d.stack.push("readiness settling", func(context.Context) { settle.Stop() })
	changes := d.node.Subscribe()
	part := &ecmpPart{speaker: sp, ann: ann}
	part.run = d.stack.push("ecmp announcer", start(func(ctx context.Context) {
		var wg sync.WaitGroup
		wg.Go(func() { forward(ctx, changes, d.ecmpWake) })
		ann.Run(ctx, d.ecmpWake, time.Second)
		wg.Wait()
	}))
	d.ecmp = part
	return nil
}

// readinessSettle is how long after start the announcer distrusts a
// "ready": the tracker counts a new probe up until it has failed
// --track-fall times, so a node whose gateway is gone or whose track
// script fails reports ready until then, and leadership may take that
// chance but a route to a node that cannot serve would black-hole its
// share of every VIP. Scripts run every 5th interval.
func readinessSettle(t trackOptions) time.Duration {
	n := time.Duration(max(t.fall, t.rise))
	switch {
	case len(t.scripts) > 0:
		return n*5*t.interval + t.interval
	case len(t.addrs) > 0:
		return n*t.interval + t.interval
	}
	return 0
}

// ecmpInputs reads what the announce decision rests on. Caught up is
// the rule the leader's hand-over uses (cluster.MaxPromoteLag): a
// follower's applied index trails the commit index by an entry or two at
// every write, and withdrawing for that would flap every route on every
// write; a node that restarted is behind until it has applied the log it
// started with (started).
func (d *daemon) ecmpInputs(started uint64, lag uint64) ecmp.Inputs {
	var in ecmp.Inputs
	d.node.View(func(st *fsm.State, _ uint64) { in.VIPs = ecmpVIPs(st) })
	r := d.node.Readiness()
	in.Ready, in.Reason = r.Ready, r.Reason
	if !d.tracked.Load() {
		in.Ready, in.Reason = false, "readiness not checked yet"
	}
	s := d.node.Status()
	switch {
	case s.AppliedIndex < started:
		in.Lag = fmt.Sprintf("applied index %d, below the log it started with (%d)", s.AppliedIndex, started)
	case s.AppliedIndex+lag < s.CommitIndex:
		in.Lag = fmt.Sprintf("applied index %d, commit index %d", s.AppliedIndex, s.CommitIndex)
	default:
		in.CaughtUp = true
	}
	in.KernelOK = true
	if p := d.ipvs; p != nil {
		rep := p.rec.Last()
		switch {
		case rep.At.IsZero():
			in.KernelOK, in.Kernel = false, "not applied yet"
		case rep.Failed > 0:
			in.KernelOK, in.Kernel = false, fmt.Sprintf("%d operations failing", rep.Failed)
		}
	}
	return in
}

// ecmpVIPs lists the model's ecmp VIPs.
func ecmpVIPs(st *fsm.State) []netip.Prefix {
	var out []netip.Prefix
	for _, v := range st.Config.VIPs {
		if v.ECMP() {
			out = append(out, v.Prefix)
		}
	}
	return out
}

// warnECMPWithoutBGP logs once per change of their number that the model
// has ecmp VIPs this node (BGP off) never announces.
func (d *daemon) warnECMPWithoutBGP(ctx context.Context, changes <-chan struct{}) {
	said := 0
	for {
		var n int
		d.node.View(func(st *fsm.State, _ uint64) { n = len(ecmpVIPs(st)) })
		if n > 0 && n != said {
			d.log.Warn("ecmp VIPs in the model, but BGP is off on this node: it never announces them (give --bgp-as and --bgp-peer)", "node", d.o.nodeID, "vips", n)
		}
		said = n
		select {
		case <-ctx.Done():
			return
		case <-changes:
		}
	}
}

// drainECMP is the first step of a shutdown with BGP on: the routers move
// the flows away (GRACEFUL_SHUTDOWN) while this node still serves them,
// then the routes go and the sessions close. Without a kernel (--ipvs=off)
// there are no connections to count and the wait is a short bound.
func (d *daemon) drainECMP() {
	p := d.ecmp
	if p == nil {
		return
	}
	timeout := d.o.bgp.drainTimeout
	var traffic func() (ecmp.Traffic, error)
	if d.ipvs != nil {
		traffic = d.ecmpTraffic
	} else {
		timeout = min(timeout, 2*time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+5*time.Second)
	defer cancel()
	p.ann.Drain(ctx, timeout, traffic)
	p.run.close(ctx)
	if err := p.speaker.Close(); err != nil {
		d.log.Warn("bgp speaker close", "node", d.o.nodeID, "err", err)
	}
	d.log.Info("ecmp drain done; shutting down the rest", "node", d.o.nodeID)
}

// ecmpTraffic sums the active connections and packets received of this
// node's ecmp services: the kernel's services whose address is an ecmp
// VIP's (fwmark services name no address and are not counted).
func (d *daemon) ecmpTraffic() (ecmp.Traffic, error) {
	var vips []netip.Prefix
	d.node.View(func(st *fsm.State, _ uint64) { vips = ecmpVIPs(st) })
	tbl, stats, err := d.ipvs.kernel.ReadStats()
	if err != nil {
		return ecmp.Traffic{}, fmt.Errorf("read the kernel's IPVS table: %w", err)
	}
	var tr ecmp.Traffic
	for key, svc := range tbl {
		if !svc.Key.Address.IsValid() {
			continue
		}
		for _, v := range vips {
			if v.Contains(svc.Key.Address) {
				tr.Active += int(stats[key].ActiveConns)
				tr.InPkts += stats[key].InPkts
				break
			}
		}
	}
	return tr, nil
}

// bgpStatus is the node status's BGP section: nil with BGP off and no
// ecmp VIP in the model.
func (d *daemon) bgpStatus() *api.BGPStatus {
	var vips []netip.Prefix
	d.node.View(func(st *fsm.State, _ uint64) { vips = ecmpVIPs(st) })
	p := d.ecmp
	if p == nil && len(vips) == 0 {
		return nil
	}
	out := &api.BGPStatus{On: p != nil, VIPs: prefixStrings(vips)}
	if p == nil {
		return out
	}
	a := p.ann.Status()
	out.Announced, out.Draining, out.Why = prefixStrings(a.Announced), a.Draining, a.Why
	out.Announcements, out.Withdrawals = a.Announcements, a.Withdrawals
	peers, err := p.speaker.Peers()
	if err != nil {
		out.PeersErr = err.Error()
	}
	for _, ps := range peers {
		out.Peers = append(out.Peers, api.BGPPeer{Address: ps.Address.String(), AS: ps.AS, State: ps.State, BFD: ps.BFD, Since: ps.Since, Advertised: prefixStrings(ps.Announced)})
	}
	return out
}

func prefixStrings(ps []netip.Prefix) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

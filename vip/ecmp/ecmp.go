// Package ecmp decides which ecmp VIPs this node announces over BGP and
// applies the decision to a speaker (vip/bgp): every prefix while the node
// can serve, none the moment it cannot, and a planned drain on shutdown.
//
// Decide is pure; Announcer holds what was applied and is stepped by its
// owner on every change of the inputs (Run), so tests drive it with a
// recording speaker and hand-built inputs.
package ecmp

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Inputs are the facts the decision rests on, read by the daemon.
type Inputs struct {
	// VIPs are the prefixes of the model's ecmp VIPs.
	VIPs []netip.Prefix
	// Ready is the VIP tracker's verdict (links, gateway, scripts, kernel
	// table applied); Reason says why not.
	Ready  bool
	Reason string
	// CaughtUp is false while this node's state lags the cluster's log
	// (Lag says how): it would direct by an older model.
	CaughtUp bool
	Lag      string
	// KernelOK is false while the kernel table is not the model's (the
	// reconciler's last pass failed or none ran yet); Kernel says why.
	KernelOK bool
	Kernel   string
}

const whyLag = "not caught up: "

// Decide returns the prefixes to announce now, sorted, and, when there
// are ecmp VIPs but none may be announced, why not.
func Decide(in Inputs) ([]netip.Prefix, string) {
	var why string
	switch {
	case !in.Ready:
		why = "not ready: " + in.Reason
	case !in.CaughtUp:
		why = whyLag + in.Lag
	case !in.KernelOK:
		why = "kernel table: " + in.Kernel
	}
	if why != "" {
		if len(in.VIPs) == 0 {
			return nil, ""
		}
		return nil, why
	}
	out := slices.Clone(in.VIPs)
	slices.SortFunc(out, cmpPrefix)
	return slices.Compact(out), ""
}

// Speaker is the part of vip/bgp.Speaker the announcer uses.
type Speaker interface {
	Announce(prefix netip.Prefix) error
	Drain(prefix netip.Prefix) error
	Withdraw(prefix netip.Prefix) error
}

// Status is what the announcer has applied.
type Status struct {
	Announced []netip.Prefix // sorted
	Draining  bool           // a planned drain is under way (shutdown)
	// Why is the reason nothing is announced although ecmp VIPs exist.
	Why string
	// Announcements and Withdrawals count prefixes announced and withdrawn
	// since start.
	Announcements, Withdrawals uint64
}

// Announcer applies Decide to a speaker. Step and Drain may be called
// from any goroutine; Run is the usual caller of Step.
type Announcer struct {
	Speaker Speaker
	Inputs  func() Inputs
	Log     *slog.Logger
	Node    string
	// DrainQuiet: a drain ends once no packet has reached this node's
	// ecmp services for this long; 0: DefaultDrainQuiet.
	DrainQuiet time.Duration

	mu        sync.Mutex
	announced map[netip.Prefix]bool
	failed    map[netip.Prefix]bool // announce or withdraw failed: retried
	draining  bool
	why       string
	ann, wd   uint64
}

// Step reads the inputs and announces or withdraws what differs. After a
// drain began it does nothing: the drain owns the announcements. It
// returns whether to step again later without a wake: a speaker call
// failed, or ecmp VIPs are withheld. A node catching up after a restart
// is told of each entry its state machine applies, but the log's last
// entries may be Raft's own (configuration, no-op), which change no state
// and so wake nobody: a restarted node stayed withdrawn until the next
// write.
func (a *Announcer) Step() bool {
	in := a.Inputs()
	want, why := Decide(in)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.draining {
		return false
	}
	if a.announced == nil {
		a.announced, a.failed = map[netip.Prefix]bool{}, map[netip.Prefix]bool{}
	}
	failed := false
	keep := map[netip.Prefix]bool{}
	for _, p := range want {
		keep[p] = true
	}
	for _, p := range slices.SortedFunc(maps.Keys(a.announced), cmpPrefix) {
		if keep[p] {
			continue
		}
		reason := why
		if reason == "" {
			reason = "no longer an ecmp VIP of the model"
		}
		if err := a.Speaker.Withdraw(p); err != nil {
			a.Log.Error("bgp withdraw failed; retrying", "node", a.Node, "prefix", p, "reason", reason, "err", err)
			failed = true
			continue
		}
		delete(a.announced, p)
		a.wd++
		a.Log.Info("ecmp withdraw", "node", a.Node, "prefix", p, "reason", reason)
	}
	for _, p := range want {
		if a.announced[p] {
			continue
		}
		if err := a.Speaker.Announce(p); err != nil {
			if !a.failed[p] {
				a.Log.Error("bgp announce failed; retrying", "node", a.Node, "prefix", p, "err", err)
			}
			a.failed[p] = true
			failed = true
			continue
		}
		delete(a.failed, p)
		a.announced[p] = true
		a.ann++
		a.Log.Info("ecmp announce", "node", a.Node, "prefix", p, "reason", "ready, caught up, kernel table applied")
	}
	// One line per new reason; a catch-up's moving indexes are one.
	if why != a.why && why != "" && len(a.announced) == 0 && !(catchingUp(why) && catchingUp(a.why)) {
		a.Log.Warn("ecmp VIPs not announced", "node", a.Node, "vips", len(in.VIPs), "reason", why)
	}
	a.why = why
	return failed || why != ""
}

func catchingUp(why string) bool { return strings.HasPrefix(why, whyLag) }

// Run steps once, then on every wake, until ctx ends; when Step asks, it
// steps again after retry. It is the announcer's one goroutine, owned by
// the caller.
func (a *Announcer) Run(ctx context.Context, wake <-chan struct{}, retry time.Duration) {
	for {
		var again <-chan time.Time
		var t *time.Timer
		if a.Step() {
			t = time.NewTimer(retry)
			again = t.C
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-again:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// KernelStatsPeriod is how often the kernel refreshes the IPVS counters
// it reports: its rate estimator copies the per-CPU counts every 2 s, and
// between two copies a service's packet count stands still however much
// traffic arrives.
const KernelStatsPeriod = 2 * time.Second

// DefaultDrainQuiet is how long a drain waits without a packet for this
// node's ecmp services before it takes the traffic to have left: two of
// the kernel's counter refreshes and a second (one refresh alone can fall
// just outside a window of its own length, and a flow still sending would
// look gone), longer than a router takes to act on GRACEFUL_SHUTDOWN and
// than the gaps of a flow that is still sending.
const DefaultDrainQuiet = 2*KernelStatsPeriod + time.Second

// Traffic is what the kernel says of this node's ecmp services.
type Traffic struct {
	Active int    // connections the kernel counts active
	InPkts uint64 // packets received, since the services were created
}

// Drain is the planned shutdown: it stops Step, re-announces every
// announced prefix with GRACEFUL_SHUTDOWN (the speaker's Drain), waits
// until the traffic has left or timeout passes, then withdraws them all.
// Without announcements it returns at once. traffic nil waits for nothing
// (no kernel to read).
//
// The traffic has left when the kernel counts no active connection, or
// when no packet has arrived for DrainQuiet. The second is the usual
// end: a router that honours GRACEFUL_SHUTDOWN moves every flow to the
// other directors at once, established ones included, and the kernel
// keeps counting those connections active until its TCP timeout (15
// minutes by default) although no packet of theirs arrives any more.
// Where this node is the routers' last path they keep sending, and the
// drain waits for the connections to end, or the timeout.
func (a *Announcer) Drain(ctx context.Context, timeout time.Duration, traffic func() (Traffic, error)) {
	a.mu.Lock()
	a.draining = true
	prefixes := slices.SortedFunc(maps.Keys(a.announced), cmpPrefix)
	a.mu.Unlock()
	if len(prefixes) == 0 {
		return
	}
	for _, p := range prefixes {
		if err := a.Speaker.Drain(p); err != nil {
			a.Log.Error("bgp drain failed", "node", a.Node, "prefix", p, "err", err)
			continue
		}
	}
	a.Log.Info("ecmp drain: graceful shutdown announced; waiting for the traffic to leave", "node", a.Node, "prefixes", len(prefixes), "timeout", timeout)
	left, why := a.waitIdle(ctx, timeout, traffic)
	a.Log.Info("ecmp drain: wait over", "node", a.Node, "active_connections", left, "reason", why)
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range prefixes {
		if err := a.Speaker.Withdraw(p); err != nil {
			a.Log.Error("bgp withdraw failed", "node", a.Node, "prefix", p, "err", err)
			continue
		}
		delete(a.announced, p)
		a.wd++
		a.Log.Info("ecmp withdraw", "node", a.Node, "prefix", p, "reason", "shutdown")
	}
}

// waitIdle polls traffic until the traffic has left (see Drain) or
// timeout passes: the kernel tells nobody when a connection ends or a
// flow moves, so this one wait polls (every 200 ms, cheap: one dump of
// this node's services). It returns the connections last counted active
// (-1: never read) and why it ended.
func (a *Announcer) waitIdle(ctx context.Context, timeout time.Duration, traffic func() (Traffic, error)) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if traffic == nil {
		<-ctx.Done()
		return 0, fmt.Sprintf("no kernel table to read: waited %s", timeout)
	}
	quiet := a.DrainQuiet
	if quiet <= 0 {
		quiet = DefaultDrainQuiet
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last, seen := -1, false
	var pkts uint64
	var since time.Time // when pkts was last seen to change
	said := ""          // the read error last logged: each new one once
	for {
		tr, err := traffic()
		now := time.Now()
		switch {
		case err != nil:
			if err.Error() != said {
				a.Log.Warn("ecmp drain: traffic unreadable", "node", a.Node, "err", err)
				said = err.Error()
			}
		case tr.Active == 0:
			return 0, "no active connection left"
		case !seen || tr.InPkts != pkts:
			last, seen, pkts, since = tr.Active, true, tr.InPkts, now
		case now.Sub(since) >= quiet:
			return tr.Active, fmt.Sprintf("no packet for %s: the routers have moved the flows", quiet)
		default:
			last = tr.Active
		}
		select {
		case <-ctx.Done():
			return last, fmt.Sprintf("drain timeout %s passed", timeout)
		case <-tick.C:
		}
	}
}

// Status returns what is applied now.
func (a *Announcer) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Status{
		Announced:     slices.SortedFunc(maps.Keys(a.announced), cmpPrefix),
		Draining:      a.draining,
		Why:           a.why,
		Announcements: a.ann,
		Withdrawals:   a.wd,
	}
}

func cmpPrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

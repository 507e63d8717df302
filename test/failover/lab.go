package failover

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// The addresses every driver uses.
const (
	VIPCIDR = topo.VIP + "/32"
	VIPDev  = "eth0"
	VIPURL  = "http://" + topo.VIP + "/"
	// Prefix keeps the benchmark's namespaces apart from the lab tests'
	// ("lab-"), so both can run on one host.
	Prefix = "fo-"
)

// Lab is the topology with an HTTP server in each director that answers
// with the director's name: whoever holds the VIP answers the client.
type Lab struct {
	Topo      *topo.Topology
	Labtool   string
	Directors []string // "d1", "d2", "d3"
	// Servers are the directors' web servers, in director order.
	Servers []*topo.Proc
}

// NewLab builds the topology with the given prefix (Prefix if "") and no
// IPv6, and starts `labtool serve --name dN --http :80` in each director.
// Root only: it skips the test otherwise.
func NewLab(t testing.TB, labtool, prefix string) *Lab {
	t.Helper()
	if prefix == "" {
		prefix = Prefix
	}
	return NewLabWith(t, labtool, topo.Options{Prefix: prefix, NoIPv6: true})
}

// NewLabWith is NewLab with the topology's options as given (IPv6, say).
func NewLabWith(t testing.TB, labtool string, opts topo.Options) *Lab {
	t.Helper()
	tp := topo.Build(t, opts)
	l := &Lab{Topo: tp, Labtool: labtool}
	for i := 1; i <= topo.Directors; i++ {
		l.Directors = append(l.Directors, topo.Director(i))
	}
	var procs []*topo.Proc
	for _, d := range l.Directors {
		procs = append(procs, tp.Start(d, labtool, "serve", "--name", d,
			"--http", ":"+strconv.Itoa(topo.HTTPPort), "--echo", "", "--dns", ""))
	}
	for i, p := range procs {
		if err := p.WaitLine("ready", 30*time.Second); err != nil {
			t.Fatalf("server in %s: %v", l.Directors[i], err)
		}
	}
	l.Servers = procs
	return l
}

// Driver is one way of running the three directors: keepalived or ipvsman.
type Driver interface {
	// Crash kills node's VIP software with SIGKILL and cuts its link, back
	// to back, and returns the instant just before the kill.
	Crash(node string) time.Time
	// Restore brings a crashed node back: its software is started while
	// the link is still cut, then beforeLinkUp runs, then the link comes
	// back.
	Restore(node string, beforeLinkUp func())
	// Ready reports why the directors are not yet in steady state beyond
	// what the Rig sees (nil when they are).
	Ready() error
}

// Rig is a Lab with its instruments: one Observer of the VIP on every
// director and one Poller of the VIP from the client.
type Rig struct {
	Lab  *Lab
	Obs  *Observer
	Poll *Poller

	// StableTimeout bounds Stable; RecoverTimeout bounds the wait for the
	// first answer after a fault.
	StableTimeout, RecoverTimeout time.Duration
	// Streak is how many answers in a row from the holder Stable wants.
	Streak int
	// Jitter: each fault comes a random [0, Jitter) after steady state is
	// reached. Without it the fault would fall at the same phase of the
	// protocol's timers every cycle (steady state is itself reached in
	// step with them), and every cycle would measure the same case
	// instead of the spread a real crash at a random moment sees.
	Jitter time.Duration
}

// NewRig starts the Observer and the Poller on a Lab.
func NewRig(t testing.TB, lab *Lab) *Rig {
	t.Helper()
	return &Rig{
		Lab:            lab,
		Obs:            NewObserver(t, lab.Topo, VIPCIDR, lab.Directors...),
		Poll:           StartPoller(t, lab.Topo, lab.Labtool, topo.Client, VIPURL, 0, 0),
		StableTimeout:  90 * time.Second,
		RecoverTimeout: 60 * time.Second,
		Streak:         20,
		Jitter:         time.Second,
	}
}

// Stable waits until exactly one director holds the VIP, the client has
// had r.Streak answers in a row from it (to requests started after that was
// seen), ready returns nil, and the holder has not changed meanwhile. It
// returns the holder.
func (r *Rig) Stable(ready func() error) (string, error) {
	deadline := time.Now().Add(r.StableTimeout)
	var why error
	for time.Now().Before(deadline) {
		if err := r.Obs.WaitFor(func(h []string) bool { return len(h) == 1 }, time.Until(deadline)); err != nil {
			return "", fmt.Errorf("one VIP holder: %w (before that: %v)", err, why)
		}
		holder := r.Obs.Current()
		if len(holder) != 1 {
			continue
		}
		since := time.Now()
		// WaitStreak gives up only at the deadline or when labtool has
		// exited: either way there is nothing left to wait for.
		server, ok := r.Poll.WaitStreak(since, r.Streak, "", deadline)
		if !ok {
			return "", fmt.Errorf("not stable within %s: no %d answers in a row (VIP holders %v; before that: %v): %s",
				r.StableTimeout, r.Streak, r.Obs.Current(), why, r.Poll.Health())
		}
		if server != holder[0] {
			why = fmt.Errorf("%d answers in a row from %s, but the VIP holder was %s", r.Streak, server, holder[0])
			continue
		}
		if ready != nil {
			if err := ready(); err != nil {
				why = err
				// ready runs CLI commands: ask again every 100 ms, not in
				// a tight loop.
				pollPause(deadline, 100*time.Millisecond)
				continue
			}
		}
		if now := r.Obs.Current(); len(now) == 1 && now[0] == holder[0] {
			return holder[0], nil
		}
	}
	if why == nil {
		why = errors.New("no single holder")
	}
	return "", fmt.Errorf("not stable within %s: %w", r.StableTimeout, why)
}

// jitter waits a random [0, r.Jitter): a deliberate random phase, not a
// synchronisation.
func (r *Rig) jitter() {
	if r.Jitter > 0 {
		pollPause(time.Now().Add(r.Jitter), rand.N(r.Jitter))
	}
}

// pollPause waits d, or until deadline if that is sooner.
func pollPause(deadline time.Time, d time.Duration) {
	t := time.NewTimer(min(d, max(time.Until(deadline), 0)))
	defer t.Stop()
	<-t.C
}

// Cycle is one measured failover.
type Cycle struct {
	From     string        // the node crashed, or handed over from
	To       string        // the node whose answer ended the outage
	At       time.Time     // the crash instant, or just before the transfer call
	Recovery time.Duration // At to the end of the first answer from another director to a request started at or after At
	VIPMoved time.Duration // At to when To first had the VIP on eth0 (the Observer's view)
	Failed   int           // requests started in [At, At+Recovery) that failed
	Note     string        // anything odd the measurement saw
}

func (c Cycle) String() string {
	s := fmt.Sprintf("%s -> %s: answered after %s (VIP on %s after %s, %d failed requests)",
		c.From, c.To, c.Recovery.Round(time.Millisecond), c.To, c.VIPMoved.Round(time.Millisecond), c.Failed)
	if c.Note != "" {
		s += "; " + c.Note
	}
	return s
}

// CrashCycle waits for steady state, crashes the VIP holder, measures until
// the client's first answer from another director, restores the node and
// waits for steady state again. The Observer does not count the crashed node from the crash to
// just before its link comes back.
func (r *Rig) CrashCycle(d Driver) (Cycle, error) {
	holder, err := r.Stable(d.Ready)
	if err != nil {
		return Cycle{}, fmt.Errorf("before the crash: %w", err)
	}
	r.jitter()
	if now := r.Obs.Current(); len(now) != 1 || now[0] != holder {
		return Cycle{}, fmt.Errorf("holders changed from %s to %v in steady state", holder, now)
	}
	at := d.Crash(holder)
	r.Obs.CrashedAt(holder, at)
	// The crashed node's own web server lives on for the few milliseconds
	// between the kill and the link cut, and may answer a request started
	// in them: that is not the service coming back.
	c, err := r.measure(holder, at, holder)
	d.Restore(holder, func() { r.Obs.Revived(holder) })
	if err != nil {
		return c, err
	}
	if _, err := r.Stable(d.Ready); err != nil {
		return c, fmt.Errorf("after restoring %s: %w", holder, err)
	}
	return c, nil
}

// PlannedCycle waits for steady state, calls handOver on the holder (which
// returns the instant just before it asked for the hand-over), and measures
// until the first answer from another director: the old holder may go on
// answering until it lets go, and that is no failover yet.
func (r *Rig) PlannedCycle(ready func() error, handOver func(from string) (time.Time, error)) (Cycle, error) {
	holder, err := r.Stable(ready)
	if err != nil {
		return Cycle{}, fmt.Errorf("before the hand-over: %w", err)
	}
	r.jitter()
	if now := r.Obs.Current(); len(now) != 1 || now[0] != holder {
		return Cycle{}, fmt.Errorf("holders changed from %s to %v in steady state", holder, now)
	}
	at, err := handOver(holder)
	if err != nil {
		return Cycle{From: holder, At: at}, fmt.Errorf("hand-over from %s: %w", holder, err)
	}
	c, err := r.measure(holder, at, holder)
	if err != nil {
		return c, err
	}
	if _, err := r.Stable(ready); err != nil {
		return c, fmt.Errorf("after the hand-over from %s: %w", holder, err)
	}
	return c, nil
}

func (r *Rig) measure(from string, at time.Time, not string) (Cycle, error) {
	c := Cycle{From: from, At: at}
	end, server, ok := r.Poll.FirstOKFromOther(at, at.Add(r.RecoverTimeout), not)
	if !ok {
		return c, fmt.Errorf("no answer within %s of the fault on %s: holders now %v; poller: %s",
			r.RecoverTimeout, from, r.Obs.Current(), r.Poll.Health())
	}
	c.To, c.Recovery = server, end.Sub(at)
	if held, ok := r.Obs.FirstHeld(server, at); ok {
		c.VIPMoved = held.Sub(at)
	}
	if c.VIPMoved <= 0 {
		c.Note = fmt.Sprintf("%s had the VIP already at the fault; holders then %v, intervals %s", server, r.Obs.Holders(at), r.intervalsNear(at))
	}
	_, c.Failed = r.Poll.Count(at, end)
	return c, nil
}

// WithReady returns d with its Ready replaced, e.g. by one that also wants
// the cluster's leader to be the VIP holder (Ipvsman.ReadyWith).
func WithReady(d Driver, ready func() error) Driver { return withReady{d, ready} }

type withReady struct {
	Driver
	ready func() error
}

func (w withReady) Ready() error { return w.ready() }

// intervalsNear describes every node's presence intervals that touch the
// 10 s before and after t, relative to t, for a Cycle's Note.
func (r *Rig) intervalsNear(t time.Time) string {
	var b strings.Builder
	for _, d := range r.Lab.Directors {
		fmt.Fprintf(&b, "%s:", d)
		for _, iv := range r.Obs.Intervals(d) {
			if (iv.To.IsZero() || iv.To.After(t.Add(-10*time.Second))) && iv.From.Before(t.Add(10*time.Second)) {
				to := "now"
				if !iv.To.IsZero() {
					to = iv.To.Sub(t).Round(time.Millisecond).String()
				}
				fmt.Fprintf(&b, " [%s, %s)", iv.From.Sub(t).Round(time.Millisecond), to)
			}
		}
		b.WriteString(" ")
	}
	return strings.TrimSpace(b.String())
}

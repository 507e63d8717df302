package main

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/director/check"
	"github.com/ipvsman/ipvsman/director/health"
	"github.com/ipvsman/ipvsman/fsm"
)

// checks runs the health-check runner while this node leads.
type checks struct {
	runner *health.Runner
	loop   *check.Loop                  // nil: every check on its own goroutine
	node   atomic.Pointer[cluster.Node] // set once Open returns
	id     string

	mu      sync.Mutex
	leading bool
	changes <-chan struct{}
}

func newChecks(id string, log *slog.Logger, opts check.Options) *checks {
	c := &checks{id: id}
	c.runner = &health.Runner{Build: func(spec fsm.HealthCheck) (health.Probe, error) { return probe(spec, opts) }, Commit: c.commit, Log: log}
	loop, err := check.NewLoop()
	if err != nil {
		log.Warn("health checks: no event loop; every check on its own goroutine", "err", err)
		return c
	}
	c.loop = loop
	c.runner.LoopThrottle = loop.Throttle
	c.runner.Schedule = func(spec fsm.HealthCheck, t netip.AddrPort, first time.Duration, done func(health.Outcome) time.Duration) (func(), bool) {
		ck, err := check.New(spec, opts)
		if err != nil {
			return nil, false // Build has reported it
		}
		interval := time.Duration(spec.IntervalMS) * time.Millisecond
		timeout := time.Duration(spec.TimeoutMS) * time.Millisecond
		return loop.Add(ck, t, interval, timeout, first, func(r check.Result) time.Duration {
			return done(health.Outcome{OK: r.OK, Latency: r.Latency, Detail: r.Detail, Weight: r.Weight})
		})
	}
	return c
}

// probe adapts a checker to the runner.
func probe(spec fsm.HealthCheck, opts check.Options) (health.Probe, error) {
	ck, err := check.New(spec, opts)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, t netip.AddrPort) health.Outcome {
		r := ck.Check(ctx, t)
		return health.Outcome{OK: r.OK, Latency: r.Latency, Detail: r.Detail, Weight: r.Weight}
	}, nil
}

var errNotOpen = errors.New("raft node not open yet")

func (c *checks) commit(ctx context.Context, tick uint64, ch []fsm.VerdictChange) error {
	n := c.node.Load()
	if n == nil {
		return errNotOpen
	}
	_, err := n.Propose(ctx, fsm.CmdSetVerdicts, fsm.SetVerdictsPayload{Verdicts: ch, Tick: tick}, "ipvsmand@"+c.id)
	return err
}

// opened hands over the node; the state's change signal is subscribed once.
// Leadership gained while Open ran is acted on here.
func (c *checks) opened(n *cluster.Node) {
	c.mu.Lock()
	c.changes = n.Subscribe()
	c.node.Store(n)
	leading := c.leading
	c.mu.Unlock()
	c.lead(leading)
}

// lead starts or stops the runner. A loss stops it at once and waits
// until no probe runs and no verdict can be proposed; a gain starts it
// from the committed verdicts (the caller has passed the Barrier).
func (c *checks) lead(leader bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leading = leader
	n := c.node.Load()
	if !leader || n == nil {
		c.runner.Stop()
		return
	}
	c.runner.Start(c.changes, func() *fsm.State {
		// Configs are immutable once committed; the verdict map is
		// updated in place by Apply, so the runner gets a copy.
		var st fsm.State
		n.View(func(s *fsm.State, _ uint64) {
			st = fsm.State{Config: s.Config, Verdicts: maps.Clone(s.Verdicts)}
		})
		return &st
	})
}

// close stops the runner and the check loop (shutdown).
func (c *checks) close() {
	c.lead(false)
	if c.loop != nil {
		c.loop.Close()
	}
}

package health

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// Outcome is the result of one check.
type Outcome struct {
	OK      bool
	Latency time.Duration
	Detail  string
	Weight  *int // an exec check's "weight N"; nil: none
}

// Probe runs one check against target; it must honour ctx's deadline.
type Probe func(ctx context.Context, target netip.AddrPort) Outcome

// Status is what the leader knows of one real server's checks.
type Status struct {
	Service string        `json:"service"`
	Server  string        `json:"server"`
	Type    string        `json:"type"`
	Target  string        `json:"target"`
	Health  fsm.Health    `json:"health"`
	OK      bool          `json:"ok"` // the last check
	Detail  string        `json:"detail,omitempty"`
	Latency time.Duration `json:"latency_ns"`
	At      time.Time     `json:"at,omitzero"`
	Checks  uint64        `json:"checks"`
}

// Runner checks every real server that has a check while this node leads.
type Runner struct {
	// Build makes the probe for a check (check.New, adapted, in the daemon).
	Build func(fsm.HealthCheck) (Probe, error)
	// Schedule, when set, hands a check to an event loop (check.Loop, in
	// the daemon) that runs it every interval, the first after first, and
	// reports each outcome to done; ok false: the loop cannot run it, and
	// it runs on a goroutine with the probe Build made. stop ends it.
	// done returns when the next check is due: after that long when
	// positive (a retry, see HealthCheck.RetryDelayMS), else an interval
	// after the last began.
	Schedule func(spec fsm.HealthCheck, target netip.AddrPort, first time.Duration, done func(Outcome) time.Duration) (stop func(), ok bool)
	// LoopThrottle reports the loop's bound on checks in flight and its
	// most (check.Loop.Throttle); nil without a loop.
	LoopThrottle func() (limit, ceiling int)
	// Commit proposes one set-verdicts command; tick is the number of the
	// runner's tick that flushed it (fsm.SetVerdictsPayload.Tick).
	Commit func(ctx context.Context, tick uint64, changes []fsm.VerdictChange) error
	Log    *slog.Logger
	// Tick is how often pending transitions are committed (default 200 ms).
	Tick time.Duration
	// Workers bounds the checks running at once (default 1024); the
	// bound in force shrinks below it while this process is short of CPU
	// (see limit.go).
	Workers int
	// SchedP90 reports the scheduling latency each tick (tests); nil: the
	// Go runtime's.
	SchedP90 func() time.Duration

	// runMu is held by the one Run in progress: a Run waits for the
	// previous one (and every check goroutine it started) to exit, so a
	// run being stopped never touches the jobs of the next.
	runMu sync.Mutex
	// ticks counts the runner's ticks over every run, so that a tick's
	// number never repeats within a process; only Run touches it, under
	// runMu.
	ticks uint64
	// owner: the run Start began (cancel, and closed when it exited).
	ownMu     sync.Mutex
	ownCancel context.CancelFunc
	ownDone   chan struct{}

	mu          sync.Mutex
	loopLimited bool        // the loop's bound was below its most at the last tick
	config      *fsm.Config // the config the jobs were made from
	jobs        map[string]*job
	pending     map[string]fsm.VerdictChange
	limit       *limiter
	checks      *sync.WaitGroup // the check goroutines of the run in progress
}

type job struct {
	key, service, server string
	spec                 fsm.HealthCheck
	target               netip.AddrPort
	probe                Probe
	tracker              *Tracker
	weight               *int // the verdict's weight, as committed or pending
	status               Status
	cancel               context.CancelFunc
}

// Start runs the checks on a goroutine the Runner owns (leadership
// gained): Run, after stopping and awaiting the run an earlier Start
// began. Stop ends it.
func (r *Runner) Start(changes <-chan struct{}, view func() *fsm.State) {
	r.ownMu.Lock()
	defer r.ownMu.Unlock()
	r.stopOwned()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.ownCancel, r.ownDone = cancel, done
	go func() {
		defer close(done)
		r.Run(ctx, changes, view)
	}()
}

// Stop ends the run Start began (leadership lost, shutdown) and returns
// once it and every check goroutine it started have exited: no probe runs
// and no verdict is proposed after it returns. Without a run it returns
// at once.
func (r *Runner) Stop() {
	r.ownMu.Lock()
	defer r.ownMu.Unlock()
	r.stopOwned()
}

func (r *Runner) stopOwned() {
	if r.ownCancel == nil {
		return
	}
	r.ownCancel()
	<-r.ownDone
	r.ownCancel, r.ownDone = nil, nil
}

// Run checks until ctx ends (leadership lost). view returns the current
// state; changes signals that it changed. It begins once an earlier Run
// has returned, and returns once every check goroutine it started has
// exited (the loop's checks are stopped; a result the loop still
// delivers is ignored). A caller that runs it on a goroutine owns that
// goroutine; Start and Stop do it for the caller.
func (r *Runner) Run(ctx context.Context, changes <-chan struct{}, view func() *fsm.State) {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	if ctx.Err() != nil {
		return // stopped before the previous run let it begin
	}
	var checks sync.WaitGroup
	defer checks.Wait()
	r.mu.Lock()
	r.checks = &checks
	r.config = nil
	r.jobs = map[string]*job{}
	r.pending = map[string]fsm.VerdictChange{}
	workers := r.Workers
	if workers <= 0 {
		workers = 1024
	}
	lim := newLimiter(workers)
	r.limit = lim
	r.mu.Unlock()
	sched := r.SchedP90
	if sched == nil {
		sched = newSchedLatency().p90
	}
	r.sync(ctx, view())
	tick := r.Tick
	if tick <= 0 {
		tick = 200 * time.Millisecond
	}
	// A timer restarted after each flush, not a ticker: a commit slower
	// than a tick (a loaded leader) must not be followed at once by the
	// tick that queued meanwhile. Proposals are then at least a tick
	// apart: one Raft entry per tick, however slow the commits.
	t := time.NewTimer(tick)
	defer t.Stop()
	defer r.stopAll()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
			r.sync(ctx, view())
		case <-t.C:
			r.ticks++
			r.throttle(lim, sched())
			r.mu.Lock()
			idle := len(r.pending) == 0
			r.mu.Unlock()
			if !idle {
				r.flush(ctx, view(), r.ticks)
			}
			t.Reset(tick)
		}
	}
}

// InFlightLimit is the bound on checks in flight now (0: not running).
func (r *Runner) InFlightLimit() int {
	l, _ := r.Throttle()
	return l
}

// Throttle is the bound on checks in flight now and the most it may be;
// below the most, checks are held back for want of capacity. Of the
// goroutines' bound and the loop's, it is the one holding checks back, or
// the goroutines'. Zeros: not running.
func (r *Runner) Throttle() (limit, ceiling int) {
	r.mu.Lock()
	lim := r.limit
	r.mu.Unlock()
	if lim == nil {
		return 0, 0
	}
	l, _, _ := lim.state()
	if r.LoopThrottle != nil && l == lim.max {
		if ll, lc := r.LoopThrottle(); ll < lc {
			return ll, lc
		}
	}
	return l, lim.max
}

// Statuses returns the last result of every check, sorted.
func (r *Runner) Statuses() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Status, 0, len(r.jobs))
	for _, k := range slices.Sorted(maps.Keys(r.jobs)) {
		out = append(out, r.jobs[k].status)
	}
	return out
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

func (r *Runner) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, j := range r.jobs {
		j.cancel()
	}
	r.jobs = map[string]*job{}
}

// wanted lists the checks the state asks for, by verdict key: of every
// service, or of those in only when it is not nil.
func wanted(st *fsm.State, only map[string]bool) map[string]*job {
	out := map[string]*job{}
	for sk, svc := range st.Config.Services {
		if only != nil && !only[sk] {
			continue
		}
		for rk, rs := range svc.Servers {
			spec := svc.Check
			if rs.Check != nil {
				spec = rs.Check
			}
			if spec == nil {
				continue
			}
			s := spec.WithDefaults()
			target := netip.AddrPortFrom(rs.Address, rs.Port)
			if s.Address.IsValid() {
				target = netip.AddrPortFrom(s.Address, target.Port())
			}
			if s.Port != 0 {
				target = netip.AddrPortFrom(target.Addr(), s.Port)
			}
			key := fsm.VerdictKey(sk, rk)
			out[key] = &job{key: key, service: sk, server: rk, spec: s, target: target}
		}
	}
	return out
}

// changedServices names the services of a or b that are not the same
// object in both: added, removed or changed.
func changedServices(a, b *fsm.Config) map[string]bool {
	out := map[string]bool{}
	for k, sa := range a.Services {
		if b.Services[k] != sa {
			out[k] = true
		}
	}
	for k := range b.Services {
		if _, ok := a.Services[k]; !ok {
			out[k] = true
		}
	}
	return out
}

func sameJob(a, b *job) bool {
	return a.target == b.target && fmt.Sprint(a.spec) == fmt.Sprint(b.spec)
}

// sync starts, restarts and stops checks to match the state. Unchanged
// checks keep their trackers.
func (r *Runner) sync(ctx context.Context, st *fsm.State) {
	r.mu.Lock()
	// Configs are immutable once committed: the same pointer is the same
	// checks. Most changes are the runner's own verdicts, which leave the
	// config alone; rebuilding thousands of jobs for each would be waste.
	same, last := st.Config == r.config, r.config
	r.mu.Unlock()
	if same {
		return
	}
	// Services are copy-on-write too: only those that are not the same
	// object as in the last config synced can have other checks. One
	// weight change among 37,205 real servers looks at one service.
	var changed map[string]bool
	if last != nil {
		changed = changedServices(last, st.Config)
	}
	want := wanted(st, changed)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.config = st.Config
	for k, j := range r.jobs {
		if changed != nil && !changed[j.service] {
			continue
		}
		if w, ok := want[k]; !ok || !sameJob(j, w) {
			j.cancel()
			delete(r.jobs, k)
			delete(r.pending, k)
		}
	}
	for k, w := range want {
		if _, ok := r.jobs[k]; ok {
			continue
		}
		p, err := r.Build(w.spec)
		if err != nil {
			r.log().Error("health check not started", "service", w.service, "server", w.server, "err", err)
			continue
		}
		w.probe = p
		w.tracker = NewTracker(w.spec.Rise, w.spec.Fall, st.Verdicts[k].Health)
		w.weight = st.Verdicts[k].Weight
		if w.tracker.Health == "" {
			w.tracker.Health = fsm.HealthUnknown
		}
		w.tracker.Alpha = w.spec.Alpha
		w.status = Status{Service: w.service, Server: w.server, Type: w.spec.Type, Target: w.target.String(), Health: w.tracker.Health}
		if r.Schedule != nil {
			first := phase(w.key, time.Duration(w.spec.IntervalMS)*time.Millisecond)
			if stop, ok := r.Schedule(w.spec, w.target, first, func(o Outcome) time.Duration { return r.observe(w, o, time.Now()) }); ok {
				w.cancel = stop
				r.jobs[k] = w
				continue
			}
		}
		jctx, cancel := context.WithCancel(ctx)
		w.cancel = cancel
		r.jobs[k] = w
		checks, lim := r.checks, r.limit
		checks.Add(1)
		go func() {
			defer checks.Done()
			r.loop(jctx, w, lim)
		}()
	}
}

// throttle adjusts the bound on checks in flight, logging when checks
// start and stop being held back.
func (r *Runner) throttle(lim *limiter, p90 time.Duration) {
	r.throttleLoop()
	before, _, _ := lim.state()
	after := lim.adjust(p90)
	if before == after || (before < lim.max && after < lim.max) {
		return
	}
	_, inFlight, waiting := lim.state()
	if after < lim.max {
		r.log().Warn("health checks throttled: short of CPU", "in_flight_limit", after, "sched_latency_p90", p90.String(),
			"in_flight", inFlight, "waiting", waiting)
	} else {
		r.log().Info("health checks no longer throttled", "in_flight_limit", after, "sched_latency_p90", p90.String())
	}
}

// throttleLoop logs when the loop starts and stops holding checks back.
func (r *Runner) throttleLoop() {
	if r.LoopThrottle == nil {
		return
	}
	l, c := r.LoopThrottle()
	r.mu.Lock()
	was := r.loopLimited
	r.loopLimited = l < c
	r.mu.Unlock()
	switch {
	case l < c && !was:
		r.log().Warn("health checks throttled: checks of answering servers time out or answer late", "in_flight_limit", l, "in_flight_max", c)
	case l >= c && was:
		r.log().Info("health checks no longer throttled", "in_flight_limit", l)
	}
}

// phase spreads first checks over the interval, the same for a key on
// every leader, so that thousands of checks do not fire together.
func phase(key string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(key))
	return time.Duration(h.Sum64() % uint64(interval))
}

func (r *Runner) loop(ctx context.Context, j *job, lim *limiter) {
	interval := time.Duration(j.spec.IntervalMS) * time.Millisecond
	timeout := time.Duration(j.spec.TimeoutMS) * time.Millisecond
	timer := time.NewTimer(phase(j.key, interval))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		if !lim.acquire(ctx) {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		o := j.probe(cctx, j.target)
		cancel()
		lim.release()
		if ctx.Err() != nil {
			return
		}
		if retry := r.observe(j, o, time.Now()); retry > 0 {
			timer.Reset(retry)
		} else {
			timer.Reset(max(interval-time.Since(start), 0))
		}
	}
}

// observe takes one outcome of j's check. It returns the delay before
// the next check when that is a retry (keepalived's delay_before_retry):
// the check has RetryDelayMS and the server is up with failures not yet
// enough to take it down; else 0, the interval.
func (r *Runner) observe(j *job, o Outcome, at time.Time) (retry time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.jobs[j.key] != j {
		return 0 // replaced or stopped meanwhile
	}
	j.status.OK, j.status.Detail, j.status.Latency, j.status.At = o.OK, o.Detail, o.Latency, at
	j.status.Checks++
	flipped := j.tracker.Observe(o.OK)
	if j.spec.RetryDelayMS > 0 && j.tracker.Confirming() {
		retry = time.Duration(j.spec.RetryDelayMS) * time.Millisecond
	}
	reweighed := o.OK && o.Weight != nil && !sameWeight(j.weight, o.Weight)
	if reweighed {
		w := *o.Weight
		j.weight = &w
	}
	if !flipped && !reweighed {
		return retry
	}
	j.status.Health = j.tracker.Health
	reason := fmt.Sprintf("%s check: %s", j.spec.Type, o.Detail)
	r.pending[j.key] = fsm.VerdictChange{Service: j.service, Server: j.server, Health: j.tracker.Health, Weight: j.weight, Reason: reason}
	r.log().Info("health transition", "service", j.service, "server", j.server, "health", string(j.tracker.Health), "detail", o.Detail,
		"latency", o.Latency.String())
	return retry
}

// flush commits the pending transitions as one command. Those whose real
// server has left the model are dropped; a failed commit is retried next
// tick. tick is the number of the tick flushing them.
func (r *Runner) flush(ctx context.Context, st *fsm.State, tick uint64) {
	r.mu.Lock()
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return
	}
	batch := make([]fsm.VerdictChange, 0, len(r.pending))
	for _, k := range slices.Sorted(maps.Keys(r.pending)) {
		c := r.pending[k]
		svc := st.Config.Services[c.Service]
		if svc == nil || svc.Servers[c.Server] == nil || (st.Verdicts[k].Health == c.Health && sameWeight(st.Verdicts[k].Weight, c.Weight)) {
			delete(r.pending, k)
			continue
		}
		batch = append(batch, c)
	}
	r.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := r.Commit(ctx, tick, batch); err != nil {
		r.log().Warn("health verdicts not committed; retrying", "transitions", len(batch), "tick", tick, "err", err)
		return
	}
	r.mu.Lock()
	for _, c := range batch {
		k := fsm.VerdictKey(c.Service, c.Server)
		if p, ok := r.pending[k]; ok && p.Health == c.Health && sameWeight(p.Weight, c.Weight) {
			delete(r.pending, k)
		}
	}
	r.mu.Unlock()
	r.log().Info("health verdicts committed", "transitions", len(batch), "tick", tick)
}

func sameWeight(a, b *int) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

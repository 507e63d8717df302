package director

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// Kernel is the reconciler's only door to IPVS: read the table, apply one
// operation. Netlink implements it over director/ipvsnl; tests use a
// recording fake.
type Kernel interface {
	Read() (Table, error)
	Apply(Op) error
	Timeouts() (fsm.Timeouts, error)
	SetTimeouts(fsm.Timeouts) error
}

// Target is what the kernel must hold, computed from one state.
type Target struct {
	Table    Table
	Timeouts *fsm.Timeouts // nil: leave the kernel's alone
	Version  uint64        // configuration version
	Index    uint64        // Raft index of the state
	// Changed, when not nil, names every service whose entry in Table
	// differs from the table of the target at index Base (added, changed
	// or removed): a pass whose kernel holds that table plans only these.
	Base    uint64
	Changed map[string]bool
}

// Report is the outcome of one reconcile pass.
type Report struct {
	Index   uint64 `json:"index"`
	Version uint64 `json:"version"`
	// Fingerprint of the managed kernel table as read back from the kernel
	// by the last full pass or complete drift-repair round, digested like
	// the target; KernelIndex is the applied index whose table the kernel
	// should have held then (0: not known, e.g. the first dump, or one
	// after a failed pass), and Drift names the services where it held
	// something else (at most ten; Drifted counts them all). Passes that
	// do not read the kernel back carry these over.
	Fingerprint string    `json:"fingerprint"`
	KernelIndex uint64    `json:"kernel_index"`
	KernelAt    time.Time `json:"kernel_at,omitzero"`
	Drift       []string  `json:"drift,omitempty"`
	Drifted     int       `json:"drifted,omitempty"`
	// TargetFingerprint is the table this pass meant to program (the
	// model's), once every operation succeeded; empty after a failure.
	TargetFingerprint string    `json:"target_fingerprint"`
	Services          int       `json:"services"`
	Ops               int       `json:"ops"`
	Failed            int       `json:"failed"`
	Errors            []string  `json:"errors,omitempty"`
	At                time.Time `json:"at"`
	Took              string    `json:"took"`
}

// Reconciler is the one writer of the kernel's IPVS table. Each pass reads
// the kernel, plans the difference to the target and applies it; one failed
// operation never stops the others, and failures are retried with backoff.
type Reconciler struct {
	Kernel Kernel
	Log    *slog.Logger
	// Owned is the services this node created or took over: a service
	// that leaves the model is deleted only if it is one of them (nil: a
	// record in memory, made at the first pass).
	Owned     *Owned
	Exclusive bool // also delete services that are not ours
	// Resync is how often drift repair reads the whole table back (hand
	// edits, flushes), unless that would cost more than ResyncBudget, a
	// share of one CPU (0: DefaultResyncCPU); then it reads as fast as
	// the budget allows.
	Resync       time.Duration
	ResyncBudget float64
	Clock        func() time.Time
	// Observe, when set, is handed every pass's report as it is recorded
	// (the metrics' duration histogram and error counter, which must see
	// every pass, not only the last one a scrape finds). It runs on the
	// reconciler's goroutine: it must not block.
	Observe func(Report)

	mu         sync.Mutex
	last       Report
	cache      Table             // what the last successful pass left in the kernel; nil = unknown
	digests    map[string]uint64 // per-service fingerprint digests of cache
	cacheIndex uint64            // the index of the target cache was made for
	touched    map[string]bool   // services passes changed during a drift-repair round; nil: none under way
	resyncCPU  time.Duration     // drift repair's CPU so far
	lastRound  time.Duration     // the last complete drift-repair round
	scrubbing  scrub             // the round in progress; Run's goroutine only

	run owner // the loop Start began
}

// Last is the most recent report.
func (r *Reconciler) Last() Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// Step runs one pass against the table the last pass left in the kernel
// (so that one change costs one operation, not a dump of the world), or
// against a fresh dump when there is no trusted copy yet.
func (r *Reconciler) Step(t Target) Report { return r.pass(t, false) }

// StepFull runs one pass against a fresh dump of the kernel table: it finds
// and repairs what changed behind the reconciler's back (hand edits, a
// flush, another tool).
func (r *Reconciler) StepFull(t Target) Report { return r.pass(t, true) }

func (r *Reconciler) pass(t Target, fresh bool) Report {
	now := time.Now
	if r.Clock != nil {
		now = r.Clock
	}
	start := now()
	rep := Report{Index: t.Index, Version: t.Version, At: start}
	r.mu.Lock()
	actual, held, heldSums, prev, heldIndex := r.cache, r.cache, r.digests, r.last, r.cacheIndex
	r.mu.Unlock()
	rep.Fingerprint, rep.KernelIndex, rep.KernelAt = prev.Fingerprint, prev.KernelIndex, prev.KernelAt
	rep.Drift, rep.Drifted = prev.Drift, prev.Drifted
	dumped := fresh || actual == nil
	if dumped {
		var err error
		if actual, err = r.Kernel.Read(); err != nil {
			rep.Failed, rep.Errors = 1, []string{err.Error()}
			return r.finish(rep, nil, start, now)
		}
		r.readBack(&rep, actual, held, heldSums, prev.Index, t)
	}
	own := r.owned()
	if dumped {
		// A recorded service gone from the kernel and the model (deleted
		// by hand while it was leaving) is no longer ours: another tool
		// may make one under its key.
		own.prune(func(k string) bool { _, a := actual[k]; _, d := t.Table[k]; return a || d })
	}
	var ops []Op
	var scope iter.Seq[string] // the services this pass plans for
	if !fresh && held != nil && t.Changed != nil && heldIndex == t.Base {
		// The kernel holds the table of the target t was derived from:
		// only the services t changed can differ.
		scope = maps.Keys(t.Changed)
		ops = PlanChanged(t.Table, actual, t.Changed, own.deletable(scope, t.Index), r.Exclusive)
	} else {
		scope = maps.Keys(t.Table)
		ops = Plan(t.Table, actual, own.deletable(leaving(t.Table, actual), t.Index), r.Exclusive)
	}
	taken := r.claim(own, t, actual, scope)
	rep.Ops = len(ops)
	r.touch(ops)
	for i, err := range applyAll(r.Kernel, ops) {
		op := ops[i]
		switch {
		case err != nil:
			rep.Failed++
			if len(rep.Errors) < 10 {
				rep.Errors = append(rep.Errors, err.Error())
			}
			if k := op.Service.Key.String(); op.Kind == CreateService && taken[k] {
				// Not made: not ours. If another tool made it meanwhile
				// (the kernel says it exists), the next pass reads it and
				// takes it over.
				own.forget(k)
			}
		case op.Kind == DeleteService:
			own.forget(op.Service.Key.String())
		}
	}
	r.saveOwned(own)
	if changed, err := r.timeouts(t.Timeouts); err != nil {
		rep.Failed++
		rep.Errors = append(rep.Errors, err.Error())
	} else if changed {
		rep.Ops++
	}
	var next Table
	if rep.Failed == 0 {
		// Every operation succeeded: the kernel now holds the target (plus
		// any foreign services, which the next fresh dump brings back).
		next = t.Table
		rep.Services, rep.TargetFingerprint = len(next), r.fingerprint(next, ops, fresh)
	}
	return r.finish(rep, next, start, now)
}

func (r *Reconciler) owned() *Owned {
	if r.Owned == nil {
		r.Owned = NewOwned()
	}
	return r.Owned
}

// leaving lists the services of actual that desired does not have: those
// a pass may delete.
func leaving(desired, actual Table) iter.Seq[string] {
	return func(yield func(string) bool) {
		for k := range actual {
			if _, ok := desired[k]; !ok && !yield(k) {
				return
			}
		}
	}
}

// claim records as ours, before the pass programs them, the services of
// scope the target has: those it creates and those another tool made
// under a key the model now has, which it takes over (said once, here).
// It returns the ones it took that actual does not have (to be created).
func (r *Reconciler) claim(own *Owned, t Target, actual Table, scope iter.Seq[string]) map[string]bool {
	created := map[string]bool{}
	for k := range scope {
		if _, want := t.Table[k]; !want || !own.take(k, t.Index) {
			continue
		}
		if _, there := actual[k]; there {
			r.Log.Info("service taken over: the model has it and another tool made it", "service", k, "index", t.Index)
		} else {
			created[k] = true
		}
	}
	r.saveOwned(own)
	return created
}

// saveOwned writes the record of what is ours if it changed. A failure
// does not stop the pass (the kernel is right, only the record is late);
// the next pass writes it again.
func (r *Reconciler) saveOwned(own *Owned) {
	if err := own.Save(); err != nil {
		r.Log.Warn("record of owned services not written; retrying at the next pass", "err", err)
	}
}

// touch notes the services ops change for the drift-repair round under
// way, which reads them again before it ends.
func (r *Reconciler) touch(ops []Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.touched == nil {
		return
	}
	for _, op := range ops {
		r.touched[op.Service.Key.String()] = true
	}
}

// readBack records what a dump showed. It is compared with the table the
// last successful pass left (held, at index heldIndex), which is what the
// kernel should still hold; without one the dump is digested but proves
// nothing about any index.
func (r *Reconciler) readBack(rep *Report, dump, held Table, heldSums map[string]uint64, heldIndex uint64, t Target) {
	want, idx := held, heldIndex
	if held == nil {
		want, heldSums, idx = t.Table, nil, 0
	}
	rb := readBack(dump, want, heldSums, r.owned().set(), r.Exclusive)
	rep.Fingerprint, rep.KernelIndex, rep.KernelAt = rb.Fingerprint, idx, rep.At
	rep.Drift, rep.Drifted = nil, 0
	if held == nil {
		return
	}
	rep.Drift, rep.Drifted = rb.Drift, rb.Drifted
	if rb.Drifted > 0 {
		r.Log.Warn("kernel table differs from what the reconciler left in it", "kernel_index", idx,
			"services", rb.Drift, "differing", rb.Drifted, "fingerprint", rb.Fingerprint)
	}
}

// timeouts sets the kernel's timeouts the model manages (non-zero ones),
// only when they differ.
func (r *Reconciler) timeouts(want *fsm.Timeouts) (bool, error) {
	if want == nil {
		return false, nil
	}
	have, err := r.Kernel.Timeouts()
	if err != nil {
		return false, fmt.Errorf("read timeouts: %w", err)
	}
	next := have
	for _, f := range []struct {
		dst *uint32
		v   uint32
	}{{&next.TCP, want.TCP}, {&next.TCPFin, want.TCPFin}, {&next.UDP, want.UDP}} {
		if f.v != 0 {
			*f.dst = f.v
		}
	}
	if next == have {
		return false, nil
	}
	if err := r.Kernel.SetTimeouts(next); err != nil {
		return false, fmt.Errorf("set timeouts %d %d %d: %w", next.TCP, next.TCPFin, next.UDP, err)
	}
	return true, nil
}

// fingerprint updates the per-service digests for the services ops
// touched (all of them after a dump) and returns the table's fingerprint.
func (r *Reconciler) fingerprint(t Table, ops []Op, all bool) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if all || r.digests == nil {
		r.digests = make(map[string]uint64, len(t))
		for k, s := range t {
			r.digests[k] = serviceDigest(k, s)
		}
	} else {
		// Once per service touched: a pass that adds 2,000 real servers to
		// one service is 2,000 operations on it, and a digest covers all
		// of its real servers.
		touched := map[string]bool{}
		for _, op := range ops {
			touched[op.Service.Key.String()] = true
		}
		for k := range touched {
			if s, ok := t[k]; ok {
				r.digests[k] = serviceDigest(k, s)
			} else {
				delete(r.digests, k)
			}
		}
	}
	var sum uint64
	for _, d := range r.digests {
		sum += d
	}
	return formatFingerprint(sum, len(r.digests))
}

// finish records the report and the table the kernel now holds (nil: not
// known, the next pass dumps it).
func (r *Reconciler) finish(rep Report, cache Table, start time.Time, now func() time.Time) Report {
	rep.Took = now().Sub(start).String()
	r.mu.Lock()
	r.last = rep
	r.cache = cache
	r.cacheIndex = rep.Index
	if cache == nil {
		r.digests = nil
	}
	r.mu.Unlock()
	if r.Observe != nil {
		r.Observe(rep)
	}
	if rep.Ops > 0 || rep.Failed > 0 {
		lvl := slog.LevelInfo
		if rep.Failed > 0 {
			lvl = slog.LevelWarn
		}
		r.Log.Log(context.Background(), lvl, "reconcile", "version", rep.Version, "index", rep.Index, "ops", rep.Ops,
			"failed", rep.Failed, "errors", rep.Errors, "fingerprint", rep.Fingerprint, "target_fingerprint", rep.TargetFingerprint, "took", rep.Took)
	}
	return rep
}

// Start runs Run on a goroutine the Reconciler owns, until ctx ends or
// Stop is called (a loop an earlier Start began is stopped first).
func (r *Reconciler) Start(ctx context.Context, changes <-chan struct{}, target func() Target) {
	r.run.start(ctx, func(ctx context.Context) { r.Run(ctx, changes, target) })
}

// Stop ends the loop Start began and returns once it has exited: a pass
// in progress has finished, and no kernel call is made after it returns,
// so the caller may close the Kernel then.
func (r *Reconciler) Stop() { r.run.stop() }

// Run reconciles on every state change (coalesced), on the resync timer,
// and after failures with a growing backoff, until ctx ends. It starts no
// goroutine and returns once its last pass has finished; Start and Stop
// run it for a caller that wants it owned.
func (r *Reconciler) Run(ctx context.Context, changes <-chan struct{}, target func() Target) {
	resync := r.Resync
	if resync <= 0 {
		resync = 10 * time.Second
	}
	backoff := 100 * time.Millisecond
	timer := time.NewTimer(0)
	defer timer.Stop()
	var rep Report
	for {
		full, next := false, resync
		select {
		case <-ctx.Done():
			return
		case <-changes:
			rep = r.Step(target())
		case <-timer.C:
			rep, next = r.resync(target(), resync)
			full = true
		}
		// A successful incremental step leaves the resync timer running: a
		// steady stream of changes (a health storm) must not postpone drift
		// repair's reading the kernel back.
		switch {
		case rep.Failed > 0:
			next = min(backoff, resync)
			backoff = min(backoff*2, resync)
		case !full:
			backoff = 100 * time.Millisecond
			continue
		default:
			backoff = 100 * time.Millisecond
		}
		if !full && !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

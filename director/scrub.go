package director

import (
	"maps"
	"runtime"
	"slices"
	"time"
)

// PartReader is a Kernel that reads its table in parts: the services
// without their destinations, and one service's destinations. Drift
// repair reads the table through it a slice at a time, so that its cost
// is spread and bounded rather than one dump of everything.
type PartReader interface {
	// ReadServices lists the services, each with no destinations.
	ReadServices() (Table, error)
	// ReadDests returns s with the destinations the kernel lists for it,
	// in the kernel's order (none when the service does not exist).
	ReadDests(s Service) (Service, error)
}

const (
	// scrubSlice is how many services one slice reads. The cost of a slice
	// sets how long the next one waits (pace), so small slices mean a
	// flush is seen sooner for the same CPU.
	scrubSlice = 16
	// DefaultResyncCPU is the share of one CPU drift repair may use when
	// reading the table at the --resync pace would cost more.
	DefaultResyncCPU = 0.01
)

// pace is how long to wait after a slice that cost cpu: the round's
// nominal step (the resync period shared among its slices), or longer
// when the slice's CPU over that wait would exceed the budget (a share of
// one CPU).
func pace(cpu, nominal time.Duration, budget float64) time.Duration {
	if budget <= 0 {
		return nominal
	}
	return max(nominal, time.Duration(float64(cpu)/budget))
}

// scrub is a drift-repair round in progress: the table the last pass left
// is read back a slice of services at a time and compared with what the
// reconciler holds. It belongs to the Run goroutine.
type scrub struct {
	keys   []string          // the round's services, sorted; nil: no round begun
	kernel Table             // the round's listing of services (no destinations)
	next   int               // keys[next] is the first service of the next slice
	read   map[string]uint64 // the digest each service read back had
	began  time.Time
}

// scrubbed is what one slice found.
type scrubbed struct {
	drift []string // services that differ (a full pass repairs them)
	done  bool     // the round ended with this slice
	err   error
}

// slice reads the next part of the table: at the start of a round the
// list of services (a service deleted, added or edited by hand, or a flush,
// is seen then), and then the destinations of up to scrubSlice services,
// each compared with the digest of what the last pass left. A flush is
// seen by any slice, as every service it reads has lost its destinations.
// The last slice reads again the services that passes changed while the
// round read (they were read before the change, or not at all), so that
// a round ends with a reading of the whole table as the reconciler holds
// it now, storms of changes or not.
//
// A service the reconciler does not hold is drift only when a full pass
// would delete it (ours, or everything under Exclusive): another tool's
// services are not read.
func (r *Reconciler) slice(pr PartReader, index uint64) scrubbed {
	s := &r.scrubbing
	r.mu.Lock()
	held := r.cache
	if s.keys == nil {
		r.touched = map[string]bool{}
	}
	r.mu.Unlock()
	if s.keys == nil {
		kernel, err := pr.ReadServices()
		if err != nil {
			return scrubbed{err: err}
		}
		*s = scrub{keys: slices.Sorted(maps.Keys(held)), kernel: kernel, read: map[string]uint64{}, began: time.Now()}
		var drift []string
		for k, h := range held {
			if ks, ok := kernel[k]; !ok || !sameService(ks, h) {
				drift = append(drift, k)
			}
		}
		for k := range kernel {
			if _, ok := held[k]; !ok && (r.Exclusive || r.owned().mayDelete(k, index)) {
				drift = append(drift, k)
			}
		}
		slices.Sort(drift)
		return scrubbed{drift: drift}
	}
	end := min(s.next+scrubSlice, len(s.keys))
	drift, err := r.readDests(pr, s.keys[s.next:end])
	s.next = end
	if err != nil || len(drift) > 0 || s.next < len(s.keys) {
		return scrubbed{drift: drift, err: err}
	}
	r.mu.Lock()
	touched := slices.Sorted(maps.Keys(r.touched))
	r.mu.Unlock()
	drift, err = r.readDests(pr, touched)
	return scrubbed{drift: drift, err: err, done: err == nil && len(drift) == 0}
}

// readDests reads the destinations of the services keys names that the
// reconciler holds, records their digests in the round, and returns those
// that differ from what the last pass left.
func (r *Reconciler) readDests(pr PartReader, keys []string) ([]string, error) {
	s := &r.scrubbing
	var drift []string
	for _, k := range keys {
		r.mu.Lock()
		h, ok := r.cache[k]
		want := r.digests[k]
		r.mu.Unlock()
		if !ok {
			delete(s.read, k) // a pass since the round began removed it
			continue
		}
		got, err := pr.ReadDests(h)
		if err != nil {
			return nil, err
		}
		// The service's own settings were compared at the round's start
		// (and set by the passes since); here only its destinations.
		got.Key, got.Scheduler, got.Flags, got.Timeout, got.Netmask = h.Key, h.Scheduler, h.Flags, h.Timeout, h.Netmask
		d := serviceDigest(k, got)
		if d != want {
			drift = append(drift, k)
		}
		s.read[k] = d
	}
	return drift, nil
}

// resync is the timer's pass: one slice of drift repair when the kernel
// reads in parts and the reconciler holds a table it trusts, and a full
// pass (a dump of everything) otherwise or when the slice found drift. It
// returns how long to wait for the next one; the CPU it used (its thread's,
// kernel side included) is counted as drift repair's, except a full pass
// that only rebuilds a table the reconciler no longer trusts.
func (r *Reconciler) resync(t Target, period time.Duration) (Report, time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	r.mu.Lock()
	trusted, services := r.cache != nil, len(r.cache)
	r.mu.Unlock()
	pr, parts := r.Kernel.(PartReader)
	if !trusted || !parts {
		r.endRound()
		rep := r.StepFull(t)
		if trusted {
			r.countResync(threadCPU() - start)
		}
		return rep, period
	}
	found := r.slice(pr, t.Index)
	var rep Report
	switch {
	case found.err != nil || len(found.drift) > 0:
		// The full pass reads the difference back, logs it and repairs it.
		r.endRound()
		rep = r.StepFull(t)
	case found.done:
		r.roundDone()
		rep = r.Last()
	default:
		rep = r.Last()
	}
	cpu := threadCPU() - start
	r.countResync(cpu)
	steps := (services+scrubSlice-1)/scrubSlice + 1 // and the listing of services
	return rep, pace(cpu, period/time.Duration(steps), r.budget())
}

// roundDone records a round that found every service as the reconciler
// left it: the digests it read are the kernel's fingerprint at the
// reconciler's latest index (the services changed during the round were
// read again at its end).
func (r *Reconciler) roundDone() {
	s := r.scrubbing
	r.scrubbing = scrub{}
	now := time.Now()
	var sum uint64
	for _, d := range s.read {
		sum += d
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.touched = nil
	r.lastRound = now.Sub(s.began)
	r.last.Fingerprint, r.last.KernelIndex, r.last.KernelAt = formatFingerprint(sum, len(s.read)), r.cacheIndex, now
	r.last.Drift, r.last.Drifted = nil, 0
}

// endRound abandons the round in progress.
func (r *Reconciler) endRound() {
	r.scrubbing = scrub{}
	r.mu.Lock()
	r.touched = nil
	r.mu.Unlock()
}

func (r *Reconciler) budget() float64 {
	if r.ResyncBudget > 0 {
		return r.ResyncBudget
	}
	return DefaultResyncCPU
}

func (r *Reconciler) countResync(cpu time.Duration) {
	r.mu.Lock()
	r.resyncCPU += cpu
	r.mu.Unlock()
}

// ResyncCPU is the CPU time drift repair has used: reading the table back
// and repairing what it found.
func (r *Reconciler) ResyncCPU() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resyncCPU
}

// ResyncRound is how long the last complete round of drift repair took to
// read the whole table back (0: none yet): the bound on how long a hand
// edit of a real server stays in the kernel.
func (r *Reconciler) ResyncRound() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastRound
}

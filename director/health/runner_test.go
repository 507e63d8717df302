package health

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// world is a state the runner reads and commits to, as Raft would apply it.
type world struct {
	mu      sync.Mutex
	st      *fsm.State
	changes chan struct{}
	commits [][]fsm.VerdictChange
	ticks   []uint64                // the tick number each commit was stamped with
	down    map[netip.AddrPort]bool // probes of these targets fail
	weight  map[netip.AddrPort]int  // probes of these targets report a weight
}

func newWorld(t *testing.T, servers int, check fsm.HealthCheck) *world {
	st := fsm.NewState()
	svc := &fsm.Service{Key: fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.10"), Port: 80}, Scheduler: "rr",
		Servers: map[string]*fsm.RealServer{}, Check: &check}
	for i := range servers {
		rs := &fsm.RealServer{Address: netip.AddrFrom4([4]byte{10, 1, byte(i / 250), byte(1 + i%250)}), Port: 80, Forward: fsm.DirectRoute, Weight: 1}
		svc.Servers[rs.Key()] = rs
	}
	st.Config.Services[svc.Key.String()] = svc
	return &world{st: st, changes: make(chan struct{}, 1), down: map[netip.AddrPort]bool{}, weight: map[netip.AddrPort]int{}}
}

func (w *world) view() *fsm.State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st
}

func (w *world) commit(_ context.Context, tick uint64, ch []fsm.VerdictChange) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	cmd, err := fsm.NewCommand(fsm.CmdSetVerdicts, time.Now().UnixNano(), "test", fsm.SetVerdictsPayload{Verdicts: ch, Tick: tick})
	if err != nil {
		return err
	}
	if _, err := w.st.Apply(cmd); err != nil {
		return err
	}
	w.commits = append(w.commits, ch)
	w.ticks = append(w.ticks, tick)
	select {
	case w.changes <- struct{}{}:
	default:
	}
	return nil
}

func (w *world) probe(ctx context.Context, target netip.AddrPort) Outcome {
	w.mu.Lock()
	down := w.down[target]
	weight, weighed := w.weight[target]
	w.mu.Unlock()
	if down {
		return Outcome{Detail: "refused"}
	}
	o := Outcome{OK: true, Detail: "ok", Latency: time.Millisecond}
	if weighed {
		o.Weight = &weight
	}
	return o
}

func (w *world) setDown(target string, down bool) {
	w.mu.Lock()
	w.down[netip.MustParseAddrPort(target)] = down
	w.mu.Unlock()
}

func (w *world) health(server string) fsm.Health {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st.Verdicts[fsm.VerdictKey("tcp:10.0.0.10:80", server)].Health
}

func (w *world) nCommits() (n, changes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.commits {
		changes += len(c)
	}
	return len(w.commits), changes
}

func start(t *testing.T, w *world, tick time.Duration) *Runner {
	r := &Runner{
		Build:  func(fsm.HealthCheck) (Probe, error) { return w.probe, nil },
		Commit: w.commit, Tick: tick, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx, w.changes, w.view); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunnerCommitsTransitions(t *testing.T) {
	w := newWorld(t, 3, fsm.HealthCheck{Type: "tcp", IntervalMS: 100, TimeoutMS: 50, Rise: 2, Fall: 2})
	r := start(t, w, 50*time.Millisecond)
	eventually(t, "all up", func() bool {
		return w.health("10.1.0.1:80") == fsm.HealthUp && w.health("10.1.0.2:80") == fsm.HealthUp && w.health("10.1.0.3:80") == fsm.HealthUp
	})
	w.setDown("10.1.0.2:80", true)
	eventually(t, "10.1.0.2 down", func() bool { return w.health("10.1.0.2:80") == fsm.HealthDown })
	w.setDown("10.1.0.2:80", false)
	eventually(t, "10.1.0.2 up again", func() bool { return w.health("10.1.0.2:80") == fsm.HealthUp })
	st := r.Statuses()
	if len(st) != 3 || st[1].Server != "10.1.0.2:80" || st[1].Checks < 5 || st[1].Type != "tcp" || st[1].Target != "10.1.0.2:80" {
		t.Errorf("statuses = %+v", st)
	}
	if w.st.Verdicts[fsm.VerdictKey("tcp:10.0.0.10:80", "10.1.0.2:80")].Reason == "" {
		t.Error("a verdict without a reason")
	}
}

// A new leader starts from the committed verdicts: a server that is down
// and still failing, and one that is up and still passing, produce no
// command at all.
func TestNewLeaderDoesNotFlap(t *testing.T) {
	w := newWorld(t, 2, fsm.HealthCheck{Type: "tcp", IntervalMS: 100, TimeoutMS: 50, Rise: 2, Fall: 2})
	if err := w.commit(context.Background(), 1, []fsm.VerdictChange{
		{Service: "tcp:10.0.0.10:80", Server: "10.1.0.1:80", Health: fsm.HealthDown, Reason: "old leader"},
		{Service: "tcp:10.0.0.10:80", Server: "10.1.0.2:80", Health: fsm.HealthUp, Reason: "old leader"},
	}); err != nil {
		t.Fatal(err)
	}
	w.setDown("10.1.0.1:80", true)
	r := start(t, w, 20*time.Millisecond)
	eventually(t, "five checks of each", func() bool {
		st := r.Statuses()
		return len(st) == 2 && st[0].Checks >= 5 && st[1].Checks >= 5
	})
	if n, _ := w.nCommits(); n != 1 {
		t.Errorf("%d commands committed, want only the old leader's", n)
	}
}

// A storm: every server fails at once; the transitions go out in one or
// two commands, not one per server.
func TestStormIsBatched(t *testing.T) {
	const n = 5000
	w := newWorld(t, n, fsm.HealthCheck{Type: "tcp", IntervalMS: 100, TimeoutMS: 50, Rise: 1, Fall: 1})
	start(t, w, time.Second)
	eventually(t, "all up", func() bool { _, c := w.nCommits(); return c == n })
	before, _ := w.nCommits()
	w.mu.Lock()
	for i := range n {
		w.down[netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i / 250), byte(1 + i%250)}), 80)] = true
	}
	w.mu.Unlock()
	eventually(t, "all down", func() bool { _, c := w.nCommits(); return c == 2*n })
	after, _ := w.nCommits()
	if after-before > 2 {
		t.Errorf("%d transitions took %d commands, want at most 2", n, after-before)
	}
	t.Logf("%d transitions in %d commands", n, after-before)
}

// An exec check's "weight N" is committed when it changes, not on every
// check.
func TestRunnerCommitsWeights(t *testing.T) {
	w := newWorld(t, 1, fsm.HealthCheck{Type: "exec", Command: []string{"x"}, IntervalMS: 100, TimeoutMS: 50, Rise: 2, Fall: 2})
	target := netip.MustParseAddrPort("10.1.0.1:80")
	w.weight[target] = 5
	r := start(t, w, 20*time.Millisecond)
	verdict := func() fsm.Verdict {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.st.Verdicts[fsm.VerdictKey("tcp:10.0.0.10:80", "10.1.0.1:80")]
	}
	eventually(t, "weight 5", func() bool { v := verdict(); return v.Weight != nil && *v.Weight == 5 && v.Health == fsm.HealthUp })
	eventually(t, "five more checks", func() bool { return r.Statuses()[0].Checks >= 6 })
	if n, _ := w.nCommits(); n != 1 {
		t.Errorf("%d commands for one weight, want 1", n)
	}
	w.mu.Lock()
	w.weight[target] = 9
	w.mu.Unlock()
	eventually(t, "weight 9", func() bool { v := verdict(); return v.Weight != nil && *v.Weight == 9 })
}

// Short of CPU (a scheduling latency over the target), the runner holds
// checks back to the floor; given the CPU again, it lets them all run.
func TestRunnerThrottlesChecksWhenShortOfCPU(t *testing.T) {
	const n = 200
	w := newWorld(t, n, fsm.HealthCheck{Type: "tcp", IntervalMS: 50, TimeoutMS: 40, Rise: 1, Fall: 1})
	var (
		mu             sync.Mutex
		running, peak  int
		starved        = true
		sawLimitAtPeak bool
	)
	r := &Runner{
		Build: func(fsm.HealthCheck) (Probe, error) {
			return func(ctx context.Context, _ netip.AddrPort) Outcome {
				mu.Lock()
				running++
				peak = max(peak, running)
				mu.Unlock()
				<-ctx.Done() // every check lasts its whole timeout
				mu.Lock()
				running--
				mu.Unlock()
				return Outcome{OK: true}
			}, nil
		},
		Commit: w.commit, Tick: 10 * time.Millisecond, Workers: 128, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		SchedP90: func() time.Duration {
			mu.Lock()
			defer mu.Unlock()
			if starved {
				return time.Second
			}
			return time.Millisecond
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx, w.changes, w.view); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, "the limit at its floor", func() bool { return r.InFlightLimit() == minInFlight })
	mu.Lock()
	peak = 0
	mu.Unlock()
	eventually(t, "more checks run", func() bool { return r.Statuses()[0].Checks+r.Statuses()[n-1].Checks >= 4 })
	mu.Lock()
	if peak > minInFlight {
		t.Errorf("%d checks ran at once under a limit of %d", peak, minInFlight)
	}
	starved, peak = false, 0
	mu.Unlock()
	eventually(t, "back to the ceiling", func() bool { return r.InFlightLimit() == 128 })
	eventually(t, "more than the floor at once", func() bool {
		mu.Lock()
		defer mu.Unlock()
		sawLimitAtPeak = peak > minInFlight
		return sawLimitAtPeak
	})
}

// However slow a commit, the next one is proposed a tick after it
// returned, not at once from a tick that queued meanwhile: one Raft entry
// per tick.
func TestRunnerProposesOncePerTickWhenCommitsAreSlow(t *testing.T) {
	const tick = 20 * time.Millisecond
	w := newWorld(t, 50, fsm.HealthCheck{Type: "tcp", IntervalMS: 10, TimeoutMS: 5, Rise: 1, Fall: 1})
	var (
		mu         sync.Mutex
		flip       bool
		starts     []time.Time
		ends       []time.Time
		commitDone = make(chan struct{}, 100)
	)
	r := &Runner{
		Build: func(fsm.HealthCheck) (Probe, error) {
			return func(context.Context, netip.AddrPort) Outcome {
				mu.Lock()
				defer mu.Unlock()
				flip = !flip // every server flaps: transitions at every tick
				return Outcome{OK: flip}
			}, nil
		},
		Commit: func(ctx context.Context, n uint64, ch []fsm.VerdictChange) error {
			mu.Lock()
			starts = append(starts, time.Now())
			mu.Unlock()
			time.Sleep(3 * tick) // a loaded leader's slow commit
			err := w.commit(ctx, n, ch)
			mu.Lock()
			ends = append(ends, time.Now())
			mu.Unlock()
			commitDone <- struct{}{}
			return err
		},
		Tick: tick, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx, w.changes, w.view); close(done) }()
	for range 8 {
		select {
		case <-commitDone:
		case <-time.After(10 * time.Second):
			t.Fatal("no commit in 10s")
		}
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(starts) && i < len(ends); i++ {
		if gap := starts[i].Sub(ends[i-1]); gap < tick {
			t.Errorf("commit %d proposed %v after commit %d returned, want at least a tick (%v)", i, gap, i-1, tick)
		}
	}
	// Each commit carries the number of the tick that flushed it: rising,
	// never repeated, so a reader of the log can count entries per tick.
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.ticks) < 8 {
		t.Fatalf("%d commits stamped, want at least 8", len(w.ticks))
	}
	for i, n := range w.ticks {
		if n == 0 || (i > 0 && n <= w.ticks[i-1]) {
			t.Fatalf("tick stamps %v: want each above 0 and above the one before", w.ticks)
		}
	}
}

// Checks a loop takes run there, not on the runner's goroutines: the
// runner hands over each check's spec, target and first delay (spread
// over the interval), and judges what the loop reports as it judges a
// probe's outcomes. A check the loop refuses runs on a goroutine.
func TestRunnerHandsChecksToTheLoop(t *testing.T) {
	w := newWorld(t, 4, fsm.HealthCheck{Type: "tcp", IntervalMS: 1000, TimeoutMS: 500, Rise: 1, Fall: 1})
	type handed struct {
		target netip.AddrPort
		first  time.Duration
		done   func(Outcome) time.Duration
	}
	var mu sync.Mutex
	loop := map[netip.AddrPort]handed{}
	stopped := map[netip.AddrPort]bool{}
	refused := netip.MustParseAddrPort("10.1.0.4:80")
	var probed sync.Map
	r := &Runner{
		Build: func(fsm.HealthCheck) (Probe, error) {
			return func(ctx context.Context, target netip.AddrPort) Outcome {
				probed.Store(target, true)
				return w.probe(ctx, target)
			}, nil
		},
		Schedule: func(spec fsm.HealthCheck, target netip.AddrPort, first time.Duration, done func(Outcome) time.Duration) (func(), bool) {
			if target == refused {
				return nil, false
			}
			mu.Lock()
			defer mu.Unlock()
			loop[target] = handed{target, first, done}
			return func() { mu.Lock(); stopped[target] = true; mu.Unlock() }, true
		},
		LoopThrottle: func() (int, int) { return 100, 4096 }, // holding checks back
		Commit:       w.commit, Tick: 20 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx, w.changes, w.view); close(done) }()
	eventually(t, "three checks on the loop", func() bool { mu.Lock(); defer mu.Unlock(); return len(loop) == 3 })
	mu.Lock()
	for _, h := range loop {
		if h.first < 0 || h.first >= time.Second {
			t.Errorf("%v: first check after %v, want within the 1s interval", h.target, h.first)
		}
	}
	loop[netip.MustParseAddrPort("10.1.0.1:80")].done(Outcome{OK: true, Detail: "connected"})
	loop[netip.MustParseAddrPort("10.1.0.2:80")].done(Outcome{Detail: "connection refused"})
	mu.Unlock()
	eventually(t, "the loop's verdicts committed", func() bool {
		return w.health("10.1.0.1:80") == fsm.HealthUp && w.health("10.1.0.2:80") == fsm.HealthDown
	})
	eventually(t, "the refused check on a goroutine", func() bool { _, ok := probed.Load(refused); return ok })
	if l, c := r.Throttle(); l != 100 || c != 4096 {
		t.Errorf("Throttle() = %d, %d; want the loop's, 100 of 4096", l, c)
	}
	for target := range loop {
		if _, ok := probed.Load(target); ok {
			t.Errorf("%v: probed on a goroutine as well as on the loop", target)
		}
	}
	cancel() // leadership lost: the loop's checks stop
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(stopped) != 3 {
		t.Fatalf("%d of the loop's 3 checks stopped", len(stopped))
	}
}

// Stop returns only once every check goroutine has exited: a probe that
// is running when Stop is called has returned, and none starts after.
func TestStopAwaitsEveryCheck(t *testing.T) {
	w := newWorld(t, 20, fsm.HealthCheck{Type: "tcp", IntervalMS: 1, TimeoutMS: 1000, Rise: 1, Fall: 1})
	var running, started atomic.Int64
	r := &Runner{
		Build: func(fsm.HealthCheck) (Probe, error) {
			return func(ctx context.Context, target netip.AddrPort) Outcome {
				running.Add(1)
				defer running.Add(-1)
				started.Add(1)
				<-ctx.Done() // until the run is stopped
				return Outcome{}
			}, nil
		},
		Commit: w.commit, Tick: 10 * time.Millisecond, Log: slog.New(slog.DiscardHandler),
	}
	r.Start(w.changes, w.view)
	eventually(t, "every probe running", func() bool { return running.Load() == 20 })
	r.Stop()
	if n := running.Load(); n != 0 {
		t.Fatalf("%d probes still running after Stop returned", n)
	}
	n := started.Load()
	r.Stop() // twice is harmless
	if m := started.Load(); m != n {
		t.Fatalf("%d probes started after Stop returned", m-n)
	}
}

// A run started while the previous one is still on its way out (the
// daemon cancels one and starts the next on a quick loss and gain) begins
// only once the previous one has exited, so the old run's clean-up never
// stops the new run's checks.
func TestRunWaitsForThePreviousRun(t *testing.T) {
	w := newWorld(t, 1, fsm.HealthCheck{Type: "tcp", IntervalMS: 5, TimeoutMS: 50, Rise: 1, Fall: 1})
	r := &Runner{
		Build:  func(fsm.HealthCheck) (Probe, error) { return w.probe, nil },
		Commit: w.commit, Tick: 10 * time.Millisecond, Log: slog.New(slog.DiscardHandler),
	}
	// The first run is held inside view (a slow state read) while it is
	// cancelled and the second begins.
	inView, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	slowView := func() *fsm.State {
		if held.CompareAndSwap(false, true) {
			close(inView)
			<-release
		}
		return w.view()
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	done1 := make(chan struct{})
	go func() { r.Run(ctx1, w.changes, slowView); close(done1) }()
	<-inView
	cancel1()
	viewed2 := make(chan struct{})
	var once sync.Once
	r.Start(w.changes, func() *fsm.State {
		once.Do(func() { close(viewed2) })
		return w.view()
	})
	t.Cleanup(r.Stop)
	// Had the second run begun, it would read the state at once; give it
	// the chance to, then let the first run finish its way out.
	select {
	case <-viewed2:
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	<-done1
	var before uint64
	eventually(t, "the second run checks", func() bool {
		st := r.Statuses()
		if len(st) == 1 && before == 0 {
			before = st[0].Checks
		}
		return len(st) == 1 && st[0].Checks > before+3
	})
}

// TestSyncFollowsChangedServicesOnly: a new configuration restarts the
// checks of the services that changed and only those, stops those of a
// service that left, and leaves every other check (and its tracker) as
// it was.
func TestSyncFollowsChangedServicesOnly(t *testing.T) {
	st := fsm.NewState()
	key := func(i int) fsm.ServiceKey {
		return fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.AddrFrom4([4]byte{10, 0, 0, byte(10 + i)}), Port: 80}
	}
	var ops []fsm.Op
	for i := range 3 {
		ops = append(ops, fsm.Op{Kind: fsm.OpAddService, Service: &fsm.Service{Key: key(i), Scheduler: "rr",
			Check: &fsm.HealthCheck{Type: "tcp", IntervalMS: 1000, TimeoutMS: 500}}})
		for j := range 2 {
			ops = append(ops, fsm.Op{Kind: fsm.OpAddServer, ServiceKey: key(i),
				Server: &fsm.RealServer{Address: netip.AddrFrom4([4]byte{10, 1, byte(i), byte(1 + j)}), Port: 80, Forward: fsm.DirectRoute, Weight: 1}})
		}
	}
	apply := func(ops ...fsm.Op) {
		t.Helper()
		c, err := fsm.NewCommand(fsm.CmdOps, 1, "test", fsm.OpsPayload{Ops: ops})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := st.Apply(c); err != nil || res.Err != "" {
			t.Fatalf("%v %s", err, res.Err)
		}
	}
	apply(ops...)
	var scheduled, stopped []string
	r := &Runner{
		Build: func(fsm.HealthCheck) (Probe, error) {
			return func(context.Context, netip.AddrPort) Outcome { return Outcome{OK: true} }, nil
		},
		Schedule: func(_ fsm.HealthCheck, target netip.AddrPort, _ time.Duration, _ func(Outcome) time.Duration) (func(), bool) {
			scheduled = append(scheduled, target.String())
			return func() { stopped = append(stopped, target.String()) }, true
		},
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		jobs:    map[string]*job{},
		pending: map[string]fsm.VerdictChange{},
	}
	ctx := context.Background()
	r.sync(ctx, st)
	if len(scheduled) != 6 || len(stopped) != 0 {
		t.Fatalf("first sync: scheduled %v, stopped %v; want 6 and none", scheduled, stopped)
	}
	before := maps.Clone(r.jobs)
	step := func(what string, wantScheduled, wantStopped []string, ops ...fsm.Op) {
		t.Helper()
		scheduled, stopped = nil, nil
		apply(ops...)
		r.sync(ctx, st)
		slices.Sort(scheduled)
		slices.Sort(stopped)
		if !slices.Equal(scheduled, wantScheduled) || !slices.Equal(stopped, wantStopped) {
			t.Fatalf("%s: scheduled %v, stopped %v; want %v, %v", what, scheduled, stopped, wantScheduled, wantStopped)
		}
		for k, j := range r.jobs {
			if b, ok := before[k]; ok && b != j && !slices.Contains(wantScheduled, j.target.String()) {
				t.Fatalf("%s: the check of %s was replaced", what, k)
			}
		}
		before = maps.Clone(r.jobs)
	}
	step("a weight changed", nil, nil, fsm.Op{Kind: fsm.OpEditServer, ServiceKey: key(1),
		Server: &fsm.RealServer{Address: netip.AddrFrom4([4]byte{10, 1, 1, 1}), Port: 80, Forward: fsm.DirectRoute, Weight: 5}})
	step("a service's check changed", []string{"10.1.2.1:80", "10.1.2.2:80"}, []string{"10.1.2.1:80", "10.1.2.2:80"},
		fsm.Op{Kind: fsm.OpSetCheck, ServiceKey: key(2), Check: &fsm.HealthCheck{Type: "tcp", IntervalMS: 2000, TimeoutMS: 500}})
	step("a service deleted", nil, []string{"10.1.0.1:80", "10.1.0.2:80"}, fsm.Op{Kind: fsm.OpDeleteService, ServiceKey: key(0)})
	if len(r.jobs) != 4 {
		t.Fatalf("%d checks at the end, want 4", len(r.jobs))
	}
}

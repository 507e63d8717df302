//go:build failoverbench

package failover

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// TestFailoverBench is `make bench-failover` (bench.sh): ipvsman and
// keepalived in the same lab, measured the same way. Knobs, from the
// environment: CYCLES (default 20) faults per series, IDLE (default 10m) of
// ipvsman without faults, ONLY=keepalived or ONLY=ipvsman for one half.
// Each series builds its own lab, so a failure in one keeps the others'
// figures; the report is printed whatever happened.
func TestFailoverBench(t *testing.T) {
	cycles := envInt(t, "CYCLES", 20)
	idle := envDuration(t, "IDLE", 10*time.Minute)
	stress := envDuration(t, "STRESS", 10*time.Minute)
	servers := envInt(t, "STRESS_SERVERS", StressServers)
	only := os.Getenv("ONLY")
	if only != "" && only != "keepalived" && only != "ipvsman" {
		t.Fatalf("ONLY=%q: want keepalived, ipvsman or nothing", only)
	}
	labtool := topo.BuildLabtool(t)
	rep := &report{cycles: cycles, idle: idle, stress: stress, only: only}
	defer rep.print(os.Stdout)

	if only != "ipvsman" {
		t.Run("keepalived advert 1s", func(t *testing.T) {
			keepalivedSeries(t, labtool, time.Second, cycles, rep.series(keepalivedDefault))
		})
		t.Run("keepalived advert 0.1s", func(t *testing.T) {
			keepalivedSeries(t, labtool, 100*time.Millisecond, cycles, rep.series(keepalivedFast))
		})
	}
	if only != "keepalived" {
		t.Run("ipvsman", func(t *testing.T) { ipvsmanSeries(t, labtool, cycles, idle, stress, servers, rep) })
	}
}

func keepalivedSeries(t *testing.T, labtool string, advert time.Duration, cycles int, s *series) {
	lab := NewLab(t, labtool, Prefix)
	r := NewRig(t, lab)
	k := StartKeepalived(t, lab, advert)
	start := time.Now()
	defer func() { s.setOverlap(observed(t, r.Obs, start)) }()
	for i := range cycles {
		c, err := r.CrashCycle(k)
		s.add(t, i, c)
		if err != nil {
			t.Fatalf("cycle %d: %v", i+1, err)
		}
	}
}

func ipvsmanSeries(t *testing.T, labtool string, cycles int, idle, stress time.Duration, servers int, rep *report) {
	lab := NewLab(t, labtool, Prefix)
	r := NewRig(t, lab)
	m := StartIpvsmanEnv(t, lab, strings.Fields(os.Getenv("DAEMON_ENV")), strings.Fields(os.Getenv("DAEMON_ARGS"))...)
	if dir := os.Getenv("LOGDIR"); dir != "" {
		t.Cleanup(func() { m.SaveLogs(t, dir) })
	}
	m.ApplyVIP(t)
	ready := m.ReadyWith(r.Obs)
	d := WithReady(m, ready)

	start := time.Now()
	defer func() { rep.setOverlap(observed(t, r.Obs, start)) }()
	unplanned := rep.series(ipvsmanUnplanned)
	for i := range cycles {
		c, err := r.CrashCycle(d)
		unplanned.add(t, i, c)
		if err != nil {
			t.Fatalf("unplanned cycle %d: %v", i+1, err)
		}
	}
	planned := rep.series(ipvsmanPlanned)
	for i := range cycles {
		c, err := r.PlannedCycle(ready, m.Transfer)
		planned.add(t, i, c)
		if err != nil {
			t.Fatalf("planned cycle %d: %v", i+1, err)
		}
	}
	rep.setOverlap(observed(t, r.Obs, start))

	if idle > 0 {
		idleSeries(t, r, m, ready, idle, rep)
	}
	if stress > 0 {
		if _, err := r.Stable(ready); err != nil {
			t.Fatalf("before the stress run: %v", err)
		}
		t.Logf("stress for %s: %d busy loops, large writes of %d real servers, follower restarts every %s", stress, runtime.NumCPU(), servers, RestartEvery(stress))
		res := m.Stress(t, r, stress, runtime.NumCPU(), servers)
		t.Log(res)
		if err := res.VIPResolution.Err(); err != nil {
			t.Errorf("stress: %v", err)
		}
		rep.setStress(res)
	}
}

// idleSeries is the idle run: no fault at all for idle.
func idleSeries(t *testing.T, r *Rig, m *Ipvsman, ready func() error, idle time.Duration, rep *report) {
	if _, err := r.Stable(ready); err != nil {
		t.Fatalf("before the idle run: %v", err)
	}
	logs := m.LogSizes()
	from := time.Now()
	t.Logf("idle for %s, no faults", idle)
	// The idle run is the observation itself, not a wait for something.
	<-time.After(idle)
	to := time.Now()
	total, failed := r.Poll.Count(from, to)
	moves := 0
	for _, d := range r.Lab.Directors {
		for _, iv := range r.Obs.Intervals(d) {
			if iv.From.After(from) && iv.From.Before(to) {
				moves++
			}
		}
	}
	rep.setIdle(idleResult{dur: to.Sub(from), leaderChanges: m.LeaderChanges(logs), requests: total, failed: failed, vipMoves: moves})
}

// Series names, in the order the report prints them.
const (
	ipvsmanUnplanned  = "ipvsman unplanned (SIGKILL + link cut)"
	ipvsmanPlanned    = "ipvsman planned (cluster transfer)"
	keepalivedDefault = "keepalived advert_int 1 (VRRPv2)"
	keepalivedFast    = "keepalived advert_int 0.1 (VRRPv3)"
)

var seriesOrder = []string{ipvsmanUnplanned, ipvsmanPlanned, keepalivedDefault, keepalivedFast}

// series collects one kind of failover's cycles as they are measured.
type series struct {
	mu             sync.Mutex
	cycles         []Cycle
	overlap, worst time.Duration
	res            Resolution
	overlapSet     bool
}

// observed is the Observer's overlap since start and how finely it was
// sampled; a run sampled too coarsely for its figure fails.
func observed(t *testing.T, o *Observer, start time.Time) (total, worst time.Duration, res Resolution) {
	end := time.Now()
	total, worst = o.OverlapBetween(start, end)
	res = o.Resolution(start, end)
	if err := res.Err(); err != nil {
		t.Error(err)
	}
	return total, worst, res
}

// add records c if it was measured at all (a cycle can fail after its
// measurement, while restoring).
func (s *series) add(t *testing.T, i int, c Cycle) {
	if c.To == "" {
		return
	}
	t.Logf("cycle %d: %s", i+1, c)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cycles = append(s.cycles, c)
}

func (s *series) setOverlap(total, worst time.Duration, res Resolution) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.overlap, s.worst, s.res, s.overlapSet = total, worst, res, true
}

func (s *series) pick(f func(Cycle) time.Duration) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Duration
	for _, c := range s.cycles {
		out = append(out, f(c))
	}
	return out
}

type idleResult struct {
	dur                        time.Duration
	leaderChanges              int
	requests, failed, vipMoves int
}

type report struct {
	cycles       int
	idle, stress time.Duration
	only         string

	mu             sync.Mutex
	byName         map[string]*series
	overlap, worst time.Duration // the ipvsman cycles'
	res            Resolution
	overlapSet     bool
	idleRes        *idleResult
	stressRes      *StressResult
}

func (r *report) series(name string) *series {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byName == nil {
		r.byName = map[string]*series{}
	}
	if r.byName[name] == nil {
		r.byName[name] = &series{}
	}
	return r.byName[name]
}

func (r *report) setOverlap(total, worst time.Duration, res Resolution) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.overlap, r.worst, r.res, r.overlapSet = total, worst, res, true
}

func (r *report) setIdle(res idleResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.idleRes = &res
}

func (r *report) setStress(res StressResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stressRes = &res
}

func (r *report) summary(name string) (Summary, bool) {
	r.mu.Lock()
	s := r.byName[name]
	r.mu.Unlock()
	if s == nil {
		return Summary{}, false
	}
	sum := Summarize(s.pick(func(c Cycle) time.Duration { return c.Recovery }))
	return sum, sum.N > 0
}

// print writes the table, the ratios and then the NAME: VALUE lines (whole
// milliseconds) that scripts read. A series that was not measured has no
// lines.
func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\n==== failover benchmark: CYCLES=%d IDLE=%s STRESS=%s ONLY=%q DAEMON_ARGS=%q DAEMON_ENV=%q ====\n", r.cycles, r.idle, r.stress, r.only, os.Getenv("DAEMON_ARGS"), os.Getenv("DAEMON_ENV"))
	fmt.Fprintln(w, "time from the fault (crash instant, or just before the transfer call) to the end of the")
	fmt.Fprintln(w, "client's first successful answer to a request started after it; nearest-rank percentiles")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "series\tn\tp50\tp90\tmax\tVIP moved p50\tfailed req p50\tVIP overlap\t")
	for _, name := range seriesOrder {
		sum, ok := r.summary(name)
		if !ok {
			continue
		}
		s := r.series(name)
		moved := Percentile(s.pick(func(c Cycle) time.Duration { return c.VIPMoved }), 50)
		s.mu.Lock()
		var failed []int
		for _, c := range s.cycles {
			failed = append(failed, c.Failed)
		}
		ov := "-" // the ipvsman series share one figure, printed below
		if s.overlapSet {
			ov = fmtMS(s.overlap) + " (worst gap " + fmtMS(s.res.WorstGap) + ")"
		}
		s.mu.Unlock()
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t\n", name, sum.N, fmtMS(sum.P50), fmtMS(sum.P90), fmtMS(sum.Max), fmtMS(moved), Percentile(failed, 50), ov)
	}
	tw.Flush()

	un, okU := r.summary(ipvsmanUnplanned)
	pl, okP := r.summary(ipvsmanPlanned)
	kd, okD := r.summary(keepalivedDefault)
	kf, okF := r.summary(keepalivedFast)
	r.mu.Lock()
	overlap, worst, res, overlapSet, idleRes, stressRes := r.overlap, r.worst, r.res, r.overlapSet, r.idleRes, r.stressRes
	r.mu.Unlock()
	if overlapSet {
		fmt.Fprintf(w, "ipvsman VIP overlap across all its cycles (Observer, %s asked): total %s, worst stretch %s (%s)\n", SampleEvery, fmtMS(overlap), fmtMS(worst), res)
	}
	if idleRes != nil {
		fmt.Fprintf(w, "ipvsman idle %s: %d leader changes (\"leadership gained\" log lines), %d VIP moves, %d of %d requests failed\n",
			idleRes.dur.Round(time.Second), idleRes.leaderChanges, idleRes.vipMoves, idleRes.failed, idleRes.requests)
	}
	if stressRes != nil {
		fmt.Fprintln(w, stressRes)
	}

	var ratios []string
	if okU && okF {
		ratios = append(ratios,
			"unplanned_p50 / keepalived_fast_p50 = "+Ratio(un.P50, kf.P50),
			"unplanned_max / keepalived_fast_max = "+Ratio(un.Max, kf.Max))
	}
	if okU && okD {
		ratios = append(ratios,
			"unplanned_p50 / keepalived_default_p50 = "+Ratio(un.P50, kd.P50),
			"unplanned_max / keepalived_default_max = "+Ratio(un.Max, kd.Max))
	}
	if okF && okD {
		ratios = append(ratios, "keepalived_fast_p50 / keepalived_default_p50 = "+Ratio(kf.P50, kd.P50))
	}
	if len(ratios) > 0 {
		fmt.Fprintln(w, "ratios:")
		for _, l := range ratios {
			fmt.Fprintln(w, "  "+l)
		}
	}

	fmt.Fprintln(w)
	line := func(name string, v int64) { fmt.Fprintf(w, "%s: %d\n", name, v) }
	series := func(prefix string, s Summary, ok bool) {
		if ok {
			line(prefix+"_p50_ms", MS(s.P50))
			line(prefix+"_p90_ms", MS(s.P90))
			line(prefix+"_max_ms", MS(s.Max))
		}
	}
	series("unplanned", un, okU)
	series("planned", pl, okP)
	series("keepalived_default", kd, okD)
	series("keepalived_fast", kf, okF)
	if overlapSet {
		fmt.Fprintf(w, "vip_overlap_ms: %d (%s)\n", MS(overlap), res)
		line("vip_overlap_worst_ms", MS(worst))
	}
	if idleRes != nil {
		line("idle_leader_changes", int64(idleRes.leaderChanges))
		line("idle_failed_requests", int64(idleRes.failed))
	}
	if stressRes != nil {
		line("stress_leader_changes", int64(stressRes.LeaderChanges))
		line("stress_failed_requests", int64(stressRes.Failed))
		fmt.Fprintf(w, "stress_vip_overlap_ms: %d (%s)\n", MS(stressRes.VIPOverlap), stressRes.VIPResolution)
	}
}

func fmtMS(d time.Duration) string { return strconv.FormatInt(MS(d), 10) + "ms" }

func envInt(t *testing.T, name string, def int) int {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		t.Fatalf("%s=%q: want a duration such as 10m, or 0 to skip", name, v)
	}
	return d
}

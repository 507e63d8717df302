//go:build lab && labbench

package lab

// TestBenchScale is `make bench-scale`: the largest published keepalived
// configuration's shape (2,277 virtual services, 37,205 real servers, one
// checker each there) on a three-director cluster, and the same
// configuration in keepalived, in the same VM, one after the other.
//
//   - Shape (generated, bench_scale_conf_test.go): TCP services 10.200.x.y:80,
//     wlc, 16 or 17 direct-routing real servers each, every one at its own
//     address in 10.201.0.0/16 (a route on each director's eth0 makes them
//     unicast, as IPVS wants). SCALE_CHECKS of them, spread evenly, carry an
//     HTTP check every 6 s (timeout 5 s) aimed at its own port of one
//     responder (labtool serve --http-ports in rs1, 10.0.0.21:20000-): all
//     healthy. The rest carry none.
//   - scale_apply_s: the whole configuration as one apply (the request
//     `ipvsman apply` sends), sent to the leader from this process, from
//     the request's start until every director's kernel holds it: each
//     kernel is polled through the reconciler's own netlink dump, opened in
//     the director's namespace, and held means equal to the model's table
//     (director.Desired of the same configuration) service by service,
//     destination by destination, and by fingerprint. A node's time is the
//     end of its first matching dump: the resolution is one dump, printed.
//   - propagation: SCALE_CHANGES single weight changes (an edit-server op,
//     as `ipvsman -e` sends), one at a time, each on another service, sent
//     to the leader while the checks run; from the write's acknowledgement
//     (committed) until each kernel holds the new weight, polled every 2 ms
//     per kernel with a one-service netlink dump. p50 and p99 are over the
//     changes, each the slowest of the three nodes: the time until every
//     kernel holds it. Per node figures and the time from the request's
//     start are printed too.
//   - Quiet window (SCALE_WINDOW): resync_cpu_pct is each daemon's
//     ipvsman_resync_cpu_seconds_total (CPU time of its drift-repair
//     passes) over the window's wall time, in % of one core; the daemon's
//     whole CPU (utime+stime from /proc) over the same window beside it.
//   - rss_mb: each daemon's VmRSS at the end. false_downs: health
//     transitions to down the daemons logged from the apply on (every
//     checked server is healthy, so each is false), beside the verdicts
//     down at the end.
//   - keepalived: the cluster is killed (no competition for the CPU), d1's
//     table flushed, and keepalived --check runs in d1 with the same
//     configuration (same weights, the same checks as HTTP_GET, connect_ip
//     and connect_port at the responder, delay_loop 6; the rest without a
//     checker). Once its kernel table equals the model, SCALE_ROUNDS times:
//     the first change's real server gets another weight in the file,
//     keepalived gets SIGHUP, and keepalived_reload_s runs until the kernel
//     holds the new weight (polled as above). The table is compared again
//     after the last round.
//   - single_change_vs_keepalived_reload: propagation p50 over the median
//     reload: one change in ipvsman against what the same change costs in
//     keepalived, which reloads its whole configuration.
//
// Figures are printed, never asserted: the test fails when the setup fails
// or a kernel does not hold what was written. Knobs (env): SCALE_SERVICES
// (2277), SCALE_SERVERS (37205), SCALE_CHECKS (2000), SCALE_CHANGES (50),
// SCALE_WINDOW (60s), SCALE_ROUNDS (3), SCALE_RESYNC (the daemon's
// --resync; empty: its default), SCALE_OUT (the processes' logs).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

const scResyncMetric = "ipvsman_resync_cpu_seconds_total"

func TestBenchScale(t *testing.T) {
	requireKernelIPVS(t)
	shape := scShape{
		services: hbEnvInt(t, "SCALE_SERVICES", 2277, 1, 250*250),
		servers:  hbEnvInt(t, "SCALE_SERVERS", 37205, 1, 250*250),
	}
	shape.checks = hbEnvInt(t, "SCALE_CHECKS", 2000, 0, min(shape.servers, 65535-scFirstPort+1))
	changes := hbEnvInt(t, "SCALE_CHANGES", 50, 1, shape.services)
	rounds := hbEnvInt(t, "SCALE_ROUNDS", 3, 1, 100)
	window := hbEnvDuration(t, "SCALE_WINDOW", time.Minute)
	if shape.servers < shape.services {
		t.Fatalf("SCALE_SERVERS=%d: want at least one per service (%d)", shape.servers, shape.services)
	}
	if _, err := os.Stat("/usr/sbin/keepalived"); err != nil {
		t.Fatalf("keepalived not found (bench_scale.sh installs Debian's on the host, whose root the VM runs on): %v", err)
	}
	// Thousands of listeners in the responder, thousands of checks in
	// flight: past the VM's default descriptor limit. Children inherit it.
	lim := syscall.Rlimit{Cur: 1 << 16, Max: 1 << 16}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("SCALE_OUT")
	if out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	tp := topo.Build(t, topo.Options{Prefix: "sc-", NoIPv6: true, LogDir: out})
	for _, d := range tp.DirectorNames() {
		tp.MustExec(d, "ip", "route", "add", scRoute, "dev", "eth0")
	}
	labtool := topo.BuildLabtool(t)
	var resp *topo.Proc
	if shape.checks > 0 {
		resp = tp.Start(topo.RealServer(1), labtool, "serve", "--name", topo.RealServer(1), "--http", topo.RealServerAddr(1)+":80",
			"--http-ports", fmt.Sprintf("%d-%d", scFirstPort, scFirstPort+shape.checks-1), "--stats", hbStats, "--echo", "", "--dns", "")
		if err := resp.WaitLine("ready", 2*time.Minute); err != nil {
			t.Fatal(err)
		}
	}

	// The model, as every node must compute it, to compare the kernels to.
	st := fsm.NewState()
	cfg := shape.config()
	benchApplyCmd(t, st, fsm.CmdReplaceConfig, fsm.ReplaceConfigPayload{Config: cfg, Reason: "bench-scale"})
	want := director.Desired(st)

	args := slices.Clone(labTiming)
	if r := os.Getenv("SCALE_RESYNC"); r != "" {
		args = append(args, "--resync", r)
	}
	c, nodes := harness.Directors(t, tp, "on", args...)
	if out != "" {
		t.Cleanup(func() {
			for _, n := range nodes {
				_ = os.WriteFile(filepath.Join(out, n.ID+".log"), []byte(n.Log()), 0o644)
			}
		})
	}
	leader := leaderOf(t, c, nodes)
	pids := map[string]int{}
	var kernels []*scKernel
	for _, n := range nodes {
		pids[n.ID] = daemonPid(t, c.Daemon, n.DataDir)
		kernels = append(kernels, scOpenKernel(t, n.ID, tp.NS(n.ID)))
	}
	respAlive := func() error {
		if resp != nil {
			select {
			case <-resp.Done():
				return fmt.Errorf("the responder exited:\n%s", resp.Output())
			default:
			}
		}
		return nil
	}
	alive := func() error {
		for _, n := range nodes {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pids[n.ID])); err != nil {
				return fmt.Errorf("%s's ipvsmand exited; log:\n%s", n.ID, n.Log())
			}
		}
		return respAlive()
	}
	cl := scAPI(c, leader, tp.NS(topo.Client))
	t.Cleanup(cl.HTTP.CloseIdleConnections)

	// 1. The whole configuration, one write; the kernels are polled while
	// it is under way.
	applyStart := time.Now()
	type applied struct {
		r   api.ApplyResponse
		err error
		at  time.Duration
	}
	// The request runs beside the polls; a failed poll ends the test,
	// and then the request too, which the cleanup awaits.
	ack := make(chan applied, 1)
	applyCtx, stopApply := context.WithTimeout(context.Background(), 10*time.Minute)
	finished := make(chan struct{})
	t.Cleanup(func() { stopApply(); <-finished })
	go func() {
		defer close(finished)
		r, err := cl.ApplyRequest(applyCtx, api.ApplyRequest{Config: cfg, Reason: "bench-scale"})
		ack <- applied{r, err, time.Since(applyStart)}
	}()
	held, dumps := scWaitAll(t, kernels, want, true, applyStart, 15*time.Minute, alive)
	a := <-ack // the write ends before its effect is read back, or with a timeout
	if a.err != nil || a.r.Result.Err != "" {
		t.Fatalf("apply: %v %q", a.err, a.r.Result.Err)
	}
	applyS := slices.Max(held).Seconds()
	t.Logf("apply: acknowledged after %.1f s (version %d); kernels held it after %v", a.at.Seconds(), a.r.Result.Version, held)

	// The checks settle: every checked server up.
	settleStart := time.Now()
	if shape.checks > 0 {
		// Polled every 2 s, not faster: each answer lists every check,
		// work for the leader the figures would carry.
		for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(2 * time.Second) {
			if err := alive(); err != nil {
				t.Fatal(err)
			}
			h, err := scHealth(cl)
			if err == nil && h["up"] == shape.checks {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("every checked server up: not within 10 minutes: %v of %d (%v)", h, shape.checks, err)
			}
		}
	}
	settle := time.Since(settleStart)

	// 2. Single weight changes, one at a time, each on another service.
	type change struct {
		svc      fsm.ServiceKey
		server   string
		weight   int
		fromAck  []time.Duration // per node
		fromSend []time.Duration
		ackAfter time.Duration
	}
	var done []change
	step := max(1, shape.services/changes)
	for i := range changes {
		key := scServiceAddr((i * step) % shape.services)
		sk := fsm.ServiceKey{Protocol: fsm.TCP, Address: key, Port: 80}
		svc := st.Config.Services[sk.String()]
		rs := *svc.Servers[svc.SortedServerKeys()[0]]
		rs.Weight = 100 + i
		ops := []fsm.Op{{Kind: fsm.OpEditServer, ServiceKey: sk, Server: &rs}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		send := time.Now()
		r, err := cl.Ops(ctx, ops)
		ackAt := time.Now()
		cancel()
		if err != nil || r.Result.Err != "" {
			t.Fatalf("change %d (%s of %s, weight %d): %v %q", i+1, rs.Key(), sk, rs.Weight, err, r.Result.Err)
		}
		fromAck, err := scWaitWeight(kernels, sk, rs.Key(), rs.Weight, ackAt, 2*time.Millisecond, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		ch := change{svc: sk, server: rs.Key(), weight: rs.Weight, fromAck: fromAck, ackAfter: ackAt.Sub(send)}
		for _, d := range fromAck {
			ch.fromSend = append(ch.fromSend, d+ch.ackAfter)
		}
		done = append(done, ch)
		benchApplyCmd(t, st, fsm.CmdOps, fsm.OpsPayload{Ops: ops})
	}
	want = director.Desired(st)
	for _, k := range kernels {
		diff, err := k.holds(want, true)
		if err != nil || diff != "" {
			t.Fatalf("%s after the changes: %v %s", k.name, err, diff)
		}
	}

	// 3. The quiet window: drift repair's CPU, and the daemons' own.
	type quiet struct {
		resync, cpu float64 // seconds
		resyncOK    bool
	}
	q := map[string]*quiet{}
	w0 := time.Now()
	for _, n := range nodes {
		v, ok := scMetric(t, c, n, tp.NS(topo.Client), scResyncMetric)
		q[n.ID] = &quiet{resync: v, resyncOK: ok, cpu: procCPU(t, pids[n.ID])}
	}
	time.Sleep(window)
	if err := alive(); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		v, ok := scMetric(t, c, n, tp.NS(topo.Client), scResyncMetric)
		q[n.ID].resync, q[n.ID].resyncOK = v-q[n.ID].resync, ok && q[n.ID].resyncOK
		q[n.ID].cpu = procCPU(t, pids[n.ID]) - q[n.ID].cpu
	}
	wall := time.Since(w0).Seconds()

	// 4. RSS, and 5. false downs, from the apply on.
	rss := map[string]float64{}
	for _, n := range nodes {
		rss[n.ID], _ = procMem(t, pids[n.ID])
	}
	falseDowns := 0
	for _, n := range nodes {
		falseDowns += scDowns(n.Log(), applyStart)
	}
	finalHealth, err := scHealth(cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kernels {
		if diff, err := k.holds(want, true); err != nil || diff != "" {
			t.Fatalf("%s at the end: %v %s", k.name, err, diff)
		}
	}

	// 6. keepalived, alone: the cluster killed (a kill: no stop to wait
	// for), d1's table flushed.
	for _, n := range nodes {
		n.Kill()
	}
	d1 := kernels[0]
	tp.MustExec(nodes[0].ID, "ipvsadm", "-C")
	ka := scKeepalived(t, tp, nodes[0].ID, d1, shape, st, done[0].svc, done[0].server, rounds, respAlive)

	// The figures.
	slowest := make([]float64, len(done))
	var perNode, fromSend, ackAfter []float64
	for i, ch := range done {
		slowest[i] = ms(slices.Max(ch.fromAck))
		for _, d := range ch.fromAck {
			perNode = append(perNode, ms(d))
		}
		fromSend = append(fromSend, ms(slices.Max(ch.fromSend)))
		ackAfter = append(ackAfter, ms(ch.ackAfter))
	}
	fmt.Printf("\nbench-scale: %d services x %d direct-routing real servers (%d checked: HTTP every %d s), three directors, in the lab VM (TCG emulation, %d vCPUs)\n",
		shape.services, shape.servers, shape.checks, scInterval/1000, runtime.NumCPU())
	fmt.Printf("apply: acknowledged after %.2f s; each kernel held it after (s): %s; one whole-table dump took %s ms (the resolution)\n",
		a.at.Seconds(), scJoin(held, func(d time.Duration) float64 { return d.Seconds() }, "%.2f"), scSpreadText(scMS(dumps), "%.0f"))
	fmt.Printf("checks: every checked server up %.1f s after the kernels held the configuration\n", settle.Seconds())
	fmt.Printf("propagation, %d changes, ack to every kernel (ms, each change's slowest node): %s\n", len(done), scList(slowest, "%.1f"))
	fmt.Printf("propagation, every change x node (ms): %s\n", scSpreadText(perNode, "%.1f"))
	fmt.Printf("propagation, request start to every kernel (ms): %s\n", scSpreadText(fromSend, "%.1f"))
	fmt.Printf("write acknowledged after (ms): %s\n", scSpreadText(ackAfter, "%.1f"))
	var pcts []float64
	for _, n := range nodes {
		x := q[n.ID]
		r := "n/a (" + scResyncMetric + " absent)"
		if x.resyncOK {
			r = fmt.Sprintf("%.2f%%", 100*x.resync/wall)
			pcts = append(pcts, 100*x.resync/wall)
		}
		fmt.Printf("%s: resync CPU %s of one core, whole daemon %.1f%% over %.0f s; RSS %.1f MiB\n", n.ID, r, 100*x.cpu/wall, wall, rss[n.ID])
	}
	fmt.Printf("keepalived: table complete %.1f s after start; reloads (s): %s; checker RSS %.1f MiB\n",
		ka.start.Seconds(), scList(scSeconds(ka.reloads), "%.2f"), ka.rss)
	fmt.Printf("verdicts at the end: %v\n", finalHealth)

	fmt.Printf("scale_apply_s: %.2f\n", applyS)
	fmt.Printf("propagation_p50_ms: %.1f\n", scPercentile(slowest, 50))
	fmt.Printf("propagation_p99_ms: %.1f\n", scPercentile(slowest, 99))
	if len(pcts) == len(nodes) {
		fmt.Printf("resync_cpu_pct: %s\n", scSpreadText(pcts, "%.2f"))
	} else {
		fmt.Printf("resync_cpu_pct: n/a (%s absent)\n", scResyncMetric)
	}
	for _, n := range nodes {
		fmt.Printf("rss_mb %s: %.1f\n", n.ID, rss[n.ID])
	}
	fmt.Printf("false_downs: %d\n", falseDowns)
	reloadMedian := scPercentile(scSeconds(ka.reloads), 50)
	fmt.Printf("keepalived_reload_s: %s\n", scSpreadText(scSeconds(ka.reloads), "%.2f"))
	fmt.Printf("single_change_vs_keepalived_reload: %.4f (propagation p50 %.1f ms / keepalived reload median %.2f s)\n",
		scPercentile(slowest, 50)/1000/reloadMedian, scPercentile(slowest, 50), reloadMedian)
	if len(pcts) != len(nodes) {
		t.Errorf("%s: not exported by every daemon", scResyncMetric)
	}
}

// scHealth counts the checked servers by verdict, from the leader's answer.
func scHealth(cl *api.Client) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := cl.Health(ctx)
	if err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	n := map[string]int{}
	for _, c := range h.Checks {
		n[string(c.Health)]++
	}
	return n, nil
}

// scDowns counts the health transitions to down a daemon logged since from.
func scDowns(log string, from time.Time) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		var l logLine
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &l) == nil &&
			l.Msg == "health transition" && l.Health == "down" && !l.Time.Before(from) {
			n++
		}
	}
	return n
}

// scMetric is one series' value from node's /metrics, asked for by name
// (name[]) so that only it is encoded: the whole exposition of 37,205 real
// servers is large. ok is false when the daemon does not export it.
func scMetric(t *testing.T, c *harness.Cluster, n *harness.Node, ns, name string) (float64, bool) {
	t.Helper()
	cl := scAPI(c, n, ns)
	defer cl.HTTP.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := newMetricsRequest(ctx, cl, name)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cl.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s /metrics: %v", n.ID, err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("%s /metrics: %s", n.ID, res.Status)
	}
	s := parseMetrics(t, n.ID, res.Body)
	return s.value(name, nil)
}

func scMS(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = ms(d)
	}
	return out
}

func scSeconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

func scJoin[T any](xs []T, f func(T) float64, format string) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf(format, f(x)))
	}
	return strings.Join(s, " ")
}

// scPercentile is the nearest-rank percentile p of xs.
func scPercentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// scSpreadText is min / median / max (n).
func scSpreadText(xs []float64, format string) string {
	if len(xs) == 0 {
		return "none"
	}
	s := slices.Sorted(slices.Values(xs))
	return fmt.Sprintf("min "+format+" / median "+format+" / max "+format+" (n=%d)", s[0], scPercentile(s, 50), s[len(s)-1], len(s))
}

// scList is every value, then the spread.
func scList(xs []float64, format string) string {
	return scJoin(xs, func(x float64) float64 { return x }, format) + "; " + scSpreadText(xs, format) + "; p99 " + fmt.Sprintf(format, scPercentile(xs, 99))
}

//go:build lab && labbench

package lab

// TestBenchHealth is `make bench-health`: what 5,000 HTTP checks at a 1 s
// interval cost the leader, next to keepalived's checker doing the same
// checks in the same VM, and how a storm of 5,000 transitions reaches the
// Raft log.
//
//   - One responder (labtool serve --http-ports) answers HTTP 200 on
//     10.0.0.21:20000-24999 in rs1 and counts the requests it answers. That
//     count is the denominator of both sides, measured the same way.
//   - keepalived --check in d2 (its own IPVS table): one NAT virtual server
//     with 5,000 real servers, each HTTP_GET / status 200, connect_timeout
//     0.5, delay_loop 1. Its checker child's CPU and RSS are measured.
//   - Then one ipvsmand --ipvs=on --bootstrap in d1 (a one-node cluster: the
//     leader runs the checks) with the same service as a YAML topology.
//     keepalived is gone by then: the two never compete for the CPU.
//   - Storm, first, from a calm start: the servers are brought up under a
//     check slow enough for the emulated VM (every 30 s, rise 1), then the
//     responder is killed and the benchmark's check applied: it starts from
//     the committed verdicts (up) and fails fall (3) times everywhere. At
//     the end the daemon is stopped and its Raft log read: the set-verdicts
//     entries after the kill, their transitions, and the most of them in
//     one runner tick (200 ms; counted from the tick number the runner stamps
//     on each entry).
//   - Then the responder again and the measured window, with the benchmark's
//     check {type: http, path: /, status: [200], interval: 1s, timeout:
//     500ms}: the daemon's CPU and RSS.
//
// CPU is utime+stime from /proc/PID/stat over WINDOW; RSS is VmRSS at the
// window's end. Figures are reported, not asserted: the test fails only
// when the setup fails. Knobs (env): BENCH_CHECKS (5000), BENCH_WINDOW (60s),
// BENCH_PROFILE (set: ipvsmand's CPU profile of the window, in BENCH_OUT),
// BENCH_STRACE (set: strace -c -f of each checker, in BENCH_OUT),
// BENCH_DAEMON_ENV (ipvsmand's extra environment).

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/figures"
	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

const (
	hbFirstPort = 20000
	hbStats     = "127.0.0.1:9999" // the responder's counter, inside rs1
	hbDebug     = "127.0.0.1:6060" // ipvsmand's pprof, inside d1
	hbTick      = 200 * time.Millisecond
)

func hbEnvInt(t *testing.T, name string, def, lo, hi int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		t.Fatalf("%s=%q: want a number %d-%d", name, s, lo, hi)
	}
	return n
}

func hbEnvDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 5*time.Second {
		t.Fatalf("%s=%q: want a Go duration of at least 5s", name, s)
	}
	return d
}

// hbRequests is the responder's count of HTTP requests answered.
func hbRequests(t *testing.T, tp *topo.Topology) uint64 {
	t.Helper()
	out := tp.MustExec(topo.RealServer(1), "curl", "-sS", "--max-time", "20", "http://"+hbStats+"/")
	var st struct {
		N *uint64 `json:"http_requests"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.N == nil {
		t.Fatalf("responder counter: %q (%v)", out, err)
	}
	return *st.N
}

// hbSample is one end of a measured window.
type hbSample struct {
	at              time.Time
	requests        uint64
	cpu, respCPU    float64
	user, sys       float64
	vmBusy, vmTotal uint64
}

func hbTake(t *testing.T, tp *topo.Topology, pid, respPid int) hbSample {
	t.Helper()
	// The counter first, then the clocks at once: both ends of the window
	// carry the same offset between the two.
	s := hbSample{requests: hbRequests(t, tp)}
	s.at, s.respCPU = time.Now(), procCPU(t, respPid)
	s.user, s.sys = procCPUSplit(t, pid)
	s.cpu = s.user + s.sys
	s.vmBusy, s.vmTotal = vmCPU(t)
	return s
}

// hbResult is one checker's window.
type hbResult struct {
	name          string
	checks        uint64  // requests the responder answered in the window
	wall          float64 // seconds
	cpu, respCPU  float64 // seconds in the window
	sys           float64 // of cpu, in the kernel
	rss, hwm      float64 // MiB
	vmBusy        float64 // share of both vCPUs, 0-1
	selfCounted   string  // checks the checker reports itself, if it does
	downsInWindow int     // servers it marked down during the window
}

func (r hbResult) perK() float64     { return r.cpu / (float64(r.checks) / 1000) }
func (r hbResult) respPerK() float64 { return r.respCPU / (float64(r.checks) / 1000) }
func (r hbResult) rate() float64     { return float64(r.checks) / r.wall }

func hbMeasure(t *testing.T, tp *topo.Topology, name string, pid, respPid int, window time.Duration) hbResult {
	t.Helper()
	a := hbTake(t, tp, pid, respPid)
	var trace *exec.Cmd
	if out := os.Getenv("BENCH_OUT"); os.Getenv("BENCH_STRACE") != "" && out != "" {
		// System calls by count and time over most of the window (a
		// diagnosis: strace slows the process, so the figures of such a
		// run are not the checker's).
		secs := strconv.Itoa(int(window.Seconds()) - 5)
		trace = exec.Command("timeout", "-s", "INT", secs, "strace", "-c", "-f", "-p", strconv.Itoa(pid), "-o", filepath.Join(out, name+".strace"))
		if err := trace.Start(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(window)
	if trace != nil {
		if err := trace.Wait(); err != nil {
			t.Logf("strace: %v", err)
		}
	}
	b := hbTake(t, tp, pid, respPid)
	r := hbResult{name: name, checks: b.requests - a.requests, wall: b.at.Sub(a.at).Seconds(),
		cpu: b.cpu - a.cpu, respCPU: b.respCPU - a.respCPU, sys: b.sys - a.sys,
		vmBusy: float64(b.vmBusy-a.vmBusy) / float64(b.vmTotal-a.vmTotal)}
	r.rss, r.hwm = procMem(t, pid)
	if r.checks == 0 {
		t.Fatalf("%s: the responder answered no request in %s", name, window)
	}
	t.Logf("%s: %d checks in %.1f s, %.2f CPU s, RSS %.1f MiB", name, r.checks, r.wall, r.cpu, r.rss)
	return r
}

// hbWarm waits until the responder has answered rounds×checks requests
// since from: every target checked a few times, start-up work done.
func hbWarm(t *testing.T, tp *topo.Topology, what string, from uint64, want int, alive func() error) {
	t.Helper()
	harness.Eventually(t, 5*time.Minute, what, func() (bool, string) {
		if err := alive(); err != nil {
			t.Fatal(err)
		}
		n := hbRequests(t, tp) - from
		return n >= uint64(want), fmt.Sprintf("%d requests answered, want %d", n, want)
	})
}

func keepalivedConf(checks int) string {
	var b strings.Builder
	b.WriteString(`global_defs {
    router_id bench-health
}
virtual_server ` + topo.VIP + ` 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
`)
	for i := range checks {
		fmt.Fprintf(&b, `    real_server %s %d {
        weight 1
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 0.5
        }
    }
`, topo.RealServerAddr(1), hbFirstPort+i)
	}
	b.WriteString("}\n")
	return b.String()
}

// The benchmark's check, as keepalived's above; and a slow one, which
// this VM can keep up with, to bring every server up before the storm.
const (
	hbCheck     = "{type: http, path: /, status: [200], interval: 1s, timeout: 500ms}"
	hbSlowCheck = "{type: http, path: /, status: [200], interval: 30s, timeout: 5s, rise: 1}"
)

func ipvsmanTopo(checks int, check string) string {
	var b strings.Builder
	b.WriteString(`services:
  - protocol: tcp
    address: ` + topo.VIP + `
    port: 80
    scheduler: rr
    forward: masq
    check: ` + check + `
    servers:
`)
	for i := range checks {
		fmt.Fprintf(&b, "      - {address: %s, port: %d}\n", topo.RealServerAddr(1), hbFirstPort+i)
	}
	return b.String()
}

// hbHealth is `ipvsman health --json`, reduced to what the bench reads.
type hbHealth struct {
	Checks []struct {
		Server string `json:"server"`
		Health string `json:"health"`
		Checks uint64 `json:"checks"`
	} `json:"checks"`
}

// checkedSince counts the servers checked at least n more times than in
// before.
func (h hbHealth) checkedSince(before hbHealth, n uint64) int {
	was := map[string]uint64{}
	for _, c := range before.Checks {
		was[c.Server] = c.Checks
	}
	k := 0
	for _, c := range h.Checks {
		if c.Checks >= was[c.Server]+n {
			k++
		}
	}
	return k
}

func (h hbHealth) count(health string, minChecks uint64) (n int, sum uint64) {
	for _, c := range h.Checks {
		sum += c.Checks
		if (health == "" || c.Health == health) && c.Checks >= minChecks {
			n++
		}
	}
	return n, sum
}

func getHealth(c *harness.Cluster, n *harness.Node) (hbHealth, error) {
	r := c.CLI(n, "", "health", "--json")
	var h hbHealth
	if r.Err != nil {
		return h, fmt.Errorf("ipvsman health: %w: %s", r.Err, r.Stderr)
	}
	return h, json.Unmarshal([]byte(r.Stdout), &h)
}

// daemonPid finds the ipvsmand serving dataDir (the harness keeps its
// process to itself; `ip netns exec` execs, so the binary is argv[0]).
func daemonPid(t *testing.T, bin, dataDir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if i := slices.Index(args, "--data-dir"); args[0] == bin && i > 0 && i+1 < len(args) && args[i+1] == dataDir {
			return pid
		}
	}
	t.Fatalf("no %s process with --data-dir %s", bin, dataDir)
	return 0
}

func TestBenchHealth(t *testing.T) {
	requireKernelIPVS(t)
	checks := hbEnvInt(t, "BENCH_CHECKS", 5000, 1, 65535-hbFirstPort+1)
	window := hbEnvDuration(t, "BENCH_WINDOW", time.Minute)
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Fatalf("keepalived not found (bench_health.sh installs Debian's on the host, whose root the VM runs on): %v", err)
	}
	// 5,000 listeners, 5,000 checks in flight: more descriptors than the
	// VM's default hard limit (4096). Children inherit this.
	lim := syscall.Rlimit{Cur: 1 << 16, Max: 1 << 16}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// Every process's output is kept in BENCH_OUT (the work directory,
	// which the host sees) when it is set.
	out := os.Getenv("BENCH_OUT")
	if out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	tp := topo.Build(t, topo.Options{Prefix: "hb-", NoIPv6: true, LogDir: out})
	labtool := topo.BuildLabtool(t)
	ports := fmt.Sprintf("%d-%d", hbFirstPort, hbFirstPort+checks-1)
	rs := topo.RealServer(1)
	startResponder := func() *topo.Proc {
		p := tp.Start(rs, labtool, "serve", "--name", rs, "--http", topo.RealServerAddr(1)+":80",
			"--http-ports", ports, "--stats", hbStats, "--echo", "", "--dns", "")
		if err := p.WaitLine("ready", 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		return p
	}
	resp := startResponder()
	alive := func(p *topo.Proc) func() error {
		return func() error {
			select {
			case <-p.Done():
				return fmt.Errorf("%s exited; output:\n%s", p.Name, p.Output())
			default:
				return nil
			}
		}
	}

	// keepalived's checker in d2.
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(keepalivedConf(checks)), 0o644); err != nil {
		t.Fatal(err)
	}
	tp.MustExec(topo.Director(2), "keepalived", "--config-test", "-f", conf)
	checkerPidFile := filepath.Join(dir, "checkers.pid")
	from := hbRequests(t, tp)
	kad := tp.Start(topo.Director(2), "keepalived", "--check", "--dont-fork", "--dont-respawn", "--log-console", "--no-syslog",
		"-f", conf, "-p", filepath.Join(dir, "keepalived.pid"), "-c", checkerPidFile)
	var kpid int
	harness.Eventually(t, time.Minute, "keepalived's checker pid file", func() (bool, string) {
		if err := alive(kad)(); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(checkerPidFile)
		kpid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return kpid > 0, string(b)
	})
	hbWarm(t, tp, "keepalived checked every server three times", from, 3*checks, alive(kad))
	downs := func() int {
		b, _ := os.ReadFile(kad.LogPath)
		return strings.Count(string(b), "Removing service")
	}
	d0 := downs()
	ka := hbMeasure(t, tp, "keepalived", kpid, resp.Pid(), window)
	ka.downsInWindow = downs() - d0
	ka.selfCounted = "-"
	if err := alive(kad)(); err != nil {
		t.Fatal(err)
	}
	if err := kad.Kill(); err != nil { // a kill, not a stop: no 5,000 IPVS deletes to wait for
		t.Fatal(err)
	}

	// ipvsmand in d1, a one-node cluster.
	c := harness.NewCluster(t)
	c.CLINetNS = tp.NS(topo.Client)
	a := topo.DirectorAddr(1)
	node := c.AddAt(topo.Director(1), a+":7000", a+":7080", tp.NS(topo.Director(1)), append([]string{"--debug-addr", hbDebug}, labTiming...)...)
	node.IPVS = "on"
	if e := os.Getenv("BENCH_DAEMON_ENV"); e != "" {
		node.Env = strings.Fields(e)
	}
	if out != "" {
		t.Cleanup(func() { _ = os.WriteFile(filepath.Join(out, "ipvsmand.log"), []byte(node.Log()), 0o644) })
	}
	node.Start("--bootstrap")
	c.Leader(t, node, []*harness.Node{node})
	pid := daemonPid(t, c.Daemon, node.DataDir)
	nodeAlive := func() error {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return fmt.Errorf("ipvsmand exited; log:\n%s", node.Log())
		}
		return nil
	}
	health := func() (hbHealth, error) {
		if err := nodeAlive(); err != nil {
			t.Fatal(err)
		}
		return getHealth(c, node)
	}
	mustHealth := func() hbHealth {
		h, err := health()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	apply := func(check string) {
		file := filepath.Join(dir, "bench.yaml")
		if err := os.WriteFile(file, []byte(ipvsmanTopo(checks, check)), 0o644); err != nil {
			t.Fatal(err)
		}
		c.MustCLI(node, "", "apply", "-f", file)
	}

	// The storm first, from a calm start: every server up under a check
	// slow enough for this VM, then the responder killed and the
	// benchmark's check applied, which starts from the committed verdicts
	// (up) and fails fall (3) times in a row everywhere.
	slowAt := time.Now()
	apply(hbSlowCheck)
	harness.Eventually(t, 3*time.Minute, "every server up under the slow check", func() (bool, string) {
		h, err := health()
		if err != nil {
			return false, err.Error()
		}
		n, _ := h.count("up", 1)
		return n == checks, fmt.Sprintf("%d of %d up", n, checks)
	})
	slowUp := time.Since(slowAt)
	stormAt := time.Now()
	if err := resp.Kill(); err != nil {
		t.Fatal(err)
	}
	apply(hbCheck)
	harness.Eventually(t, 2*time.Minute, "every server down", func() (bool, string) {
		h, err := health()
		if err != nil {
			return false, err.Error()
		}
		n, _ := h.count("down", 0)
		return n == checks, fmt.Sprintf("%d of %d down", n, checks)
	})
	harness.Eventually(t, time.Minute, "every transition committed", func() (bool, string) {
		seen, committed := stormLog(node.Log(), stormAt)
		return seen > 0 && committed >= seen, fmt.Sprintf("%d transitions, %d committed", seen, committed)
	})
	stormEnd := time.Now()
	seen, committed := stormLog(node.Log(), stormAt)

	// The measurement: the responder back, the benchmark's check.
	resp = startResponder()
	before := mustHealth()
	harness.Eventually(t, 5*time.Minute, "every server checked twice more with the responder back", func() (bool, string) {
		h, err := health()
		if err != nil {
			return false, err.Error()
		}
		n := h.checkedSince(before, 2)
		return n == checks, fmt.Sprintf("%d of %d", n, checks)
	})
	h0 := mustHealth()
	_, sum0 := h0.count("", 0)
	var profile *topo.Proc
	if os.Getenv("BENCH_PROFILE") != "" && out != "" {
		// A CPU profile of the window but its last seconds, so that it is
		// written before the daemon stops.
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", hbDebug, int(window.Seconds())-3)
		profile = tp.Start(topo.Director(1), "curl", "-sS", "-o", filepath.Join(out, "ipvsmand.cpu.pprof"), url)
	}
	t0 := time.Now()
	im := hbMeasure(t, tp, "ipvsman", pid, resp.Pid(), window)
	t1 := time.Now()
	h1 := mustHealth()
	up, sum1 := h1.count("up", 0)
	im.selfCounted = strconv.FormatUint(sum1-sum0, 10) + " (health --json, a little wider window)"
	for _, l := range strings.Split(node.Log(), "\n") {
		var ll logLine
		if json.Unmarshal([]byte(l), &ll) == nil && ll.Msg == "health transition" && ll.Health == "down" &&
			!ll.Time.Before(t0) && ll.Time.Before(t1) {
			im.downsInWindow++
		}
	}

	if profile != nil {
		if err := profile.Wait(time.Minute); err != nil {
			t.Logf("profile: %v", err)
		}
	}
	if err := node.Stop(); err != nil {
		t.Fatal(err)
	}
	var entries []verdictEntry
	for _, e := range verdictEntries(t, node.DataDir, stormAt) {
		if e.at.Before(stormEnd) {
			entries = append(entries, e)
		}
	}
	if len(entries) == 0 {
		t.Fatal("no set-verdicts entry in the Raft log after the responder was killed")
	}
	stormDown, stormAll := 0, 0
	for _, e := range entries {
		stormDown += e.down
		stormAll += e.all
	}
	perTick, stamped := figures.MostPerTick(stamps(entries))
	anyTick := mostInAnyTick(entries, hbTick)
	span := entries[len(entries)-1].at.Sub(entries[0].at)
	var timeline []string
	for _, e := range entries {
		timeline = append(timeline, fmt.Sprintf("+%d ms: %d", e.at.Sub(stormAt).Milliseconds(), e.all))
	}

	fmt.Printf("\nbench-health: %d HTTP checks (GET /, 200, every 1 s, 500 ms timeout) against one responder (%s:%s in %s), "+
		"a %s window each, one after the other, in the lab VM (TCG emulation, %d vCPUs)\n",
		checks, topo.RealServerAddr(1), ports, rs, window, runtime.NumCPU())
	fmt.Printf("%-44s %14s %14s\n", "measurement", "ipvsman", "keepalived")
	row := func(name, format string, f func(hbResult) any) {
		fmt.Printf("%-44s %14s %14s\n", name, fmt.Sprintf(format, f(im)), fmt.Sprintf(format, f(ka)))
	}
	row("checks answered in the window (responder)", "%d", func(r hbResult) any { return r.checks })
	row(fmt.Sprintf("checks answered per second (asked: %d)", checks), "%.0f", func(r hbResult) any { return r.rate() })
	row("checker CPU seconds in the window", "%.2f", func(r hbResult) any { return r.cpu })
	row("checker CPU seconds per 1,000 checks", "%.4f", func(r hbResult) any { return r.perK() })
	row("of which in the kernel", "%.0f%%", func(r hbResult) any { return 100 * r.sys / r.cpu })
	row("whole VM CPU seconds per 1,000 checks", "%.4f", func(r hbResult) any {
		return float64(runtime.NumCPU()) * r.vmBusy * r.wall / (float64(r.checks) / 1000)
	})
	row("checker CPU use (1.00 = one vCPU)", "%.2f", func(r hbResult) any { return r.cpu / r.wall })
	row("checker RSS MiB at the window's end", "%.1f", func(r hbResult) any { return r.rss })
	row("checker peak RSS MiB (VmHWM)", "%.1f", func(r hbResult) any { return r.hwm })
	row("responder CPU seconds per 1,000 checks", "%.4f", func(r hbResult) any { return r.respPerK() })
	row("whole VM busy (both vCPUs)", "%.0f%%", func(r hbResult) any { return 100 * r.vmBusy })
	row("servers marked down in the window", "%d", func(r hbResult) any { return r.downsInWindow })
	fmt.Printf("%-44s %s\n", "ipvsman's own count of its checks", im.selfCounted)
	fmt.Printf("%-44s %d of %d up\n", "ipvsman verdicts after the window", up, checks)
	fmt.Printf("storm: every server up %.0f s after applying %s; then the responder was killed and %s applied\n",
		slowUp.Seconds(), hbSlowCheck, hbCheck)
	fmt.Printf("storm: the runner logged %d transitions, %d committed\n", seen, committed)
	fmt.Printf("storm: Raft log: %d set-verdicts entries, %d transitions (%d to down), over %d ms\n",
		len(entries), stormAll, stormDown, span.Milliseconds())
	fmt.Printf("storm: entries (proposed after the kill: transitions): %s\n", strings.Join(timeline, ", "))
	fmt.Printf("storm: most entries stamped with one tick of the runner: %s; in any %s: %d\n",
		figures.Int(perTick, stamped), hbTick, anyTick)
	fmt.Printf("ipvsman_cpu_s_per_1000_checks: %.4f\n", im.perK())
	fmt.Printf("keepalived_cpu_s_per_1000_checks: %.4f\n", ka.perK())
	fmt.Printf("ipvsman_rss_mb: %.1f\n", im.rss)
	fmt.Printf("keepalived_rss_mb: %.1f\n", ka.rss)
	fmt.Printf("ipvsman_checks_per_s: %.0f\n", im.rate())
	fmt.Printf("keepalived_checks_per_s: %.0f\n", ka.rate())
	fmt.Printf("storm_transitions: %d\n", stormAll)
	fmt.Printf("storm_entries: %d\n", len(entries))
	fmt.Printf("cpu_vs_keepalived: %.2f\n", im.perK()/ka.perK())
	fmt.Printf("storm_entries_per_tick: %s\n", figures.Int(perTick, stamped))
}

//go:build lab && labbench

package lab

// TestBenchHealth is `make bench-health`: what HTTP checks at a 1 s
// interval cost ipvsman's leader, next to keepalived's checker doing the
// same checks in the same VM, compared at a rate both can hold; what each
// does above it; and how a storm of transitions reaches the Raft log.
//
//   - One responder (labtool serve --http-ports) answers HTTP 200 on
//     10.0.0.21:20000-(20000+BENCH_CHECKS-1) in rs1 and counts the requests
//     it answers. That count is the denominator of both sides, measured the
//     same way, and gives each side's effective interval: the window over
//     the checks each server got in it (window × servers / answered).
//   - keepalived --check in d2 (its own IPVS table): one NAT virtual server
//     with N real servers, each HTTP_GET / status 200, connect_timeout 0.5,
//     delay_loop 1; started afresh for each round and killed after it. Its
//     checker child's CPU and RSS are measured; its false downs are the
//     "Removing service" lines it logged from its start to the window's end.
//   - ipvsmand --ipvs=on --bootstrap in d1 (a one-node cluster: the leader
//     runs the checks), started once, with the same service as a YAML
//     topology; for each of its rounds the check {type: http, path: /,
//     status: [200], interval: 1s, timeout: 500ms} is applied, and taken
//     off again after it (the servers stay). Its false downs are the
//     transitions to down it logged from the apply to the window's end.
//     Between its rounds it sits idle; its CPU in keepalived's windows is
//     printed beside them.
//   - The sweep: keepalived alone over BENCH_LADDER (checks asked, one per
//     server every second), up the ladder until a rung does not hold, i.e.
//     marks a healthy server down or stretches its effective interval more
//     than 25% past 1 s (keepalived schedules a check a delay_loop after
//     the last one ended, so it runs over by a check's latency by design). The highest
//     rung held is the sustainable rate; none held fails the test.
//   - At the sustainable rate, BENCH_ROUNDS rounds of each checker,
//     interleaved (keepalived first in odd rounds, ipvsman first in even
//     ones): each round's CPU per 1,000 answered checks, the ratio per
//     round, and min / median / max. cpu_vs_keepalived is the median ratio.
//   - Overload: BENCH_CHECKS (5,000) asked of each; neither keeps 1 s there
//     in this VM, so what shows is how each gives way: its false downs and
//     its effective interval (ipvsman paces itself: fewer checks in flight,
//     so a longer interval and no false downs; keepalived keeps starting
//     checks on time and times them out).
//   - Storm, last, from a calm start: the BENCH_CHECKS servers are brought
//     up under a check slow enough for the emulated VM (every 30 s, rise
//     1), then the responder is killed and the benchmark's check applied:
//     it starts from the committed verdicts (up) and fails fall (3) times
//     everywhere. The daemon is then stopped and its Raft log read: the
//     set-verdicts entries after the kill, their transitions, and the most
//     of them in one runner tick (200 ms; counted from the tick number the
//     runner stamps on each entry).
//
// CPU is utime+stime from /proc/PID/stat over the window; RSS is VmRSS at
// the window's end. Figures are reported, not asserted: the test fails
// only when the setup fails or no rung of the ladder held. Knobs (env):
// BENCH_CHECKS (5000: the overload and the storm), BENCH_LADDER
// (100,250,500,750,1000,1500,2000,3000), BENCH_RATE (set: no sweep, the
// rounds at this many checks, said so in the report: for a VM too busy
// for any rung to hold), BENCH_ROUNDS (3), BENCH_WINDOW (30s,
// each round's), BENCH_STORM (0: skip the storm), BENCH_PROFILE (set:
// ipvsmand's CPU profile of each of its windows, in BENCH_OUT),
// BENCH_STRACE (set: strace -c -f of each checker, in BENCH_OUT; "perf":
// perf stat's counts of its system calls and context switches instead),
// BENCH_DAEMON_ENV (ipvsmand's extra environment).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/figures"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// hbSlack is how far past the configured interval a rung's effective
// interval may be and still hold. keepalived starts a server's next check
// a delay_loop after the last one ended, so its interval is the delay plus
// a check's latency, which under the lab's emulation is 100-200 ms with
// the VM far from busy (1.17 s seen at 50 checks).
const hbSlack = 0.25

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

// hbLadder is BENCH_LADDER: ascending check counts, each below the
// overload's.
func hbLadder(t *testing.T, overload int) []int {
	t.Helper()
	s := os.Getenv("BENCH_LADDER")
	if s == "" {
		var out []int // the default's rungs below the overload
		for _, n := range []int{100, 250, 500, 750, 1000, 1500, 2000, 3000} {
			if n < overload {
				out = append(out, n)
			}
		}
		return out
	}
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n >= overload || (len(out) > 0 && n <= out[len(out)-1]) {
			t.Fatalf("BENCH_LADDER=%q: want ascending check counts below BENCH_CHECKS (%d)", s, overload)
		}
		out = append(out, n)
	}
	return out
}

func TestBenchHealth(t *testing.T) {
	requireKernelIPVS(t)
	checks := hbEnvInt(t, "BENCH_CHECKS", 5000, 2, 65535-hbFirstPort+1)
	ladder := hbLadder(t, checks)
	rounds := hbEnvInt(t, "BENCH_ROUNDS", 3, 1, 20)
	window := hbEnvDuration(t, "BENCH_WINDOW", 30*time.Second)
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
	profile := func(label string) string {
		if os.Getenv("BENCH_PROFILE") == "" || out == "" {
			return ""
		}
		return filepath.Join(out, "ipvsmand-"+label+".cpu.pprof")
	}

	b := &hbBench{t: t, dir: t.TempDir(), out: out, window: window,
		tp:      topo.Build(t, topo.Options{Prefix: "hb-", NoIPv6: true, LogDir: out}),
		labtool: topo.BuildLabtool(t), ports: fmt.Sprintf("%d-%d", hbFirstPort, hbFirstPort+checks-1)}
	b.startResponder()
	rep := hbReport{checks: checks, ports: b.ports, window: window}

	// The sweep: keepalived alone, up the ladder until a rung fails;
	// BENCH_RATE skips it (a rate chosen by hand, said so in the report).
	if rep.forced = hbEnvInt(t, "BENCH_RATE", 0, 0, checks-1); rep.forced > 0 {
		ladder = nil
	}
	for _, n := range ladder {
		r := b.keepalived(n, fmt.Sprintf("sweep-%d", n))
		rep.sweep = append(rep.sweep, r)
		if !r.rung().Held(hbInterval, hbSlack) {
			break
		}
	}
	rungs := make([]figures.Rung, len(rep.sweep))
	for i, r := range rep.sweep {
		rungs[i] = r.rung()
	}
	sustainable, ok := figures.Sustainable(rungs, hbInterval, hbSlack)
	if rep.forced > 0 {
		sustainable, ok = rep.forced, true
	}
	if !ok {
		rep.printSweep()
		t.Fatalf("keepalived held no rung of the ladder %v: no rate to compare the checkers at", ladder)
	}
	rep.sustainable = sustainable

	// The comparison at the sustainable rate, interleaved.
	b.startDaemon()
	b.apply(sustainable, "")
	for i := range rounds {
		label := fmt.Sprintf("round-%d", i+1)
		var ka, im hbRound
		if i%2 == 0 {
			ka = b.keepalived(sustainable, label)
			im = b.ipvsman(sustainable, label, profile(label))
		} else {
			im = b.ipvsman(sustainable, label, profile(label))
			ka = b.keepalived(sustainable, label)
		}
		rep.rounds = append(rep.rounds, [2]hbRound{ka, im})
	}

	// Overload: each asked for more than it can check every second.
	rep.overload[0] = b.keepalived(checks, "overload")
	rep.overload[1] = b.ipvsman(checks, "overload", profile("overload"))

	if os.Getenv("BENCH_STORM") != "0" {
		rep.storm = b.storm(checks)
	}
	rep.print()
}

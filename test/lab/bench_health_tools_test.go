//go:build lab && labbench

package lab

// The two checkers of make bench-health, each run for one measured round:
// keepalived's started afresh for the round and killed after it, ipvsmand
// (a one-node cluster, started once) given the check for the round and
// then the same servers without one.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	hbInterval  = time.Second // both checkers' configured interval
)

// The benchmark's check, as keepalived's below; and a slow one, which
// this VM can keep up with, to bring every server up before the storm.
const (
	hbCheck     = "{type: http, path: /, status: [200], interval: 1s, timeout: 500ms}"
	hbSlowCheck = "{type: http, path: /, status: [200], interval: 30s, timeout: 5s, rise: 1}"
)

// hbBench is the lab the rounds share: one responder answering on every
// port any round uses, and ipvsmand once it is started.
type hbBench struct {
	t        *testing.T
	tp       *topo.Topology
	dir, out string // scratch; where output is kept ("" for nowhere)
	window   time.Duration
	labtool  string
	ports    string // the responder's range, FROM-TO
	resp     *topo.Proc
	kaRuns   int // keepalived starts so far, for file names

	c    *harness.Cluster
	node *harness.Node
	pid  int // ipvsmand's
}

func (b *hbBench) startResponder() {
	b.t.Helper()
	p := b.tp.Start(topo.RealServer(1), b.labtool, "serve", "--name", topo.RealServer(1), "--http", topo.RealServerAddr(1)+":80",
		"--http-ports", b.ports, "--stats", hbStats, "--echo", "", "--dns", "")
	if err := p.WaitLine("ready", 2*time.Minute); err != nil {
		b.t.Fatal(err)
	}
	b.resp = p
}

// requests is the responder's count of HTTP requests answered.
func (b *hbBench) requests() uint64 {
	b.t.Helper()
	out := b.tp.MustExec(topo.RealServer(1), "curl", "-sS", "--max-time", "20", "http://"+hbStats+"/")
	var st struct {
		N *uint64 `json:"http_requests"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.N == nil {
		b.t.Fatalf("responder counter: %q (%v)", out, err)
	}
	return *st.N
}

func procAlive(p *topo.Proc) func() error {
	return func() error {
		select {
		case <-p.Done():
			return fmt.Errorf("%s exited; output:\n%s", p.Name, p.Output())
		default:
			return nil
		}
	}
}

// warm waits until the responder has answered want requests since from:
// every target checked a few times, start-up work done.
func (b *hbBench) warm(what string, from uint64, want int, alive func() error) {
	b.t.Helper()
	harness.Eventually(b.t, 5*time.Minute, what, func() (bool, string) {
		if err := alive(); err != nil {
			b.t.Fatal(err)
		}
		if err := procAlive(b.resp)(); err != nil {
			b.t.Fatal(err)
		}
		n := b.requests() - from
		return n >= uint64(want), fmt.Sprintf("%d requests answered, want %d", n, want)
	})
}

// hbRound is one checker's measured window at one rate.
type hbRound struct {
	tool         string
	servers      int     // checks asked: one per server every hbInterval
	checks       uint64  // requests the responder answered in the window
	wall         float64 // seconds
	cpu, respCPU float64 // seconds in the window
	sys          float64 // of cpu, in the kernel
	rss, hwm     float64 // MiB
	vmBusy       float64 // share of both vCPUs, 0-1
	// falseDowns: servers marked down from the checks' start to the
	// window's end; the responder answers every one of them.
	falseDowns int
	// bystander: ipvsmand's CPU seconds in keepalived's window (idle,
	// with no check); -1 when it was not running.
	bystander float64
}

func (r hbRound) perK() float64     { return r.cpu / (float64(r.checks) / 1000) }
func (r hbRound) respPerK() float64 { return r.respCPU / (float64(r.checks) / 1000) }
func (r hbRound) rate() float64     { return float64(r.checks) / r.wall }
func (r hbRound) interval() time.Duration {
	return figures.EffectiveInterval(time.Duration(r.wall*float64(time.Second)), r.servers, r.checks)
}
func (r hbRound) rung() figures.Rung {
	return figures.Rung{Checks: r.servers, FalseDowns: r.falseDowns, Interval: r.interval()}
}

// hbSample is one end of a measured window.
type hbSample struct {
	at              time.Time
	requests        uint64
	respCPU         float64
	user, sys       float64
	other           float64 // the bystander's CPU
	vmBusy, vmTotal uint64
}

func (b *hbBench) take(pid, other int) hbSample {
	b.t.Helper()
	// The counter first, then the clocks at once: both ends of the window
	// carry the same offset between the two.
	s := hbSample{requests: b.requests()}
	s.at, s.respCPU = time.Now(), procCPU(b.t, b.resp.Pid())
	s.user, s.sys = procCPUSplit(b.t, pid)
	if other > 0 {
		s.other = procCPU(b.t, other)
	}
	s.vmBusy, s.vmTotal = vmCPU(b.t)
	return s
}

// measure is one window of the checker pid; other, when above 0, is a
// process whose CPU in the same window is reported beside it.
func (b *hbBench) measure(tool string, servers, pid, other int, label string) hbRound {
	b.t.Helper()
	a := b.take(pid, other)
	var trace *exec.Cmd
	if mode := os.Getenv("BENCH_STRACE"); mode != "" && b.out != "" {
		// System calls over most of the window, a diagnosis: strace
		// counts and times them but slows the process, so the figures of
		// such a run are not the checker's; "perf" counts them (and the
		// context switches) at the kernel's tracepoints, which costs
		// little.
		secs := strconv.Itoa(int(b.window.Seconds()) - 5)
		file := filepath.Join(b.out, label+"-"+tool+".strace")
		trace = exec.Command("timeout", "-s", "INT", secs, "strace", "-c", "-f", "-p", strconv.Itoa(pid), "-o", file)
		if mode == "perf" {
			ev := []string{"raw_syscalls:sys_enter", "context-switches"}
			for _, s := range []string{"futex", "nanosleep", "epoll_pwait", "epoll_wait", "epoll_ctl", "tgkill", "sched_yield",
				"socket", "connect", "read", "write", "sendto", "close", "setsockopt", "getsockopt", "timerfd_settime"} {
				ev = append(ev, "syscalls:sys_enter_"+s)
			}
			trace = exec.Command("timeout", "-s", "INT", secs, "sh", "-c", `mountpoint -q /sys/kernel/tracing || mount -t tracefs none /sys/kernel/tracing; exec perf stat -e "$0" -p "$1" -o "$2"`,
				strings.Join(ev, ","), strconv.Itoa(pid), file+".perf")
		}
		if err := trace.Start(); err != nil {
			b.t.Fatal(err)
		}
	}
	time.Sleep(b.window)
	if trace != nil {
		// timeout ends the tracer as planned, with its status 124.
		if err := trace.Wait(); err != nil && trace.ProcessState.ExitCode() != 124 {
			b.t.Logf("%s: %v", trace.Args, err)
		}
	}
	z := b.take(pid, other)
	r := hbRound{tool: tool, servers: servers, checks: z.requests - a.requests, wall: z.at.Sub(a.at).Seconds(),
		cpu: z.user + z.sys - a.user - a.sys, respCPU: z.respCPU - a.respCPU, sys: z.sys - a.sys,
		vmBusy: float64(z.vmBusy-a.vmBusy) / float64(z.vmTotal-a.vmTotal), bystander: -1}
	if other > 0 {
		r.bystander = z.other - a.other
	}
	r.rss, r.hwm = procMem(b.t, pid)
	if r.checks == 0 {
		b.t.Fatalf("%s: the responder answered no request in %s", label, b.window)
	}
	return r
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

// keepalived is one round of keepalived's checker (keepalived --check in
// d2, its own IPVS table) over servers servers: started, warmed up,
// measured, killed.
func (b *hbBench) keepalived(servers int, label string) hbRound {
	b.t.Helper()
	b.kaRuns++
	run := fmt.Sprintf("keepalived-%d", b.kaRuns)
	conf := filepath.Join(b.dir, run+".conf")
	if err := os.WriteFile(conf, []byte(keepalivedConf(servers)), 0o644); err != nil {
		b.t.Fatal(err)
	}
	d2 := topo.Director(2)
	b.tp.MustExec(d2, "keepalived", "--config-test", "-f", conf)
	// The last round's table: a killed keepalived leaves it behind.
	b.tp.MustExec(d2, "ipvsadm", "-C")
	pidFile := filepath.Join(b.dir, run+"-checkers.pid")
	from := b.requests()
	kad := b.tp.Start(d2, "keepalived", "--check", "--dont-fork", "--dont-respawn", "--log-console", "--no-syslog",
		"-f", conf, "-p", filepath.Join(b.dir, run+".pid"), "-c", pidFile)
	alive := procAlive(kad)
	var kpid int
	harness.Eventually(b.t, time.Minute, "keepalived's checker pid file", func() (bool, string) {
		if err := alive(); err != nil {
			b.t.Fatal(err)
		}
		raw, _ := os.ReadFile(pidFile)
		kpid, _ = strconv.Atoi(strings.TrimSpace(string(raw)))
		return kpid > 0, string(raw)
	})
	b.warm(label+": keepalived checked every server three times", from, 3*servers, alive)
	bystander := 0
	if b.node != nil {
		bystander = b.pid
	}
	r := b.measure("keepalived", servers, kpid, bystander, label)
	if err := alive(); err != nil {
		b.t.Fatal(err)
	}
	raw, err := os.ReadFile(kad.LogPath)
	if err != nil {
		b.t.Fatal(err)
	}
	r.falseDowns = strings.Count(string(raw), "Removing service")
	// A kill, not a stop: no thousands of IPVS deletes to wait for.
	if err := kad.Kill(); err != nil {
		b.t.Fatal(err)
	}
	b.tp.MustExec(d2, "ipvsadm", "-C")
	b.logRound(label, r)
	return r
}

func (b *hbBench) logRound(label string, r hbRound) {
	b.t.Logf("%s: %s, %d servers: %d checks answered in %.1f s (effective interval %.2f s), %.2f CPU s (%.4f per 1,000), %d false downs",
		label, r.tool, r.servers, r.checks, r.wall, r.interval().Seconds(), r.cpu, r.perK(), r.falseDowns)
}

func ipvsmanTopo(servers int, check string) string {
	var b strings.Builder
	b.WriteString(`services:
  - protocol: tcp
    address: ` + topo.VIP + `
    port: 80
    scheduler: rr
    forward: masq
`)
	if check != "" {
		b.WriteString("    check: " + check + "\n")
	}
	b.WriteString("    servers:\n")
	for i := range servers {
		fmt.Fprintf(&b, "      - {address: %s, port: %d}\n", topo.RealServerAddr(1), hbFirstPort+i)
	}
	return b.String()
}

// startDaemon starts ipvsmand --ipvs=on --bootstrap in d1, a one-node
// cluster whose leader runs the checks.
func (b *hbBench) startDaemon() {
	b.t.Helper()
	c := harness.NewCluster(b.t)
	c.CLINetNS = b.tp.NS(topo.Client)
	a := topo.DirectorAddr(1)
	node := c.AddAt(topo.Director(1), a+":7000", a+":7080", b.tp.NS(topo.Director(1)), append([]string{"--debug-addr", hbDebug}, labTiming...)...)
	node.IPVS = "on"
	if e := os.Getenv("BENCH_DAEMON_ENV"); e != "" {
		node.Env = strings.Fields(e)
	}
	if b.out != "" {
		b.t.Cleanup(func() { _ = os.WriteFile(filepath.Join(b.out, "ipvsmand.log"), []byte(node.Log()), 0o644) })
	}
	node.Start("--bootstrap")
	c.Leader(b.t, node, []*harness.Node{node})
	b.c, b.node = c, node
	b.pid = daemonPid(b.t, c.Daemon, node.DataDir)
}

func (b *hbBench) daemonAlive() error {
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", b.pid)); err != nil {
		return fmt.Errorf("ipvsmand exited; log:\n%s", b.node.Log())
	}
	return nil
}

// apply gives ipvsmand servers servers under check ("": none).
func (b *hbBench) apply(servers int, check string) {
	b.t.Helper()
	file := filepath.Join(b.dir, "bench.yaml")
	if err := os.WriteFile(file, []byte(ipvsmanTopo(servers, check)), 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.c.MustCLI(b.node, "", "apply", "-f", file)
}

// ipvsman is one round of ipvsmand's checks over servers servers: the
// check applied, warmed up, measured, then removed (the servers stay).
// profile, when set, is the file a CPU profile of the window goes to.
func (b *hbBench) ipvsman(servers int, label, profile string) hbRound {
	b.t.Helper()
	from := b.requests()
	t0 := time.Now()
	b.apply(servers, hbCheck)
	b.warm(label+": ipvsman checked every server three times", from, 3*servers, b.daemonAlive)
	var prof *topo.Proc
	if profile != "" {
		// The window but its last seconds, so that the profile is written
		// before the round ends.
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", hbDebug, int(b.window.Seconds())-3)
		prof = b.tp.Start(topo.Director(1), "curl", "-sS", "-o", profile, url)
	}
	r := b.measure("ipvsman", servers, b.pid, 0, label)
	t1 := time.Now()
	if err := b.daemonAlive(); err != nil {
		b.t.Fatal(err)
	}
	if prof != nil {
		if err := prof.Wait(time.Minute); err != nil {
			b.t.Logf("profile: %v", err)
		}
	}
	r.falseDowns = downTransitions(b.node.Log(), t0, t1)
	b.apply(servers, "")
	b.logRound(label, r)
	return r
}

// downTransitions counts the runner's transitions to down logged in
// [from, to).
func downTransitions(log string, from, to time.Time) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		var ll logLine
		if strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &ll) == nil && ll.Msg == "health transition" &&
			ll.Health == "down" && !ll.Time.Before(from) && ll.Time.Before(to) {
			n++
		}
	}
	return n
}

// hbHealth is `ipvsman health --json`, reduced to what the bench reads.
type hbHealth struct {
	Checks []struct {
		Server string `json:"server"`
		Health string `json:"health"`
		Checks uint64 `json:"checks"`
	} `json:"checks"`
}

func (h hbHealth) count(health string) int {
	n := 0
	for _, c := range h.Checks {
		if c.Health == health {
			n++
		}
	}
	return n
}

func (b *hbBench) health() (hbHealth, error) {
	if err := b.daemonAlive(); err != nil {
		b.t.Fatal(err)
	}
	r := b.c.CLI(b.node, "", "health", "--json")
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

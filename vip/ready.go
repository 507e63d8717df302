package vip

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Tracker decides whether this node can serve the VIPs, keepalived's
// track_interface and track_script with a tracked gateway added: every
// interface that carries a VIP has carrier, every tracked address answers,
// every track script passes, and whatever else the daemon adds (the
// kernel table). Raft keeps running over another path when these fail, so
// without this a leader would keep the VIPs and black-hole the clients.
//
// Links are read every step and count at once (carrier is a fact, not a
// guess); addresses and scripts go down after Fall failures in a row and
// up after Rise successes, so one lost echo does not move leadership.
type Tracker struct {
	Links    func() []string       // interfaces that must have carrier (the VIPs' and --track-interface)
	Addrs    []netip.Addr          // must answer an ICMP echo (the gateway)
	Scripts  []string              // must exit 0, run with /bin/sh -c
	Extra    func() (bool, string) // another condition, e.g. the kernel table applied
	Interval time.Duration         // one step; default 200 ms
	Timeout  time.Duration         // per probe and script; default Interval
	Every    int                   // scripts run every Every steps; default 5
	Fall     int                   // default 3
	Rise     int                   // default 2
	Log      *slog.Logger
	OnChange func(ready bool, reason string) // called on every change, and once at start

	// Seams, for tests: nil means the real kernel.
	link func(name string) (up bool, why string)
	ping func(ctx context.Context, a netip.Addr) error
	run  func(ctx context.Context, script string) error

	counts map[string]*streak
	steps  int
	ready  *bool
	reason string
}

// streak is one tracked address's or script's recent history.
type streak struct {
	ok        bool // the current verdict
	good, bad int  // successes or failures in a row
	last      string
	why       string // while down: the reason, fixed when it went down
}

func (t *Tracker) defaults() {
	if t.Interval <= 0 {
		t.Interval = 200 * time.Millisecond
	}
	if t.Timeout <= 0 {
		t.Timeout = t.Interval
	}
	if t.Every <= 0 {
		t.Every = 5
	}
	if t.Fall <= 0 {
		t.Fall = 3
	}
	if t.Rise <= 0 {
		t.Rise = 2
	}
	if t.Log == nil {
		t.Log = slog.Default()
	}
	if t.link == nil {
		t.link = linkCarrier
	}
	if t.ping == nil {
		t.ping = ping
	}
	if t.run == nil {
		t.run = runScript
	}
	if t.counts == nil {
		t.counts = map[string]*streak{}
	}
}

// Run steps until ctx ends.
func (t *Tracker) Run(ctx context.Context) {
	t.defaults()
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	for {
		t.Step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Step checks everything once and reports a change. Links are reported
// before the probes run, so a lost carrier is acted on without waiting
// for a probe's timeout.
func (t *Tracker) Step(ctx context.Context) {
	t.defaults()
	links := t.linksDown()
	if len(links) > 0 {
		t.report(false, links[0])
	}
	probes := t.probe(ctx)
	why := append(links, probes...)
	if t.Extra != nil {
		if ok, reason := t.Extra(); !ok {
			why = append(why, reason)
		}
	}
	if len(why) == 0 {
		t.report(true, "")
		return
	}
	t.report(false, strings.Join(why, "; "))
}

func (t *Tracker) report(ready bool, reason string) {
	if t.ready != nil && *t.ready == ready && t.reason == reason {
		return
	}
	t.ready, t.reason = &ready, reason
	if t.OnChange != nil {
		t.OnChange(ready, reason)
	}
}

func (t *Tracker) linksDown() []string {
	if t.Links == nil {
		return nil
	}
	names := t.Links()
	sort.Strings(names)
	var out []string
	for i, name := range names {
		if i > 0 && names[i-1] == name {
			continue
		}
		if up, why := t.link(name); !up {
			out = append(out, fmt.Sprintf("link %s: %s", name, why))
		}
	}
	return out
}

// probe runs the address probes, and the scripts when due, concurrently,
// and returns why the ones that are down are.
func (t *Tracker) probe(ctx context.Context) []string {
	type result struct {
		key string
		err error
	}
	var jobs []func() result
	for _, a := range t.Addrs {
		jobs = append(jobs, func() result {
			c, cancel := context.WithTimeout(ctx, t.Timeout)
			defer cancel()
			return result{"address " + a.String(), t.ping(c, a)}
		})
	}
	if t.steps%t.Every == 0 {
		for _, s := range t.Scripts {
			jobs = append(jobs, func() result {
				c, cancel := context.WithTimeout(ctx, t.Timeout*time.Duration(t.Every))
				defer cancel()
				return result{fmt.Sprintf("track script %q", s), t.run(c, s)}
			})
		}
	}
	t.steps++
	results := make([]result, len(jobs))
	var wg sync.WaitGroup
	for i, job := range jobs {
		wg.Go(func() { results[i] = job() })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil // stopping: a cancelled probe says nothing about the node
	}
	for _, r := range results {
		t.count(r.key, r.err)
	}
	var out []string
	keys := make([]string, 0, len(t.counts))
	for k := range t.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if s := t.counts[k]; !s.ok {
			out = append(out, k+": "+s.why)
		}
	}
	return out
}

// count applies rise and fall to one probe's outcome. A new probe starts
// up, so a daemon that starts does not report itself unready before its
// first Fall probes have failed.
func (t *Tracker) count(key string, err error) {
	s := t.counts[key]
	if s == nil {
		s = &streak{ok: true}
		t.counts[key] = s
	}
	if err == nil {
		s.good++
		s.bad = 0
		if !s.ok && s.good >= t.Rise {
			s.ok = true
			t.Log.Info("tracked check up", "check", key, "successes", s.good)
		}
		return
	}
	s.bad++
	s.good = 0
	s.last = err.Error()
	if s.ok && s.bad >= t.Fall {
		s.ok = false
		// Fixed while it stays down: a reason that changed with every
		// probe would be a new readiness, gossiped, every step.
		s.why = fmt.Sprintf("%s (%d failures in a row)", s.last, s.bad)
		t.Log.Warn("tracked check down", "check", key, "failures", s.bad, "err", s.last)
	}
}

// linkCarrier reads an interface's state: administratively up, with
// carrier, and not dormant or down in its operational state.
func linkCarrier(name string) (bool, string) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return false, err.Error()
	}
	return linkServes(l.Attrs().RawFlags, l.Attrs().OperState)
}

// linkServes is the decision linkCarrier makes, apart from the kernel.
func linkServes(raw uint32, oper netlink.LinkOperState) (bool, string) {
	const iffUp, iffLowerUp = syscall.IFF_UP, 0x10000
	switch {
	case raw&iffUp == 0:
		return false, "administratively down"
	case raw&iffLowerUp == 0:
		return false, "no carrier"
	case oper != netlink.OperUp && oper != netlink.OperUnknown:
		return false, "operational state " + oper.String()
	}
	return true, ""
}

// runScript runs a track script; its whole process group is killed at
// the deadline.
func runScript(ctx context.Context, script string) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	if err := runOrdinary(cmd); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("timed out")
		}
		return err
	}
	return nil
}

// runOrdinary runs cmd with ordinary scheduling: a daemon running
// real-time (--realtime-priority) would hand SCHED_RR down to it, and a
// command that spins would then hold a CPU at real-time priority until its
// timeout. The policy is put back as soon as the process exists.
func runOrdinary(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	if a, err := unix.SchedGetAttr(cmd.Process.Pid, 0); err == nil && a.Policy != unix.SCHED_NORMAL {
		_ = unix.SchedSetAttr(cmd.Process.Pid, &unix.SchedAttr{Policy: unix.SCHED_NORMAL}, 0)
	}
	return cmd.Wait()
}

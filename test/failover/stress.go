package failover

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The stress series (README.md): the cluster serving the VIP while both
// cores are saturated, by busy processes at normal priority and by the
// daemons' own work (large writes, follower restarts that replay a long
// log).

// StressServers is how many real servers each of the stress series' large
// writes holds (knob STRESS_SERVERS).
const StressServers = 5000

// StressInput is `ipvsadm -S -n` style text for `ipvsman -R`: one TCP
// service 172.16.0.1:80 (wlc) with servers direct-routing real servers of
// weight 1, at distinct addresses from 10.200.0.1 on (outside the lab's
// subnets, so no real server is a director's or the VIP's address).
func StressInput(servers int) string {
	var b strings.Builder
	b.Grow(40 + servers*48)
	b.WriteString("-A -t 172.16.0.1:80 -s wlc\n")
	rip := netip.MustParseAddr("10.200.0.0")
	for range servers {
		rip = rip.Next()
		fmt.Fprintf(&b, "-a -t 172.16.0.1:80 -r %s:80 -g -w 1\n", rip)
	}
	return b.String()
}

// CountLeadershipGained counts the lines of a daemon's JSON log that
// record a won election or a received transfer (LeadershipGained). Other
// messages that start with the same words ("leadership gained while
// draining; handing it over", "leadership gained but the barrier has not
// completed") are not a new leader and are not counted.
func CountLeadershipGained(log string) int {
	return strings.Count(log, LeadershipGained)
}

// RestartEvery is the period of the stress series' follower restarts for
// a window of length d: every 2 minutes, or a third of the window when it
// is shorter than 6 minutes (so a short run still restarts twice).
func RestartEvery(d time.Duration) time.Duration {
	return min(2*time.Minute, d/3)
}

// BusyLoops are processes that keep CPUs busy at normal priority.
type BusyLoops struct {
	cmds []*exec.Cmd
	once sync.Once
}

// StartBusyLoops starts n `sh -c 'while :; do :; done'` in the test's own
// namespace, each in its own process group; they are killed by Stop or at
// the end of the test.
func StartBusyLoops(t testing.TB, n int) *BusyLoops {
	t.Helper()
	b := &BusyLoops{}
	for range n {
		c := exec.Command("sh", "-c", "while :; do :; done")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			b.Stop()
			t.Fatalf("busy loop: %v", err)
		}
		b.cmds = append(b.cmds, c)
	}
	t.Cleanup(b.Stop)
	return b
}

// Stop kills every busy loop it started and reaps it. Safe to call more
// than once.
func (b *BusyLoops) Stop() {
	b.once.Do(func() {
		for _, c := range b.cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	})
}

// ClientPriority is the SCHED_RR priority of the poller and the web
// servers during the stress run: above the daemons however they run (nice
// -20 as the packaged unit, or --realtime-priority 10), so that what is
// measured is the daemons, not a starved client or server.
const ClientPriority = 20

// StressResult is what the stress series measured in its window.
type StressResult struct {
	Dur                  time.Duration
	Busy                 int // busy processes at normal priority
	Servers              int // real servers per large write
	LeaderChanges        int // "leadership gained" lines in the window
	Requests, Failed     int // the client's requests started in the window
	LongestOutage        time.Duration
	Writes, WritesFailed int    // large writes (each a -C and a -R) done and failed
	FirstWriteErr        string // what the first failed write answered
	WriteP50, WriteMax   time.Duration
	Restarts             int           // followers stopped and started again
	VIPOverlap, VIPWorst time.Duration // two nodes holding the VIP at once: total, longest stretch
	VIPResolution        Resolution    // how finely the Observer sampled the window
	LoadAvg              string
}

func (s StressResult) String() string {
	return fmt.Sprintf("ipvsman stress %s (%d busy loops, -C/-R of %d real servers back to back, %d follower restarts): %d leader changes, %d of %d requests failed (longest outage %dms), %d writes ok (p50 %dms, max %dms), %d failed; VIP overlap %dms (worst stretch %dms; %s); load average at the end %s",
		s.Dur.Round(time.Second), s.Busy, s.Servers, s.Restarts, s.LeaderChanges, s.Failed, s.Requests, MS(s.LongestOutage),
		s.Writes, MS(s.WriteP50), MS(s.WriteMax), s.WritesFailed, MS(s.VIPOverlap), MS(s.VIPWorst), s.VIPResolution, s.LoadAvg) + s.firstWriteErr()
}

func (s StressResult) firstWriteErr() string {
	if s.FirstWriteErr == "" {
		return ""
	}
	return "; first failed write: " + s.FirstWriteErr
}

// Stress runs the stress series' window on a running cluster: busy loops
// on every CPU, a writer applying `ipvsman -C` and `ipvsman -R` of one
// service with servers real servers back to back (through the live nodes
// in turn; a follower forwards to the leader), and every RestartEvery(dur)
// a follower stopped with SIGTERM, left down for a fifth of that period
// while the writes go on, and started again so that it replays the log it
// missed. It returns the figures of the window; the poller in r must be
// running.
func (m *Ipvsman) Stress(t testing.TB, r *Rig, dur time.Duration, busy, servers int) StressResult {
	t.Helper()
	res := StressResult{Busy: busy, Servers: servers}
	input := StressInput(servers)
	// The client and the directors' web servers stand for machines
	// elsewhere (clients, and the real servers IPVS would forward to),
	// which the load here would not slow: for the window they run above
	// everything else, so that a failed request is the VIP's fault, not a
	// starved poller's or web server's.
	pids := []int{r.Poll.proc.Pid()}
	for _, p := range r.Lab.Servers {
		pids = append(pids, p.Pid())
	}
	for _, pid := range pids {
		if err := SetPriority(pid, ClientPriority); err != nil {
			t.Fatalf("stress: client and server priority: %v", err)
		}
	}
	defer func() {
		for _, pid := range pids {
			if err := SetPriority(pid, 0); err != nil {
				t.Errorf("stress: priority back to normal: %v", err)
			}
		}
	}()
	logs := m.LogSizes()
	from := time.Now()
	loops := StartBusyLoops(t, busy)
	defer loops.Stop()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var took []time.Duration
	down := ""
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			var via []string
			for _, d := range m.lab.Directors {
				if d != down {
					via = append(via, d)
				}
			}
			mu.Unlock()
			n := m.Nodes[via[i%len(via)]]
			began := time.Now()
			err := m.C.CLI(n, "", "--timeout", "30s", "-C").Err
			if err == nil {
				err = m.C.CLI(n, input, "--timeout", "30s", "-R").Err
			}
			mu.Lock()
			if err != nil {
				if res.WritesFailed == 0 {
					res.FirstWriteErr = fmt.Sprintf("via %s at +%s: %v", n.ID, time.Since(from).Round(time.Second), err)
				}
				res.WritesFailed++
			} else {
				res.Writes++
				took = append(took, time.Since(began))
			}
			mu.Unlock()
			if err != nil {
				// The cluster may be electing: not a tight loop of refusals.
				pollPause(time.Now().Add(time.Second), time.Second)
			}
		}
	}()

	every := RestartEvery(dur)
	end := from.Add(dur)
	for next := from.Add(every); next.Before(end); next = next.Add(every) {
		pollPause(next, time.Until(next))
		leader, err := m.Leader()
		if err != nil {
			t.Logf("stress: no restart at +%s: %v", time.Since(from).Round(time.Second), err)
			continue
		}
		var follower string
		for i := range m.lab.Directors {
			d := m.lab.Directors[(res.Restarts+i)%len(m.lab.Directors)]
			if d != leader {
				follower = d
				break
			}
		}
		mu.Lock()
		down = follower
		mu.Unlock()
		n := m.Nodes[follower]
		if err := n.Stop(); err != nil {
			t.Logf("stress: stopping %s: %v", follower, err)
		}
		pollPause(time.Now().Add(every/5), every/5)
		n.Start()
		mu.Lock()
		down = ""
		mu.Unlock()
		res.Restarts++
		t.Logf("stress: +%s: follower %s restarted (leader was %s)", time.Since(from).Round(time.Second), follower, leader)
	}
	pollPause(end, time.Until(end))
	to := time.Now()
	loops.Stop()
	close(stop)
	wg.Wait()

	res.Dur = to.Sub(from)
	res.LeaderChanges = m.LeaderChanges(logs)
	res.Requests, res.Failed = r.Poll.Count(from, to)
	res.LongestOutage = LongestOutage(r.Poll.Results(from, to))
	res.VIPOverlap, res.VIPWorst = r.Obs.OverlapBetween(from, to)
	res.VIPResolution = r.Obs.Resolution(from, to)
	res.WriteP50, res.WriteMax = Percentile(took, 50), Percentile(took, 100)
	res.LoadAvg = loadAverage()
	return res
}

// loadAverage is the host's 1, 5 and 15 minute load average.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

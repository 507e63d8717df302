//go:build lab

package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/failover"
	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// Rolling upgrade: three directors run the current
// release; a client keeps making short HTTP requests through the VIP (a new
// connection each, no retry) and holds long-lived echo connections through
// it. The directors are replaced one by one with the next release (the
// `-tags next` build: one protocol higher and a new command, `ipvsman cluster
// note`, behind the version gate) as the README says: followers first, then
// a transfer to an upgraded node, then the old leader. Before the last node
// is upgraded the new command must be refused, by an old node (which does
// not know it, and is not confused by it) and by a new one (the cluster's
// protocol is still 1); afterwards it must work everywhere. Not one request
// may fail and not one connection may break.

const (
	upgradeHTTPPort  = topo.HTTPPort // VIP:80 -> rs1-3:80, direct routing
	upgradeEchoPort  = topo.EchoPort // VIP:7 -> rs1-3:7, direct routing
	upgradeEchoConns = 20
	// The echo clients run until stopped; this only bounds them.
	upgradeEchoMax = 40 * time.Minute
	// A request every 250 ms, each given 3 s: a SYN lost while the VIP
	// moves is retransmitted by TCP after 1 s and still counts, a request
	// the cluster drops or resets does not.
	upgradeEvery   = 250 * time.Millisecond
	upgradeTimeout = 3 * time.Second
	upgradeNote    = "rolling-upgrade-done"
)

// TestRollingUpgrade upgrades every director, one at a time, under
// traffic; `make bench-upgrade` runs it alone.
func TestRollingUpgrade(t *testing.T) {
	requireKernelIPVS(t)
	tp := topo.Build(t, topo.Options{})
	labtool := topo.BuildLabtool(t)
	tp.StartRealServers(labtool)
	oldD, oldC := harness.Binaries(t)
	newD, newC := nextBinaries(t)
	// Run them from the VM's tmpfs: an exec from the lab's 9p share reads
	// the whole binary through it every time (1.5-3.3 s each, measured,
	// against 0.2-0.8 s from tmpfs), and this test runs the CLI hundreds
	// of times under traffic.
	oldD, oldC = localCopy(t, "old", oldD, oldC)
	newD, newC = localCopy(t, "next", newD, newC)
	t.Setenv("IPVSMAN_BIN_DIR", filepath.Dir(oldD)) // what harness.Directors runs
	r := &upgradeRun{t: t, tp: tp, labtool: labtool, from: identify(t, oldD, oldC), to: identify(t, newD, newC), began: time.Now()}
	t.Logf("from ipvsmand %s (protocol %d) to %s (protocol %d)", r.from.version, r.from.protocol, r.to.version, r.to.protocol)
	if r.from.version == r.to.version || r.to.protocol != r.from.protocol+1 {
		t.Fatalf("the two builds must be of different versions, the next one protocol higher: %+v, %+v", r.from, r.to)
	}

	r.c, r.nodes = labCluster(t, tp)
	if os.Getenv("IPVSMAN_NEXT_BIN_DIR") != "" {
		// In the lab the working directory is the host's work dir: keep
		// the daemons' whole logs there when the test fails.
		t.Cleanup(func() {
			if t.Failed() {
				for _, n := range r.nodes {
					_ = os.WriteFile("upgrade-"+n.ID+".log", []byte(n.Log()), 0o644)
				}
			}
		})
	}
	r.next = withCLI(r.c, r.to.cli)
	c, nodes := r.c, r.nodes
	file := filepath.Join(t.TempDir(), "upgrade.yaml")
	if err := os.WriteFile(file, []byte(upgradeTopology()), 0o600); err != nil {
		t.Fatal(err)
	}
	c.MustCLI(nodes[0], "", "apply", "-f", file)
	waitKernelServers(t, tp, nodes, 6, "both services in every kernel")
	lead := leaderOf(t, c, nodes)
	waitVIPOn(t, tp, lead.ID, topo.VIP+"/32")
	harness.Eventually(t, 60*time.Second, "sync threads: a master on the leader, a backup everywhere", paced(time.Second, func() (bool, string) {
		out := c.CLI(nodes[0], "", "cluster", "status").Stdout
		return strings.Count(out, "backup") >= 3 && strings.Count(out, "master+backup") == 1, out
	}))
	for _, n := range nodes {
		r.waitSettled(lead, n.ID, r.from.version)
	}
	t.Logf("cluster status before the upgrade:\n%s", c.CLI(lead, "", "cluster", "status").Stdout)

	// The traffic: short requests, and long-lived echo connections.
	pollFrom := time.Now()
	poll := failover.StartPoller(t, tp, labtool, topo.Client, fmt.Sprintf("http://%s:%d/", topo.VIP, upgradeHTTPPort), upgradeEvery, upgradeTimeout)
	echo := tp.Start(topo.Client, labtool, "echo", "--addr", fmt.Sprintf("%s:%d", topo.VIP, upgradeEchoPort),
		"--conns", fmt.Sprint(upgradeEchoConns), "--interval", "100ms", "--duration", upgradeEchoMax.String(), "--timeout", "10s")
	var once sync.Once
	count := func() {
		once.Do(func() { r.count(poll, pollFrom, echo) })
	}
	defer count() // the figures also when a step fails
	waitAnswers(t, poll, pollFrom, 8)
	// Every director's kernel holds the connections (the followers' by
	// sync) before anything is touched.
	harness.Eventually(t, 60*time.Second, "the echo connections in every director's kernel", paced(500*time.Millisecond, func() (bool, string) {
		for _, n := range nodes {
			out, err := tp.Exec(n.ID, "ipvsadm", "-L", "-c", "-n")
			if got := countEstablished(out, upgradeEchoPort); err != nil || got < upgradeEchoConns {
				return false, fmt.Sprintf("%s: %d ESTABLISHED: %v\n%s", n.ID, got, err, firstLines(out, 8))
			}
		}
		return true, ""
	}))
	t.Logf("traffic running: %d echo connections held, a request every %v (timeout %v, no retry)", upgradeEchoConns, upgradeEvery, upgradeTimeout)

	// Followers first, one at a time; the leader last, once it has handed
	// over to an upgraded node. The leader is asked for at each step, as
	// an operator would: an election of its own (the emulated CPU starved)
	// may have moved it.
	upgraded := map[*harness.Node]bool{}
	for {
		var old []*harness.Node
		for _, n := range nodes {
			if !upgraded[n] {
				old = append(old, n)
			}
		}
		if len(old) == 0 {
			break
		}
		leader := leaderOf(t, c, nodes)
		var next *harness.Node
		for _, n := range old {
			if n != leader {
				next = n
				break
			}
		}
		if next == nil {
			// Only the leader is left: it hands over to an upgraded node,
			// whose kernel has the connections from the sync messages.
			next = leader
			var target *harness.Node
			for _, n := range nodes {
				if upgraded[n] {
					target = n
					break
				}
			}
			r.transfer(leader, target)
			leader = target
		}
		r.upgrade(next, leader)
		upgraded[next] = true
		if len(old) == 1 {
			break
		}
		// The new command is refused until the last node is upgraded: by an
		// old node, which does not know it, and by the new one, which knows
		// the cluster cannot apply it yet.
		var below []string
		var stillOld *harness.Node // an old follower while there is one, then the old leader
		for _, n := range nodes {
			if !upgraded[n] {
				below = append(below, n.ID)
				if stillOld == nil || stillOld == leader {
					stillOld = n
				}
			}
		}
		r.step(fmt.Sprintf("cluster note refused (%d of %d upgraded)", len(nodes)-len(below), len(nodes)), func() {
			r.refused(stillOld, fmt.Sprintf(`node %s runs ipvsmand %s (protocol %d), which does not know "cluster note": upgrade every node first`,
				stillOld.ID, r.from.version, r.from.protocol))
			r.refused(next, append([]string{fmt.Sprintf("needs protocol %d on every member", r.to.protocol)}, below...)...)
			if v, out, err := clusterView(r.next, next); err != nil || v.MinProtocol != r.from.protocol {
				t.Errorf("cluster protocol %d with %v still at %s, want %d: %v\n%s", v.MinProtocol, below, r.from.version, r.from.protocol, err, out)
			}
		})
	}
	target := leaderOf(t, c, nodes)
	harness.Eventually(t, 60*time.Second, fmt.Sprintf("cluster protocol %d", r.to.protocol), paced(time.Second, func() (bool, string) {
		v, out, err := clusterView(r.next, target)
		return err == nil && v.MinProtocol == r.to.protocol, fmt.Sprint(err) + "\n" + out
	}))
	r.step("cluster note", func() {
		res := r.next.CLI(nodes[2], "", "cluster", "note", upgradeNote)
		if res.Err != nil || strings.TrimSpace(res.Stdout) != "note set" {
			t.Fatalf("ipvsman cluster note %s via %s, every node upgraded: %v\nstdout: %s\nstderr: %s", upgradeNote, nodes[2].ID, res.Err, res.Stdout, res.Stderr)
		}
	})
	r.step(fmt.Sprintf("note and protocol %d on every node", r.to.protocol), func() {
		for _, n := range nodes {
			harness.Eventually(t, 60*time.Second, fmt.Sprintf("note and cluster protocol %d via %s", r.to.protocol, n.ID), paced(time.Second, func() (bool, string) {
				res := r.next.CLI(n, "", "cluster", "status")
				out := "\n" + res.Stdout
				return res.Err == nil && strings.Contains(out, "\nnote: "+upgradeNote+"\n") && strings.Contains(out, fmt.Sprintf("\ncluster protocol: %d\n", r.to.protocol)),
					fmt.Sprintf("%v\n%s%s", res.Err, res.Stdout, res.Stderr)
			}))
		}
	})
	t.Logf("cluster status after the upgrade:\n%s", r.next.MustCLI(target, "", "cluster", "status"))

	// The traffic goes on through the upgraded cluster.
	waitAnswers(t, poll, time.Now(), 8)
	count()
}

// count stops the traffic, prints the figures and requires both to be 0.
func (r *upgradeRun) count(poll *failover.Poller, from time.Time, echo *topo.Proc) {
	t := r.t
	stopped := time.Now()
	if err := poll.Stop(); err != nil {
		t.Errorf("poller: %v", err)
	}
	echo.Stop()
	var res echoResult
	if err := echo.Wait(time.Minute); err != nil {
		t.Errorf("echo client: %v\n%s", err, echo.Output())
	} else if lines := strings.Split(strings.TrimSpace(echo.Output()), "\n"); json.Unmarshal([]byte(lines[len(lines)-1]), &res) != nil || res.Conns != upgradeEchoConns {
		t.Errorf("echo client output:\n%s", echo.Output())
		res.Broken = upgradeEchoConns // unknown: count them all
	}
	total, failed := poll.Count(from, stopped)
	events, removals := r.leaderChanges(from)
	var slowest time.Duration
	unsynced := 0
	for _, q := range poll.Results(from, stopped) {
		if q.OK {
			slowest = max(slowest, q.End.Sub(q.Start))
			continue
		}
		why := ""
		if at, ok := unsyncedAt(q.Start, q.End, removals); ok {
			unsynced++
			why = fmt.Sprintf(" (begun %d ms before the VIP left its holder: younger than the sync master's %v flush, so no other node knew it)",
				at.Sub(q.Start).Milliseconds(), syncFlush)
		}
		t.Logf("request at %.3f s (%s, %s UTC) failed after %d ms: %s%s", q.Start.Sub(r.began).Seconds(), r.during(q.Start),
			q.Start.UTC().Format("15:04:05.000"), q.End.Sub(q.Start).Milliseconds(), q.Err, why)
	}
	var b strings.Builder
	for _, s := range r.steps {
		fmt.Fprintf(&b, "  %-45s %7d ms  (%.1f-%.1f s, from %s UTC)\n", s.name, s.end.Sub(s.start).Milliseconds(),
			s.start.Sub(r.began).Seconds(), s.end.Sub(r.began).Seconds(), s.start.UTC().Format("15:04:05.000"))
	}
	t.Logf("steps:\n%s", b.String())
	t.Logf("leadership and VIP changes (the daemons' logs):\n%s", events)
	t.Logf("requests: %d, %d failed, slowest answer %d ms; echo: %d of %d connections survived, %d broke, longest echo gap %d ms, by server %v, errors %v",
		total, failed, slowest.Milliseconds(), res.Survived, res.Conns, res.Broken, res.MaxGapMS, res.ByServer, res.Errors)
	if minimum := int(stopped.Sub(from)/upgradeEvery) / 2; total < minimum {
		t.Errorf("only %d requests in %v (at least %d expected): %s", total, stopped.Sub(from).Round(time.Second), minimum, poll.Health())
	}
	if failed-unsynced != 0 {
		t.Errorf("%d of %d requests failed (%d of them begun too shortly before a VIP move for connection sync), want 0 besides those", failed, total, unsynced)
	}
	if res.Broken != 0 {
		t.Errorf("%d of %d long-lived connections broke, want 0: %v", res.Broken, upgradeEchoConns, res.Errors)
	}
	fmt.Printf("upgrade_failed_requests: %d\n", failed)
	fmt.Printf("upgrade_unsynced_requests: %d\n", unsynced)
	fmt.Printf("upgrade_broken_connections: %d\n", res.Broken)
}

// syncFlush is how long the kernel's sync master may hold a connection's
// first message (IPVS_SYNC_FLUSH_TIME): a connection younger than that when
// the VIP moves may be unknown to the new holder, which resets it. Connection
// sync cannot do better; keepalived's directors have the same window.
const syncFlush = 2 * time.Second

// unsyncedAt reports whether a request that ran from start to end failed
// because the VIP left its holder while the request's connection was
// younger than syncFlush: the removal it ran into.
func unsyncedAt(start, end time.Time, removals []time.Time) (time.Time, bool) {
	for _, at := range removals {
		if !start.After(at) && at.Sub(start) < syncFlush && !end.Before(at) {
			return at, true
		}
	}
	return time.Time{}, false
}

// leaderChanges lists, in time order, every leadership gained or lost and
// every VIP added or removed since from, as the daemons logged them: a
// failed request is read against them (a planned transfer, or an election
// of its own when the emulated CPU starves). removals are the times a VIP
// left a node.
func (r *upgradeRun) leaderChanges(from time.Time) (events string, removals []time.Time) {
	type event struct {
		at   time.Time
		line string
	}
	var evs []event
	for _, n := range r.nodes {
		for _, l := range strings.Split(n.Log(), "\n") {
			var e struct {
				Time   time.Time `json:"time"`
				Msg    string    `json:"msg"`
				Term   string    `json:"term"`
				Reason string    `json:"reason"`
			}
			if json.Unmarshal([]byte(l), &e) != nil || e.Time.Before(from) {
				continue
			}
			if e.Msg == "vip removed" {
				removals = append(removals, e.Time)
			}
			switch e.Msg {
			case "leadership gained", "leadership lost", "vip added", "vip removed":
				evs = append(evs, event{e.Time, fmt.Sprintf("  %s UTC (%.1f s) %s: %s %s%s", e.Time.UTC().Format("15:04:05.000"),
					e.Time.Sub(r.began).Seconds(), n.ID, e.Msg, e.Reason, map[bool]string{true: ", term " + e.Term}[e.Term != ""])})
			}
		}
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.line + "\n")
	}
	return b.String(), removals
}

// waitAnswers waits until n requests started at or after from have been
// answered.
func waitAnswers(t *testing.T, poll *failover.Poller, from time.Time, n int) {
	t.Helper()
	harness.Eventually(t, 60*time.Second, fmt.Sprintf("%d answers through the VIP", n), func() (bool, string) {
		total, failed := poll.Count(from, time.Now())
		return total-failed >= n, fmt.Sprintf("%d requests, %d failed: %s", total, failed, poll.Health())
	})
}

// waitVIPGone waits until node no longer holds cidr on eth0.
func waitVIPGone(t *testing.T, tp *topo.Topology, node, cidr string) {
	t.Helper()
	harness.Eventually(t, 30*time.Second, cidr+" gone from "+node, func() (bool, string) {
		out, err := tp.Exec(node, "ip", "-o", "addr", "show", "dev", "eth0")
		return err == nil && !strings.Contains(out, " "+cidr+" "), out
	})
}

// TestUnsyncedRequestsAreOnlyThoseAVIPMoveCaught: the upgrade test excuses a
// failed request only if a VIP left its holder while the request ran and
// less than syncFlush after it began; every other failure counts.
func TestUnsyncedRequestsAreOnlyThoseAVIPMoveCaught(t *testing.T) {
	at := time.Date(2026, 12, 6, 5, 31, 34, 502e6, time.UTC)
	removals := []time.Time{at}
	for _, c := range []struct {
		name       string
		start, end time.Time
		want       bool
	}{
		{"begun 9 ms before, reset after", at.Add(-9 * time.Millisecond), at.Add(290 * time.Millisecond), true},
		{"begun after the removal", at.Add(time.Millisecond), at.Add(300 * time.Millisecond), false},
		{"ended before the removal", at.Add(-300 * time.Millisecond), at.Add(-time.Millisecond), false},
		{"begun before the flush window", at.Add(-syncFlush), at.Add(time.Second), false},
		{"no removal near it", at.Add(time.Minute), at.Add(time.Minute + time.Second), false},
	} {
		if _, got := unsyncedAt(c.start, c.end, removals); got != c.want {
			t.Errorf("%s: unsynced %v, want %v", c.name, got, c.want)
		}
	}
	if _, got := unsyncedAt(at.Add(-time.Millisecond), at.Add(time.Second), nil); got {
		t.Error("excused with no VIP removal at all")
	}
}

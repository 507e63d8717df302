//go:build lab

package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
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

// Rolling upgrade (issue 8, acceptance 2): three directors run the current
// release; a client keeps making short HTTP requests through the VIP (a new
// connection each, no retry) and holds long-lived echo connections through
// it. The directors are replaced one by one with the next release (the
// `-tags next` build: protocol 2 and a new command, `ipvsman cluster
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

// upgradeTopology is the model: the VIP and two direct-routing services,
// connection sync at its defaults (on).
func upgradeTopology() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nvips:\n  - {address: %s/32, interface: eth0}\nservices:\n", topo.VIP)
	for _, s := range []struct {
		name string
		port int
	}{{"web", upgradeHTTPPort}, {"echo", upgradeEchoPort}} {
		fmt.Fprintf(&b, "  - {name: %s, protocol: tcp, address: %s, port: %d, scheduler: rr, forward: droute, servers: [", s.name, topo.VIP, s.port)
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(&b, "{address: %s, port: %d}, ", topo.RealServerAddr(i), s.port)
		}
		b.WriteString("]}\n")
	}
	return b.String()
}

// localCopy copies the daemon and the CLI into a fresh directory named
// name under t.TempDir (tmpfs in the VM) and returns the copies.
func localCopy(t *testing.T, name, daemon, cli string) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, src := range []string{daemon, cli} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.Base(src))
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
		out = append(out, dst)
	}
	return out[0], out[1]
}

// paced lets an Eventually condition that runs the CLI run at most once
// per every: each call is a process start in the emulated VM, and the
// traffic needs the CPU more than the wait needs a fast answer.
func paced(every time.Duration, cond func() (bool, string)) func() (bool, string) {
	var last time.Time
	why := "not asked yet"
	return func() (bool, string) {
		if time.Since(last) < every {
			return false, why
		}
		last = time.Now()
		ok, reason := cond()
		why = reason
		return ok, reason
	}
}

// release is one build's binaries and what they say they are.
type release struct {
	daemon, cli string
	version     string // as ipvsmand --version prints it
	protocol    int
}

// nextBinaries returns the next release's binaries: prebuilt by the lab's
// runner (IPVSMAN_NEXT_BIN_DIR), else built here with -tags next.
func nextBinaries(t *testing.T) (daemon, cli string) {
	t.Helper()
	if dir := os.Getenv("IPVSMAN_NEXT_BIN_DIR"); dir != "" {
		return filepath.Join(dir, "ipvsmand"), filepath.Join(dir, "ipvsman")
	}
	dir := t.TempDir()
	for _, name := range []string{"ipvsmand", "ipvsman"} {
		cmd := exec.Command("go", "build", "-tags", "next", "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build -tags next %s: %v\n%s", name, err, out)
		}
	}
	return filepath.Join(dir, "ipvsmand"), filepath.Join(dir, "ipvsman")
}

// identify asks both binaries of a release for their version; they must
// agree.
func identify(t *testing.T, daemon, cli string) release {
	t.Helper()
	r := release{daemon: daemon, cli: cli}
	for _, b := range []struct{ bin, name string }{{daemon, "ipvsmand"}, {cli, "ipvsman"}} {
		args := []string{"version"}
		if b.name == "ipvsmand" {
			args = []string{"--version"}
		}
		out, err := exec.Command(b.bin, args...).CombinedOutput()
		var ver string
		var proto int
		if err == nil {
			_, err = fmt.Sscanf(strings.TrimSpace(string(out)), b.name+" %s (protocol %d)", &ver, &proto)
		}
		if err != nil {
			t.Fatalf("%s %s: %v: %q (want %q)", b.bin, args[0], err, out, b.name+" VERSION (protocol N)")
		}
		if r.version != "" && (ver != r.version || proto != r.protocol) {
			t.Fatalf("%s is %s (protocol %d) but %s is %s (protocol %d)", daemon, r.version, r.protocol, cli, ver, proto)
		}
		r.version, r.protocol = ver, proto
	}
	return r
}

// withCLI is the cluster seen through another ipvsman binary: same nodes,
// token and namespace.
func withCLI(c *harness.Cluster, cli string) *harness.Cluster {
	nc := *c
	nc.CLIBin = cli
	return &nc
}

// upgradeView is what the rolling upgrade reads of `ipvsman cluster status
// --json`.
type upgradeView struct {
	Nodes []struct {
		ID        string `json:"id"`
		Reachable bool   `json:"reachable"`
		Error     string `json:"error"`
		Status    *struct {
			State   string `json:"state"`
			Applied uint64 `json:"applied_index"`
		} `json:"status"`
	} `json:"nodes"`
	Members []struct {
		ID       string `json:"id"`
		Suffrage string `json:"suffrage"`
		Version  string `json:"version"`
		Protocol int    `json:"protocol"`
		Gossip   string `json:"gossip"`
	} `json:"members"`
	MinProtocol int    `json:"min_protocol"`
	Note        string `json:"note"`
}

func clusterView(c *harness.Cluster, via *harness.Node) (upgradeView, string, error) {
	r := c.CLI(via, "", "cluster", "status", "--json")
	var v upgradeView
	// A non-zero exit (an ALARM) still prints the status: judge that.
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
		return v, r.Stdout + r.Stderr, fmt.Errorf("cluster status --json via %s: %v (%w)", via.ID, r.Err, err)
	}
	return v, r.Stdout, nil
}

// settled reports why the cluster is not yet what the procedure waits for
// after each step: the three members voters and alive in gossip, one
// leader, every node's applied index equal to the leader's, and node
// running version.
func (v upgradeView) settled(node, version string) error {
	if len(v.Members) != topo.Directors {
		return fmt.Errorf("%d members, want %d", len(v.Members), topo.Directors)
	}
	found := false
	for _, m := range v.Members {
		if m.Suffrage != "voter" || m.Gossip != "alive" {
			return fmt.Errorf("member %s: %s, gossip %s", m.ID, m.Suffrage, m.Gossip)
		}
		if m.ID == node {
			found = true
			if m.Version != version {
				return fmt.Errorf("member %s runs %q, want %q", m.ID, m.Version, version)
			}
		}
	}
	if !found {
		return fmt.Errorf("no member %s", node)
	}
	var leader string
	var applied uint64
	for _, n := range v.Nodes {
		if n.Status == nil {
			return fmt.Errorf("node %s: no status (%s)", n.ID, n.Error)
		}
		if n.Status.State == "Leader" {
			if leader != "" {
				return fmt.Errorf("two leaders: %s and %s", leader, n.ID)
			}
			leader, applied = n.ID, n.Status.Applied
		}
	}
	if leader == "" {
		return errors.New("no leader")
	}
	for _, n := range v.Nodes {
		if n.Status.Applied != applied {
			return fmt.Errorf("node %s applied %d, the leader %s %d", n.ID, n.Status.Applied, leader, applied)
		}
	}
	return nil
}

// upgradeRun is the cluster, the traffic and the clock of the steps.
type upgradeRun struct {
	t        *testing.T
	tp       *topo.Topology
	c        *harness.Cluster // through the old CLI
	next     *harness.Cluster // through the new CLI
	nodes    []*harness.Node
	from, to release // the running release and the next one
	labtool  string

	began time.Time
	steps []upgradeStep
}

type upgradeStep struct {
	name       string
	start, end time.Time
}

// step runs f and records how long it took.
func (r *upgradeRun) step(name string, f func()) {
	r.t.Helper()
	s := upgradeStep{name: name, start: time.Now()}
	f()
	s.end = time.Now()
	r.steps = append(r.steps, s)
	r.t.Logf("step %q: %d ms (at %.1f s)", name, s.end.Sub(s.start).Milliseconds(), s.end.Sub(r.began).Seconds())
}

// during names the step that was running at time at.
func (r *upgradeRun) during(at time.Time) string {
	for _, s := range r.steps {
		if !at.Before(s.start) && at.Before(s.end) {
			return s.name
		}
	}
	return "between steps"
}

// waitSettled waits, asking through via, until node runs version and the
// cluster has settled.
func (r *upgradeRun) waitSettled(via *harness.Node, node, version string) {
	r.t.Helper()
	harness.Eventually(r.t, 3*time.Minute, node+" voter, alive, caught up, at "+version, paced(time.Second, func() (bool, string) {
		v, out, err := clusterView(r.c, via)
		if err != nil {
			return false, err.Error() + "\n" + out
		}
		if err := v.settled(node, version); err != nil {
			return false, err.Error() + "\n" + out
		}
		return true, ""
	}))
}

// upgrade replaces node's binary: SIGTERM, start the new daemon on the same
// data dir and flags, wait until it has settled (asking through via).
func (r *upgradeRun) upgrade(node, via *harness.Node) {
	r.t.Helper()
	r.step("stop "+node.ID, func() {
		if err := node.Stop(); err != nil {
			r.t.Fatalf("SIGTERM %s: %v\n%s", node.ID, err, lastLines(node.Log(), 20))
		}
	})
	node.Daemon = r.to.daemon
	r.step("start "+node.ID+" "+r.to.version, func() { node.Start() })
	r.step(node.ID+" settled", func() { r.waitSettled(via, node.ID, r.to.version) })
}

// transfer moves the lead from leader to target, once target's kernel
// holds every echo connection (synced), and waits for the VIP to follow.
func (r *upgradeRun) transfer(leader, target *harness.Node) {
	t := r.t
	t.Helper()
	harness.Eventually(t, 60*time.Second, "the echo connections in "+target.ID+"'s kernel", paced(500*time.Millisecond, func() (bool, string) {
		out, err := r.tp.Exec(target.ID, "ipvsadm", "-L", "-c", "-n")
		got := countEstablished(out, upgradeEchoPort)
		return err == nil && got >= upgradeEchoConns, fmt.Sprintf("%d ESTABLISHED: %v\n%s", got, err, firstLines(out, 8))
	}))
	r.step("transfer "+leader.ID+" to "+target.ID, func() {
		out := r.next.MustCLI(target, "", "cluster", "transfer", target.ID)
		t.Logf("ipvsman cluster transfer %s: %s", target.ID, strings.TrimSpace(out))
		harness.Eventually(t, 60*time.Second, target.ID+" leading", paced(time.Second, func() (bool, string) {
			got := r.c.Leader(t, target, r.nodes)
			return got == target, "leader " + got.ID
		}))
		waitVIPOn(t, r.tp, target.ID, topo.VIP+"/32")
		waitVIPGone(t, r.tp, leader.ID, topo.VIP+"/32")
	})
}

// refused runs `ipvsman cluster note` of the new CLI through via and
// requires a refusal (exit 1) whose message contains each of want, and
// that nothing changed: no note, the same history, via still serving.
func (r *upgradeRun) refused(via *harness.Node, want ...string) {
	t := r.t
	t.Helper()
	before := r.c.MustCLI(via, "", "history")
	logBefore := len(via.Log())
	res := r.next.CLI(via, "", "cluster", "note", upgradeNote)
	var ee *exec.ExitError
	if !errors.As(res.Err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("ipvsman cluster note via %s: %v, want exit status 1\nstdout: %s\nstderr: %s", via.ID, res.Err, res.Stdout, res.Stderr)
	}
	for _, w := range want {
		if !strings.Contains(res.Stderr, w) {
			t.Errorf("ipvsman cluster note via %s: stderr %q does not say %q", via.ID, res.Stderr, w)
		}
	}
	t.Logf("ipvsman cluster note via %s (%s): exit 1, %s", via.ID, r.versionOf(via), strings.TrimSpace(res.Stderr))
	// Nothing changed, and via is not confused: it answers, as before.
	if after := r.c.MustCLI(via, "", "history"); after != before {
		t.Errorf("history changed by a refused cluster note via %s:\nbefore:\n%s\nafter:\n%s", via.ID, before, after)
	}
	v, out, err := clusterView(r.c, via)
	if err != nil {
		t.Fatal(err)
	}
	if v.Note != "" {
		t.Errorf("note %q set by a refused cluster note:\n%s", v.Note, out)
	}
	for _, n := range v.Nodes {
		if n.ID == via.ID && (!n.Reachable || n.Status == nil) {
			t.Errorf("%s does not answer after the refused cluster note: %s\n%s", via.ID, n.Error, out)
		}
	}
	if l := via.Log()[logBefore:]; strings.Contains(l, "panic") {
		t.Errorf("%s's log after the refused cluster note:\n%s", via.ID, l)
	} else if strings.TrimSpace(l) != "" {
		t.Logf("%s logged meanwhile:\n%s", via.ID, lastLines(l, 10))
	}
}

func (r *upgradeRun) versionOf(n *harness.Node) string {
	if n.Daemon == r.to.daemon {
		return r.to.version
	}
	return r.from.version
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// TestRollingUpgrade is acceptance 2 of issue 8; `make bench-upgrade` runs
// it alone.
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
	if r.from.version == r.to.version || r.to.protocol != 2 || r.from.protocol != 1 {
		t.Fatalf("the two builds must be protocol 1 and 2 of different versions: %+v, %+v", r.from, r.to)
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
	harness.Eventually(t, 60*time.Second, "both services in every kernel", func() (bool, string) {
		for _, n := range nodes {
			out, _ := tp.Exec(n.ID, "ipvsadm", "-L", "-n")
			if strings.Count(out, "->") < 7 { // 6 servers and the heading
				return false, n.ID + ":\n" + out
			}
		}
		return true, ""
	})
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
			r.refused(next, append([]string{"needs protocol 2 on every member"}, below...)...)
			if v, out, err := clusterView(r.next, next); err != nil || v.MinProtocol != r.from.protocol {
				t.Errorf("cluster protocol %d with %v still at %s, want %d: %v\n%s", v.MinProtocol, below, r.from.version, r.from.protocol, err, out)
			}
		})
	}
	target := leaderOf(t, c, nodes)
	harness.Eventually(t, 60*time.Second, "cluster protocol 2", paced(time.Second, func() (bool, string) {
		v, out, err := clusterView(r.next, target)
		return err == nil && v.MinProtocol == r.to.protocol, fmt.Sprint(err) + "\n" + out
	}))
	r.step("cluster note", func() {
		res := r.next.CLI(nodes[2], "", "cluster", "note", upgradeNote)
		if res.Err != nil || strings.TrimSpace(res.Stdout) != "note set" {
			t.Fatalf("ipvsman cluster note %s via %s, every node upgraded: %v\nstdout: %s\nstderr: %s", upgradeNote, nodes[2].ID, res.Err, res.Stdout, res.Stderr)
		}
	})
	r.step("note and protocol 2 on every node", func() {
		for _, n := range nodes {
			harness.Eventually(t, 60*time.Second, "note and cluster protocol 2 via "+n.ID, paced(time.Second, func() (bool, string) {
				res := r.next.CLI(n, "", "cluster", "status")
				out := "\n" + res.Stdout
				return res.Err == nil && strings.Contains(out, "\nnote: "+upgradeNote+"\n") && strings.Contains(out, "\ncluster protocol: 2\n"),
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
	var slowest time.Duration
	for _, q := range poll.Results(from, stopped) {
		if !q.OK {
			t.Logf("request at %.3f s (%s, %s UTC) failed after %d ms: %s", q.Start.Sub(r.began).Seconds(), r.during(q.Start),
				q.Start.UTC().Format("15:04:05.000"), q.End.Sub(q.Start).Milliseconds(), q.Err)
		} else {
			slowest = max(slowest, q.End.Sub(q.Start))
		}
	}
	var b strings.Builder
	for _, s := range r.steps {
		fmt.Fprintf(&b, "  %-45s %7d ms  (%.1f-%.1f s, from %s UTC)\n", s.name, s.end.Sub(s.start).Milliseconds(),
			s.start.Sub(r.began).Seconds(), s.end.Sub(r.began).Seconds(), s.start.UTC().Format("15:04:05.000"))
	}
	t.Logf("steps:\n%s", b.String())
	t.Logf("leadership and VIP changes (the daemons' logs):\n%s", r.leaderChanges(from))
	t.Logf("requests: %d, %d failed, slowest answer %d ms; echo: %d of %d connections survived, %d broke, longest echo gap %d ms, by server %v, errors %v",
		total, failed, slowest.Milliseconds(), res.Survived, res.Conns, res.Broken, res.MaxGapMS, res.ByServer, res.Errors)
	if minimum := int(stopped.Sub(from)/upgradeEvery) / 2; total < minimum {
		t.Errorf("only %d requests in %v (at least %d expected): %s", total, stopped.Sub(from).Round(time.Second), minimum, poll.Health())
	}
	if failed != 0 {
		t.Errorf("%d of %d requests failed, want 0", failed, total)
	}
	if res.Broken != 0 {
		t.Errorf("%d of %d long-lived connections broke, want 0: %v", res.Broken, upgradeEchoConns, res.Errors)
	}
	fmt.Printf("upgrade_failed_requests: %d\n", failed)
	fmt.Printf("upgrade_broken_connections: %d\n", res.Broken)
}

// leaderChanges lists, in time order, every leadership gained or lost and
// every VIP added or removed since from, as the daemons logged them: a
// failed request is read against them (a planned transfer, or an election
// of its own when the emulated CPU starves).
func (r *upgradeRun) leaderChanges(from time.Time) string {
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
	return b.String()
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

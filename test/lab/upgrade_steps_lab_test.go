//go:build lab

package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// The steps of TestRollingUpgrade: binaries, the cluster as the new CLI
// reports it, and each upgrade, transfer and refusal, timed.

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

package host

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/failover"
	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// readyPrefix names this test's namespaces; readyBridge is the second
// bridge, for the link Raft, gossip and the API use.
const (
	readyPrefix = "rd-"
	readyBridge = "rdr0"
)

// raftAddr is director i's address on the Raft link.
func raftAddr(i int) string { return fmt.Sprintf("10.9.0.1%d", i) }

// addRaftLink gives every director a second interface, eth1, on a bridge of
// its own: Raft keeps running over it when eth0, the link with the VIPs
// and the clients, fails. That is the case readiness exists for.
func addRaftLink(t *testing.T, tp *topo.Topology) {
	t.Helper()
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	_ = exec.Command("ip", "link", "del", readyBridge).Run() // left by a killed run
	ip("link", "add", readyBridge, "type", "bridge", "stp_state", "0")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", readyBridge).Run() })
	ip("link", "set", readyBridge, "up")
	for i := 1; i <= topo.Directors; i++ {
		d := topo.Director(i)
		port := readyPrefix + d + "r"
		_ = exec.Command("ip", "link", "del", port).Run()
		ip("link", "add", port, "type", "veth", "peer", "name", "eth1", "netns", tp.NS(d))
		ip("link", "set", port, "master", readyBridge, "up")
		ip("-n", tp.NS(d), "addr", "add", raftAddr(i)+"/24", "dev", "eth1")
		ip("-n", tp.NS(d), "link", "set", "eth1", "up")
	}
	harness.Eventually(t, 10*time.Second, "the Raft link up", func() (bool, string) {
		out, err := tp.Exec(topo.Director(1), "ping", "-c1", "-W1", raftAddr(3))
		return err == nil, out
	})
}

// readiness returns each member's READY as `cluster status --json` says.
func readiness(t *testing.T, c *harness.Cluster, via *harness.Node) map[string]string {
	t.Helper()
	r := c.CLI(via, "", "cluster", "status", "--json")
	if r.Err != nil {
		return nil
	}
	var st struct {
		Members []struct {
			ID      string `json:"id"`
			Ready   string `json:"ready"`
			Unready string `json:"unready"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("cluster status --json: %v: %s", err, r.Stdout)
	}
	out := map[string]string{}
	for _, m := range st.Members {
		out[m.ID] = m.Ready
	}
	return out
}

// leaderTerm is "leader@term" as `cluster status --json` through via says.
func leaderTerm(t *testing.T, c *harness.Cluster, via *harness.Node) string {
	t.Helper()
	r := c.CLI(via, "", "cluster", "status", "--json")
	if r.Err != nil {
		return "unknown: " + r.Stderr
	}
	var st struct {
		LeaderID string `json:"leader_id"`
		Term     uint64 `json:"term"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("cluster status --json: %v: %s", err, r.Stdout)
	}
	return fmt.Sprintf("%s@%d", st.LeaderID, st.Term)
}

func logTail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

func gained(nodes []*harness.Node) int {
	n := 0
	for _, node := range nodes {
		n += strings.Count(node.Log(), `"msg":"leadership gained"`)
	}
	return n
}

// A leader that cannot serve hands leadership to a node that can: its VIP
// link loses carrier, or the gateway it tracks stops answering it, while
// Raft still runs over the other link. When no node can serve, nobody
// moves leadership.
func TestLeadershipFollowsTheAbilityToServe(t *testing.T) {
	lab := failover.NewLabWith(t, topo.BuildLabtool(t), topo.Options{Prefix: readyPrefix, NoIPv6: true})
	tp := lab.Topo
	addRaftLink(t, tp)
	c := harness.NewCluster(t)
	var nodes []*harness.Node
	for i := 1; i <= topo.Directors; i++ {
		d := topo.Director(i)
		nodes = append(nodes, c.AddAt(d, raftAddr(i)+":7000", raftAddr(i)+":7080", tp.NS(d),
			"--track-address", topo.ClientAddr, "--track-interval", "200ms"))
	}
	// The CLI runs beside d1 and reaches every API over the Raft link.
	c.CLINetNS = tp.NS(topo.Director(1))
	nodes[0].Start("--bootstrap")
	nodes[1].Start("--join", nodes[0].APIAddr)
	nodes[2].Start("--join", nodes[0].APIAddr)
	c.WaitRoles(t, nodes[0], len(nodes))
	c.Voters(t, nodes[0], nodes...)
	vips := filepath.Join(t.TempDir(), "vips.topo")
	if err := os.WriteFile(vips, []byte("vip "+topo.VIP+"/32 eth0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.MustCLI(nodes[0], "", "apply", "-f", vips)

	poll := failover.StartPoller(t, tp, lab.Labtool, topo.Client, fmt.Sprintf("http://%s:%d/", topo.VIP, topo.HTTPPort), 0, 0)
	allReady := func() {
		t.Helper()
		harness.Eventually(t, 30*time.Second, "every node ready", func() (bool, string) {
			r := readiness(t, c, nodes[0])
			return len(r) == 3 && r["d1"] == "yes" && r["d2"] == "yes" && r["d3"] == "yes", fmt.Sprint(r)
		})
	}
	settled := func() *harness.Node {
		t.Helper()
		allReady()
		leader := c.Leader(t, nodes[0], nodes)
		if _, ok := poll.WaitStreak(time.Now(), 20, leader.ID, time.Now().Add(30*time.Second)); !ok {
			t.Fatalf("the client is not answered by the leader %s: %s", leader.ID, poll.Health())
		}
		return leader
	}

	// The VIP link loses carrier: the VIP moves, the client is answered again.
	leader := settled()
	cut := time.Now()
	if out, err := exec.Command("ip", "link", "set", tp.Veth(leader.ID), "down").CombinedOutput(); err != nil {
		t.Fatalf("link down: %v: %s", err, out)
	}
	end, by, ok := poll.FirstOKFromOther(cut, cut.Add(15*time.Second), leader.ID)
	if !ok {
		t.Fatalf("no answer from another director within 15 s of %s's VIP link going down: %s\n%s", leader.ID, poll.Health(), logTail(leader.Log()))
	}
	linkLoss := end.Sub(cut)
	t.Logf("vip_link_loss_ms: %d (answered by %s)", linkLoss.Milliseconds(), by)
	if out, err := exec.Command("ip", "link", "set", tp.Veth(leader.ID), "up").CombinedOutput(); err != nil {
		t.Fatalf("link up: %v: %s", err, out)
	}

	// The tracked gateway stops answering the leader (its replies to the
	// leader's address are dropped): the same.
	leader = settled()
	addr := topo.DirectorAddr(int(leader.ID[1] - '0'))
	cut = time.Now()
	tp.MustExec(topo.Client, "ip", "route", "add", "blackhole", addr+"/32")
	end, by, ok = poll.FirstOKFromOther(cut, cut.Add(15*time.Second), leader.ID)
	if !ok {
		t.Fatalf("no answer from another director within 15 s of the gateway going silent for %s: %s\n%s", leader.ID, poll.Health(), logTail(leader.Log()))
	}
	gatewayLoss := end.Sub(cut)
	t.Logf("gateway_loss_ms: %d (answered by %s)", gatewayLoss.Milliseconds(), by)
	tp.MustExec(topo.Client, "ip", "route", "del", "blackhole", addr+"/32")

	// No node can serve: nobody moves leadership, for a minute.
	settled()
	for i := 1; i <= topo.Directors; i++ {
		tp.MustExec(topo.Client, "ip", "route", "add", "blackhole", topo.DirectorAddr(i)+"/32")
	}
	harness.Eventually(t, 30*time.Second, "every node unready", func() (bool, string) {
		r := readiness(t, c, nodes[0])
		return r["d1"] == "no" && r["d2"] == "no" && r["d3"] == "no", fmt.Sprint(r)
	})
	before, term := gained(nodes), leaderTerm(t, c, nodes[0])
	// An observation window, not a wait for a condition: every second for
	// a minute, the leader and its term must stay as they were.
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(time.Second) {
		if now := leaderTerm(t, c, nodes[0]); now != term {
			t.Errorf("leadership moved with every node unready: %s, then %s", term, now)
			break
		}
	}
	changes := gained(nodes) - before
	t.Logf("unready_minute_leader_changes: %d", changes)
	if changes != 0 {
		t.Errorf("%d leader changes in a minute with every node unready, want 0", changes)
	}
	for i := 1; i <= topo.Directors; i++ {
		tp.MustExec(topo.Client, "ip", "route", "del", "blackhole", topo.DirectorAddr(i)+"/32")
	}
	allReady()
	if linkLoss > 10*time.Second || gatewayLoss > 10*time.Second {
		t.Errorf("recovery took %v (link) and %v (gateway): readiness did not move leadership", linkLoss, gatewayLoss)
	}
}

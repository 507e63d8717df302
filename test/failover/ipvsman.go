package failover

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// Ports of each director's ipvsmand, on its front address.
const (
	RaftPort = "7000"
	APIPort  = "7080"
)

// LeadershipGained is the log message ipvsmand writes each time it becomes
// leader (cluster.Node.watchLeadership); LeaderChanges counts it.
const LeadershipGained = `"msg":"leadership gained"`

// Ipvsman runs one ipvsmand per director (the CLI from the client's
// namespace) and owns the VIP through the cluster's topology.
type Ipvsman struct {
	lab   *Lab
	C     *harness.Cluster
	Nodes map[string]*harness.Node

	mu      sync.Mutex
	crashed map[string]bool
}

// StartIpvsman starts d1 with --bootstrap, then d2 and d3 with --join
// through d1, and waits for three voters with one leader. Any extra args go
// to every ipvsmand (e.g. Raft timings). The daemons log JSON.
func StartIpvsman(t testing.TB, lab *Lab, extra ...string) *Ipvsman {
	t.Helper()
	return StartIpvsmanEnv(t, lab, nil, extra...)
}

// StartIpvsmanEnv is StartIpvsman with extra environment (NAME=value) for
// every ipvsmand, e.g. GOGC or GOMAXPROCS.
func StartIpvsmanEnv(t testing.TB, lab *Lab, env []string, extra ...string) *Ipvsman {
	t.Helper()
	c := harness.NewCluster(t)
	c.CLINetNS = lab.Topo.NS(topo.Client)
	m := &Ipvsman{lab: lab, C: c, Nodes: map[string]*harness.Node{}, crashed: map[string]bool{}}
	for i, d := range lab.Directors {
		addr := topo.DirectorAddr(i + 1)
		m.Nodes[d] = c.AddAt(d, addr+":"+RaftPort, addr+":"+APIPort, lab.Topo.NS(d), extra...)
		m.Nodes[d].Env = env
	}
	first := lab.Directors[0]
	m.Nodes[first].Start("--bootstrap")
	harness.Eventually(t, 30*time.Second, first+" leads its one-node cluster", func() (bool, string) {
		roles, err := m.Roles()
		return err == nil && roles[first] == "Leader", fmt.Sprint(roles, err)
	})
	for _, d := range lab.Directors[1:] {
		m.Nodes[d].Start("--join", m.Nodes[first].APIAddr)
	}
	harness.Eventually(t, 60*time.Second, "three voters", func() (bool, string) {
		err := m.Voters()
		return err == nil, fmt.Sprint(err)
	})
	return m
}

// ApplyVIP replaces the topology with one holding only the VIP line
// `vip 10.0.0.10/32 eth0`, through `ipvsman apply -f`.
func (m *Ipvsman) ApplyVIP(t testing.TB) {
	t.Helper()
	f := filepath.Join(m.C.Dir, "vip.conf")
	if err := os.WriteFile(f, []byte("vip "+VIPCIDR+" "+VIPDev+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.C.MustCLI(m.live()[0], "", "apply", "-f", f)
}

// live returns the nodes that are neither crashed nor stopped, in
// director order.
func (m *Ipvsman) live() []*harness.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*harness.Node
	for _, d := range m.lab.Directors {
		if n := m.Nodes[d]; n.Running() && !m.crashed[d] {
			out = append(out, n)
		}
	}
	return out
}

// Roles runs `ipvsman cluster status` through the first live node that
// answers and returns each member's ROLE column ("Leader", "Follower",
// "Candidate", or "unreachable").
func (m *Ipvsman) Roles() (map[string]string, error) {
	var errs []error
	for _, n := range m.live() {
		r := m.C.CLI(n, "", "cluster", "status")
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("via %s: %w: %s", n.ID, r.Err, strings.TrimSpace(r.Stderr)))
			continue
		}
		return parseRoles(r.Stdout)
	}
	return nil, fmt.Errorf("cluster status: %w", errors.Join(errs...))
}

// parseRoles reads the NODE and ROLE columns of `ipvsman cluster status`'s
// first table; the suffrage of each member, from its second table, comes
// as the role "nonvoter" for a non-voter (not yet promoted).
func parseRoles(out string) (map[string]string, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "NODE ") {
		return nil, fmt.Errorf("cluster status: unexpected output %q", out)
	}
	roles := map[string]string{}
	members := false
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		switch {
		case len(f) == 0:
		case f[0] == "MEMBER":
			members = true
		case members && len(f) >= 2 && f[1] == "nonvoter":
			roles[f[0]] = "nonvoter"
		case !members && len(f) >= 2:
			roles[f[0]] = f[1]
		}
	}
	return roles, nil
}

// Leader returns the one member reporting itself Leader.
func (m *Ipvsman) Leader() (string, error) {
	roles, err := m.Roles()
	if err != nil {
		return "", err
	}
	var leaders []string
	for id, role := range roles {
		if role == "Leader" {
			leaders = append(leaders, id)
		}
	}
	if len(leaders) != 1 {
		sort.Strings(leaders)
		return "", fmt.Errorf("leaders %v in %v", leaders, roles)
	}
	return leaders[0], nil
}

// Voters returns nil when the status shows one Leader and two Followers.
func (m *Ipvsman) Voters() error {
	roles, err := m.Roles()
	if err != nil {
		return err
	}
	var leaders, followers int
	for _, role := range roles {
		switch role {
		case "Leader":
			leaders++
		case "Follower":
			followers++
		}
	}
	if leaders != 1 || followers != len(m.lab.Directors)-1 {
		return fmt.Errorf("roles %v, want one Leader and %d Followers", roles, len(m.lab.Directors)-1)
	}
	return nil
}

// ReadyWith is steady state as the cluster reports it: every voter up and
// the leader the one that holds the VIP (obs nil skips that check).
func (m *Ipvsman) ReadyWith(obs *Observer) func() error {
	return func() error {
		if err := m.Voters(); err != nil {
			return err
		}
		if obs == nil {
			return nil
		}
		leader, err := m.Leader()
		if err != nil {
			return err
		}
		if h := obs.Current(); len(h) != 1 || h[0] != leader {
			return fmt.Errorf("leader %s, VIP holders %v", leader, h)
		}
		return nil
	}
}

// Ready implements Driver: three voters.
func (m *Ipvsman) Ready() error { return m.Voters() }

// Crash SIGKILLs node's ipvsmand and cuts its link right after.
func (m *Ipvsman) Crash(node string) time.Time {
	n := m.Nodes[node]
	m.mu.Lock()
	m.crashed[node] = true
	m.mu.Unlock()
	at := time.Now()
	n.Kill()
	m.lab.Topo.CutLink(node)
	return at
}

// Restore starts node's ipvsmand again (same data dir, so it rejoins as it
// was) while its link is still cut, and then restores the link: a daemon
// must clean up a VIP left over from its crash before it can reach anyone.
func (m *Ipvsman) Restore(node string, beforeLinkUp func()) {
	m.Nodes[node].Start()
	if beforeLinkUp != nil {
		beforeLinkUp()
	}
	m.lab.Topo.RestoreLink(node)
	m.mu.Lock()
	delete(m.crashed, node)
	m.mu.Unlock()
}

// Transfer runs `ipvsman cluster transfer` against node (the leader) and
// returns the instant just before the call.
func (m *Ipvsman) Transfer(node string) (time.Time, error) {
	at := time.Now()
	r := m.C.CLI(m.Nodes[node], "", "cluster", "transfer")
	if r.Err != nil {
		return at, fmt.Errorf("cluster transfer via %s: %w: %s", node, r.Err, strings.TrimSpace(r.Stderr))
	}
	return at, nil
}

// LogSizes returns the current length of every daemon's log, for
// LeaderChanges.
func (m *Ipvsman) LogSizes() map[string]int {
	out := map[string]int{}
	for id, n := range m.Nodes {
		out[id] = len(n.Log())
	}
	return out
}

// LeaderChanges counts "leadership gained" lines written by all daemons
// since the given LogSizes: each is a node winning an election (or a
// transfer), so in a quiet cluster it should stay at zero.
func (m *Ipvsman) LeaderChanges(since map[string]int) int {
	total := 0
	for id, n := range m.Nodes {
		log := n.Log()
		if off := since[id]; off <= len(log) {
			log = log[off:]
		}
		total += CountLeadershipGained(log)
	}
	return total
}

// SaveLogs copies every daemon's log to dir/NODE.log (dir is created), for
// a look after the run: the cluster's own directory is the test's and is
// removed with it.
func (m *Ipvsman) SaveLogs(t testing.TB, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("LOGDIR: %v", err)
		return
	}
	for id, n := range m.Nodes {
		if err := os.WriteFile(filepath.Join(dir, id+".log"), []byte(n.Log()), 0o644); err != nil {
			t.Logf("LOGDIR: %v", err)
		}
	}
}

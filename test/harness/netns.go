package harness

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// Directors starts a three-node cluster in the topology's director
// namespaces (d1 bootstraps, d2 and d3 join through it), with the CLI in
// the client namespace, and returns once one leads and two follow. ipvs is
// the --ipvs mode; args are extra daemon flags, kept across restarts.
func Directors(t *testing.T, tp *topo.Topology, ipvs string, args ...string) (*Cluster, []*Node) {
	t.Helper()
	c := NewCluster(t)
	nodes := DirectorNodes(c, tp, topo.Directors, ipvs, args...)
	nodes[0].Start("--bootstrap")
	nodes[1].Start("--join", nodes[0].APIAddr)
	nodes[2].Start("--join", nodes[0].APIAddr)
	c.WaitRoles(t, nodes[0], len(nodes))
	c.Voters(t, nodes[0], nodes...)
	return c, nodes
}

// DirectorNodes defines (without starting them) nodes d1 to dN of the
// topology in c, each in its namespace at DirectorAddr(i):7000 (Raft) and
// :7080 (API), and runs the CLI in the client namespace. n may exceed 3 in
// a topology built with Options.Directors. ipvs is the --ipvs mode; args
// are extra daemon flags, kept across restarts.
func DirectorNodes(c *Cluster, tp *topo.Topology, n int, ipvs string, args ...string) []*Node {
	c.t.Helper()
	var nodes []*Node
	for i := 1; i <= n; i++ {
		nodes = append(nodes, DirectorNode(c, tp, i, ipvs, args...))
	}
	return nodes
}

// DirectorNode defines (without starting it) director i of the topology
// in c, as DirectorNodes does: for a node added to a running cluster.
func DirectorNode(c *Cluster, tp *topo.Topology, i int, ipvs string, args ...string) *Node {
	c.t.Helper()
	if i > len(tp.DirectorNames()) {
		c.t.Fatalf("harness: director %d wanted, the topology has %v", i, tp.DirectorNames())
	}
	c.CLINetNS = tp.NS(topo.Client)
	a := topo.DirectorAddr(i)
	n := c.AddAt(topo.Director(i), a+":7000", a+":7080", tp.NS(topo.Director(i)), args...)
	n.IPVS = ipvs
	return n
}

// DirectorsN starts an n-node cluster in the topology's first n director
// namespaces: d1 bootstraps and each further node joins through the one
// started before it (from d3 on, through a follower). It returns once one
// node leads and n-1 follow, all voters, as `cluster status` through d1
// reports.
func DirectorsN(t *testing.T, tp *topo.Topology, n int, ipvs string, args ...string) (*Cluster, []*Node) {
	t.Helper()
	c := NewCluster(t)
	nodes := DirectorNodes(c, tp, n, ipvs, args...)
	nodes[0].Start("--bootstrap")
	for i := 1; i < n; i++ {
		nodes[i].Start("--join", nodes[i-1].APIAddr)
	}
	c.WaitRoles(t, nodes[0], n)
	c.Voters(t, nodes[0], nodes...)
	return c, nodes
}

// WaitRoles waits until `cluster status` through via shows one Leader and
// n-1 Followers. A follower may still be a non-voter: Voters waits for the
// promotions.
func (c *Cluster) WaitRoles(t testing.TB, via *Node, n int) {
	t.Helper()
	Eventually(t, 60*time.Second, fmt.Sprintf("%d members, one leader", n), func() (bool, string) {
		r := c.CLI(via, "", "cluster", "status")
		return r.Err == nil && strings.Count(r.Stdout, "Leader") == 1 && strings.Count(r.Stdout, "Follower") == n-1, r.Stdout + r.Stderr
	})
}

// Leader asks `ipvsman cluster status` through via, until one of nodes is
// reported leader, and returns it.
func (c *Cluster) Leader(t testing.TB, via *Node, nodes []*Node) *Node {
	t.Helper()
	var found *Node
	Eventually(t, 60*time.Second, "a leader", func() (bool, string) {
		r := c.CLI(via, "", "cluster", "status")
		if r.Err != nil {
			return false, r.Stderr
		}
		for _, line := range strings.Split(r.Stdout, "\n") {
			f := strings.Fields(line)
			if len(f) > 1 && f[1] == "Leader" {
				for _, n := range nodes {
					if n.ID == f[0] {
						found = n
						return true, ""
					}
				}
			}
		}
		return false, r.Stdout
	})
	return found
}

// Voters waits until the node at via lists every one of nodes as a voter
// of the Raft configuration: joiners start as non-voters, and a test that
// kills a node before the others are promoted would leave no quorum.
func (c *Cluster) Voters(t testing.TB, via *Node, nodes ...*Node) {
	t.Helper()
	Eventually(t, 60*time.Second, fmt.Sprintf("%d voters", len(nodes)), func() (bool, string) {
		r := c.CLI(via, "", "cluster", "status", "--json")
		if r.Err != nil {
			return false, r.Stderr
		}
		var st struct {
			Members []struct {
				ID       string `json:"id"`
				Suffrage string `json:"suffrage"`
			} `json:"members"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
			return false, err.Error()
		}
		voters := map[string]bool{}
		for _, m := range st.Members {
			voters[m.ID] = m.Suffrage == "voter"
		}
		for _, n := range nodes {
			if !voters[n.ID] {
				return false, fmt.Sprintf("%s is not a voter yet: %+v", n.ID, st.Members)
			}
		}
		return true, ""
	})
}

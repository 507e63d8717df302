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
	c.CLINetNS = tp.NS(topo.Client)
	var nodes []*Node
	for i := 1; i <= topo.Directors; i++ {
		a := topo.DirectorAddr(i)
		n := c.AddAt(topo.Director(i), a+":7000", a+":7080", tp.NS(topo.Director(i)), args...)
		n.IPVS = ipvs
		nodes = append(nodes, n)
	}
	nodes[0].Start("--bootstrap")
	nodes[1].Start("--join", nodes[0].APIAddr)
	nodes[2].Start("--join", nodes[0].APIAddr)
	Eventually(t, 60*time.Second, "three members, one leader", func() (bool, string) {
		r := c.CLI(nodes[0], "", "cluster", "status")
		return r.Err == nil && strings.Count(r.Stdout, "Leader") == 1 && strings.Count(r.Stdout, "Follower") == 2, r.Stdout + r.Stderr
	})
	c.Voters(t, nodes[0], nodes...)
	return c, nodes
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

package host

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
)

// reloadLogs sends n SIGHUP and waits for one more log line holding want
// (a reload's "reloaded" line, say what changed).
func reloadLogs(t *testing.T, n *harness.Node, want string) {
	t.Helper()
	before := strings.Count(n.Log(), want)
	if err := n.Reload(); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 20*time.Second, n.ID+" logs "+want, func() (bool, string) {
		return strings.Count(n.Log(), want) > before, lastLine(n.Log())
	})
	if !n.Alive() {
		t.Fatalf("%s exited on SIGHUP", n.ID)
	}
}

// TestTokenRotationTwoReloads: three loopback directors rotate their
// cluster token with two reloads each, the leader's second last
// (docs/security.md). After the
// first reload of a follower alone, a write with the new token through it
// commits (forwarded with the old token to the leader, which has not
// reloaded) and the old token still works there; after every node's
// second reload the old token is refused everywhere, writes go on, and a
// node restarted with the new token alone (so the new gossip key alone)
// is alive in gossip again: the others send with the new key.
func TestTokenRotationTwoReloads(t *testing.T) {
	c := harness.NewCluster(t)
	var nodes []*harness.Node
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, c.Add(id, "--gossip-profile", gossipProfile()))
	}
	nodes[0].Start("--bootstrap")
	nodes[1].Start("--join", nodes[0].APIAddr)
	nodes[2].Start("--join", nodes[0].APIAddr)
	ids := nodeIDs(nodes)
	waitSettled(t, c, nodes[0], 60*time.Second, ids...)
	lead := leader(t, c, nodes...)
	fol := others(nodes, lead)

	// The CLI with a given token: a copy of the cluster with another file.
	oldToken := c.Token()
	newToken := oldToken + "-rotated"
	with := func(token string) *harness.Cluster {
		cc := *c
		cc.TokenFile = filepath.Join(c.Dir, "cli-token-"+token[len(token)-4:])
		if err := os.WriteFile(cc.TokenFile, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return &cc
	}
	oldCLI, newCLI := with(oldToken), with(newToken)
	if err := os.WriteFile(c.TokenFile, []byte(newToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := 80
	write := func(cli *harness.Cluster, via *harness.Node) harness.Result {
		port++
		return cli.CLI(via, "", "-A", "-t", "10.0.0.1:"+strconv.Itoa(port), "-s", "rr")
	}

	// Step 1 on one follower.
	reloadLogs(t, fol[0], `"cluster token (new;`)
	if r := write(newCLI, fol[0]); r.Err != nil {
		t.Fatalf("new token through the reloaded follower (forwarded to %s, not reloaded): %v %s", lead.ID, r.Err, r.Stderr)
	}
	if r := write(oldCLI, fol[0]); r.Err != nil {
		t.Fatalf("old token through the reloaded follower: %v %s", r.Err, r.Stderr)
	}
	if r := write(newCLI, lead); r.Err == nil || !strings.Contains(r.Stderr, "token") {
		t.Fatalf("new token at the leader before its reload: %v %s; want refused", r.Err, r.Stderr)
	}
	// Step 1 on the others, then step 2 on every node, the leader last
	// (docs/security.md: a node at step 2 no longer accepts the old token
	// the others still forward with), a write between.
	for _, n := range []*harness.Node{lead, fol[1]} {
		reloadLogs(t, n, `"cluster token (new;`)
	}
	for _, n := range []*harness.Node{fol[0], fol[1], lead} {
		reloadLogs(t, n, `"cluster token rotation finished`)
		if r := write(newCLI, fol[0]); r.Err != nil {
			t.Fatalf("after %s's second reload: new token through %s: %v %s", n.ID, fol[0].ID, r.Err, r.Stderr)
		}
	}
	for _, n := range nodes {
		if r := oldCLI.CLI(n, "", "-L", "-n"); r.Err == nil {
			t.Errorf("the old token still reads through %s after the rotation", n.ID)
		}
	}
	sameListing(t, newCLI, "", nodes...)

	// A node restarted now has only the new token and gossip key.
	if err := fol[1].Stop(); err != nil {
		t.Fatal(err)
	}
	fol[1].Start()
	waitSettled(t, newCLI, lead, 60*time.Second, ids...)
	if r := write(newCLI, fol[1]); r.Err != nil {
		t.Fatalf("write through the restarted %s: %v %s", fol[1].ID, r.Err, r.Stderr)
	}
	t.Logf("rotated through two reloads of each node; %d writes sent, all committed but the one with the new token at the leader before its reload", port-80)
}

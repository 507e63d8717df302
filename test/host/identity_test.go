package host

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/test/harness"
)

// Tests of node identity: a node ID is one node's. A second process
// under a live member's ID changes nothing and exits; a dead member's ID
// is taken over only with --replace; in a TLS cluster a node joins and
// acts only as the ID its certificate names. Loopback directors, no root.

// identityCluster starts n1 (bootstrap), n2 and n3 on loopback and waits
// until they are three voters alive in gossip under one leader.
func identityCluster(t *testing.T) (*harness.Cluster, []*harness.Node) {
	t.Helper()
	c := harness.NewCluster(t)
	noRaces(t, c)
	var nodes []*harness.Node
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, c.Add(id, "--gossip-profile", gossipProfile()))
	}
	nodes[0].Start("--bootstrap")
	nodes[1].Start("--join", nodes[0].APIAddr)
	nodes[2].Start("--join", nodes[0].APIAddr)
	waitSettled(t, c, nodes[0], 60*time.Second, nodeIDs(nodes)...)
	return c, nodes
}

// refusedJoin waits for n, started with --join, to exit, and returns its
// log: a refused join must stop the daemon, with the reason.
func refusedJoin(t *testing.T, n *harness.Node, what string) string {
	t.Helper()
	err := n.Wait(30 * time.Second)
	if err == nil || strings.Contains(err.Error(), "still running") {
		t.Fatalf("%s: the daemon is still running or exited 0 (%v), want it stopped by the refused join; its log:\n%s", what, err, lastLines(n.Log(), 15))
	}
	return n.Log()
}

func lastLines(s string, lines int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

// logRecords are the JSON log lines of log whose msg is msg.
func logRecords(log, msg string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(log, "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(l), &e) == nil && e["msg"] == msg {
			out = append(out, e)
		}
	}
	return out
}

// TestDuplicateNodeIDIsRefused: with n1-n3 running, a fourth ipvsmand
// started as --node-id n2 at other ports with --join is refused: it exits
// with an error naming n2 and both Raft addresses, the leader logs the
// refusal, and the real n2 stays a voter at its own address, alive, and
// keeps applying the log.
func TestDuplicateNodeIDIsRefused(t *testing.T) {
	c, nodes := identityCluster(t)
	n2 := nodes[1]
	lead := c.Leader(t, nodes[0], nodes)
	c.MustCLI(nodes[0], "", "-A", "-t", "10.0.0.1:80", "-s", "rr")

	twin := c.AddNamed("n2-twin", "n2", "--gossip-profile", gossipProfile())
	started := time.Now()
	twin.Start("--join", nodes[2].APIAddr)
	log := refusedJoin(t, twin, "a second n2")
	want := fmt.Sprintf(`join of node \"n2\" at raft_addr \"%s\" refused: node \"n2\" is a live member at raft_addr \"%s\"`, twin.RaftAddr, n2.RaftAddr)
	if !strings.Contains(log, want) {
		t.Errorf("the second n2's log lacks %s:\n%s", want, lastLines(log, 10))
	}
	t.Logf("the second n2 stopped %s after its start: %s", time.Since(started).Round(10*time.Millisecond), lastLine(log))

	refusals := logRecords(lead.Log(), "join refused")
	if len(refusals) != 1 || refusals[0]["node"] != "n2" || refusals[0]["raft_addr"] != twin.RaftAddr || refusals[0]["member_raft_addr"] != n2.RaftAddr {
		t.Errorf("the leader %s's join refused lines: %v; want one for n2 at %s, member at %s", lead.ID, refusals, twin.RaftAddr, n2.RaftAddr)
	}
	for _, r := range logRecords(lead.Log(), "member added") {
		if r["node"] == "n2" && r["raft_addr"] == twin.RaftAddr {
			t.Errorf("the leader added the second n2: %v", r)
		}
	}

	// The real n2: a voter at its address, alive, applying what follows.
	v, err := clusterView(c, lead)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := v.member("n2"); !ok || m.Suffrage != "voter" || m.RaftAddr != n2.RaftAddr || m.Gossip != "alive" {
		t.Errorf("n2 after the refused join: %+v, want a voter at %s, alive: %s", m, n2.RaftAddr, v.summary())
	}
	c.MustCLI(nodes[2], "", "-A", "-t", "10.0.0.2:80", "-s", "rr")
	harness.Eventually(t, 20*time.Second, "n2 applies a write made after the refused join", func() (bool, string) {
		r := c.CLI(n2, "", "-L", "-n")
		return r.Err == nil && strings.Contains(r.Stdout, "10.0.0.2:80"), r.Stdout + r.Stderr
	})
	waitSettled(t, c, lead, 20*time.Second, nodeIDs(nodes)...)
}

// TestReplaceADeadNodesID: n2 is killed and declared dead. A new process
// as n2 at other ports with --join alone is refused, naming both
// addresses and --replace; with --replace it takes n2's place: the leader
// logs one "member replaced" line with the old and new Raft addresses, and
// the new n2 becomes a voter, alive, at its address, with the log.
func TestReplaceADeadNodesID(t *testing.T) {
	c, nodes := identityCluster(t)
	lead := c.Leader(t, nodes[0], nodes)
	c.MustCLI(nodes[0], "", "-A", "-t", "10.0.0.1:80", "-s", "rr")
	victim := nodes[1]
	if victim == lead {
		victim = nodes[2]
	}
	victim.Kill()
	harness.Eventually(t, deadWithin()+25*time.Second, victim.ID+" dead in the leader's gossip", func() (bool, string) {
		v, err := clusterView(c, lead)
		if err != nil {
			return false, err.Error()
		}
		m, _ := v.member(victim.ID)
		return strings.HasPrefix(m.Gossip, "dead"), v.summary()
	})

	repl := c.AddNamed(victim.ID+"-new", victim.ID, "--gossip-profile", gossipProfile())
	repl.Start("--join", lead.APIAddr)
	log := refusedJoin(t, repl, "a new "+victim.ID+" without --replace")
	want := fmt.Sprintf(`join of node \"%s\" at raft_addr \"%s\" refused: node \"%s\" is a member at raft_addr \"%s\" (dead in gossip`, victim.ID, repl.RaftAddr, victim.ID, victim.RaftAddr)
	if !strings.Contains(log, want) || !strings.Contains(log, "start this node with --replace") {
		t.Errorf("the refusal without --replace lacks %s and --replace:\n%s", want, lastLines(log, 10))
	}
	t.Logf("without --replace: %s", lastLine(log))

	replaced := time.Now()
	repl.Start("--join", lead.APIAddr, "--replace")
	var line map[string]any
	harness.Eventually(t, 30*time.Second, "the leader logs the replacement", func() (bool, string) {
		r := logRecords(lead.Log(), "member replaced")
		if len(r) == 0 {
			return false, "no member replaced line yet"
		}
		if len(r) > 1 {
			t.Fatalf("%d member replaced lines, want one: %v", len(r), r)
		}
		line = r[0]
		return true, ""
	})
	if line["node"] != victim.ID || line["old_raft_addr"] != victim.RaftAddr || line["raft_addr"] != repl.RaftAddr {
		t.Errorf("member replaced: %v; want node %s, old_raft_addr %s, raft_addr %s", line, victim.ID, victim.RaftAddr, repl.RaftAddr)
	}
	t.Logf("the leader %s: member replaced %v", lead.ID, line)
	waitSettled(t, c, lead, 60*time.Second, nodeIDs(nodes)...)
	t.Logf("the new %s a voter, alive, %s after its start with --replace", victim.ID, time.Since(replaced).Round(10*time.Millisecond))
	v, err := clusterView(c, lead)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := v.member(victim.ID); m.RaftAddr != repl.RaftAddr || m.GossipAddr != repl.GossipAddr {
		t.Errorf("%s after the replacement: %+v, want raft_addr %s, gossip_addr %s", victim.ID, m, repl.RaftAddr, repl.GossipAddr)
	}
	if out := c.MustCLI(repl, "", "-L", "-n"); !strings.Contains(out, "10.0.0.1:80") {
		t.Errorf("the new %s lacks the service written before it joined:\n%s", victim.ID, out)
	}
	c.MustCLI(repl, "", "-A", "-t", "10.0.0.2:80", "-s", "rr")
}

// TestCertificateBindsTheNodeID: a TLS cluster of d1 and d2 on loopback.
// d2's certificate cannot join as d3, through the leader or a follower,
// nor forward a write as d1 (403, naming both IDs); an ipvsmand started as
// d3 with d2's certificate does not start; the cluster keeps two members.
func TestCertificateBindsTheNodeID(t *testing.T) {
	c := harness.NewCluster(t)
	c.UseTLS()
	noRaces(t, c)
	d1, d2 := c.Add("d1", "--gossip-profile", gossipProfile()), c.Add("d2", "--gossip-profile", gossipProfile())
	d1.Start("--bootstrap")
	d2.Start("--join", d1.APIAddr)
	c.WaitRoles(t, d1, 2)
	c.Voters(t, d1, d1, d2)

	pair, err := tls.LoadX509KeyPair(d2.CertFile, d2.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.ClientTLS()
	cfg.Certificates = []tls.Certificate{pair}
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	post := func(via *harness.Node, path, body string, hdr ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("POST", c.BaseURL(via)+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+c.Token())
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("POST %s via %s: %v", path, via.ID, err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	x := c.AddNamed("d3-with-d2-cert", "d3", "--gossip-profile", gossipProfile())
	join := fmt.Sprintf(`{"id":"d3","raft_addr":%q,"api_addr":%q,"gossip_addr":%q}`, x.RaftAddr, x.APIAddr, x.GossipAddr)
	for _, via := range []*harness.Node{d1, d2} {
		code, body := post(via, "/v1/cluster/join", join)
		if code != http.StatusForbidden || !strings.Contains(body, `the join is for node \"d3\", but the client's certificate is node \"d2\"'s`) {
			t.Errorf("a join as d3 with d2's certificate via %s: %d %s; want 403 naming d3 and d2", via.ID, code, body)
		} else {
			t.Logf("a join as d3 with d2's certificate via %s: %d %s", via.ID, code, strings.TrimSpace(body))
		}
	}
	ops := `{"ops":[{"kind":"add-service","service":{"key":{"protocol":"tcp","address":"10.0.0.1","port":80},"scheduler":"rr"}}]}`
	code, body := post(d1, "/v1/ops", ops, api.HeaderForwarded, "d1")
	if code != http.StatusForbidden || !strings.Contains(body, `forwarded as node \"d1\", but the client's certificate is node \"d2\"'s`) {
		t.Errorf("a write forwarded as d1 with d2's certificate: %d %s; want 403 naming d1 and d2", code, body)
	}

	x.CertFile, x.KeyFile = d2.CertFile, d2.KeyFile
	x.Start("--join", d1.APIAddr)
	if err := x.Wait(20 * time.Second); err == nil || strings.Contains(err.Error(), "still running") {
		t.Errorf("ipvsmand --node-id d3 with d2's certificate: %v, want it refused at start", err)
	} else if l := x.Log(); !strings.Contains(l, `is node "d2"'s certificate, and --node-id is "d3"`) {
		t.Errorf("d3 with d2's certificate stopped without naming both: %s", lastLine(l))
	} else {
		t.Logf("d3 with d2's certificate: %s", lastLine(l))
	}

	v, err := clusterView(c, d1)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.raftMembers(); len(got) != 2 {
		t.Errorf("members after the attempts as d3: %s; want d1 and d2 only", v.summary())
	}
	// As itself, d2 still forwards: a write through it commits.
	c.MustCLI(d2, "", "-A", "-t", "10.0.0.3:80", "-s", "rr")
}

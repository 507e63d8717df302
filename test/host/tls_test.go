package host

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// TestForeignCertificateNeverJoins: three
// directors in namespaces run TLS (the harness gives every node on a
// non-loopback address a certificate of the cluster's CA) and replicate,
// writes forwarded by a follower included. A fourth with the right token
// but a certificate from another CA (`ipvsman tls init --dir other`) and
// --join is never admitted: its log shows the refused handshake, `cluster
// status` lists three members, and it applies nothing. The token alone
// does not add a member either (403), and a director without TLS flags on
// its 10.x address refuses to start.
func TestForeignCertificateNeverJoins(t *testing.T) {
	tp := topo.Build(t, topo.Options{Prefix: "tl-", Directors: 4, NoIPv6: true})
	c := harness.NewCluster(t)
	noRaces(t, c)
	nodes := harness.DirectorNodes(c, tp, 4, "off", "--gossip-profile", gossipProfile())
	nodes[0].Start("--bootstrap")
	nodes[1].Start("--join", nodes[0].APIAddr)
	nodes[2].Start("--join", nodes[0].APIAddr)
	ids := nodeIDs(nodes[:3])
	waitSettled(t, c, nodes[0], 60*time.Second, ids...)
	if c.TLSDir == "" {
		t.Fatal("the harness did not give the namespaced cluster TLS")
	}
	for _, n := range nodes[:3] {
		if !strings.Contains(n.Log(), `"tls":true`) {
			t.Errorf("%s did not start with TLS", n.ID)
		}
	}
	// Through a follower: forwarded to the leader with d2's certificate.
	c.MustCLI(nodes[1], "", "-A", "-t", "10.0.0.1:80", "-s", "rr")
	harness.Eventually(t, 20*time.Second, "the write applied on every member", func() (bool, string) {
		for _, n := range nodes[:3] {
			if out := c.MustCLI(n, "", "-L", "-n"); !strings.Contains(out, "10.0.0.1:80") {
				return false, n.ID + ": " + out
			}
		}
		return true, ""
	})
	v, err := clusterView(c, nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	applied, _ := v.applied(nodes[0].ID)
	// Plain http to the API gets nothing.
	args := c.Curl(nodes[0], "/v1/status", true, "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}")
	args[len(args)-1] = "http://" + nodes[0].APIAddr + "/v1/status"
	if out, _ := tp.Exec(topo.Client, args[0], args[1:]...); out == "200" {
		t.Errorf("plain http to d1's API answered 200")
	}

	// d4: the right token, the wrong CA.
	x := nodes[3]
	other := filepath.Join(c.Dir, "other")
	out := c.TLSInit(other, x.ID+"="+topo.DirectorAddr(4))
	t.Logf("ipvsman tls init --dir other:\n%s", out)
	x.CertFile, x.KeyFile, x.CAFile = filepath.Join(other, x.ID+".pem"), filepath.Join(other, x.ID+"-key.pem"), filepath.Join(other, "ca.pem")
	x.Start("--join", nodes[0].APIAddr)
	harness.Eventually(t, 20*time.Second, "d4's log shows the refused join", func() (bool, string) {
		l := x.Log()
		return strings.Contains(l, "join failed, retrying") && strings.Contains(l, "certificate"), lastLine(l)
	})
	harness.Eventually(t, 10*time.Second, "d1's log shows the refused handshake", func() (bool, string) {
		return strings.Contains(nodes[0].Log(), "TLS handshake error from "+topo.DirectorAddr(4)), "not yet"
	})
	// Proof of absence needs attempts: several of d4's joins, retried
	// with backoff, refused in the handshake.
	harness.Eventually(t, 30*time.Second, "five of d4's handshakes refused by d1", func() (bool, string) {
		n := strings.Count(nodes[0].Log(), "TLS handshake error from "+topo.DirectorAddr(4))
		return n >= 5, fmt.Sprintf("%d refused", n)
	})
	v, err = clusterView(c, nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := v.raftMembers(); len(got) != 3 {
		t.Errorf("members after d4 tried to join: %s; want d1-d3 only", v.summary())
	}
	if _, ok := v.member(x.ID); ok {
		t.Errorf("d4 is listed: %s", v.summary())
	}
	// d4's own view, read with its own CA: it applied nothing.
	xc := *c
	xc.TLSDir = other
	args = xc.Curl(x, "/v1/status", true, "-sSf", "--max-time", "10")
	raw := tp.MustExec(topo.Client, args[0], args[1:]...)
	var st struct {
		State   string `json:"state"`
		Applied uint64 `json:"applied_index"`
		Leader  string `json:"leader_id"`
	}
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatalf("d4 status %q: %v", raw, err)
	}
	t.Logf("d4: state %s, applied %d (the cluster had applied %d); d1's refusals: %d", st.State, st.Applied, applied, strings.Count(nodes[0].Log(), "TLS handshake error"))
	if st.Applied != 0 || st.Leader != "" {
		t.Errorf("d4 applied %d entries, knows leader %q: it must get nothing of the log", st.Applied, st.Leader)
	}

	// The token without a node certificate cannot add a member either.
	body := fmt.Sprintf(`{"id":"d4","raft_addr":"%s:7000","api_addr":"%s:7080"}`, topo.DirectorAddr(4), topo.DirectorAddr(4))
	args = c.Curl(nodes[0], "/v1/cluster/join", true, "-sS", "--max-time", "10", "-X", "POST", "-d", body)
	if raw := tp.MustExec(topo.Client, args[0], args[1:]...); !strings.Contains(raw, `"kind":"forbidden"`) {
		t.Errorf("POST /v1/cluster/join with the admin token and no certificate: %s; want 403 forbidden", raw)
	}

	// Without TLS flags on a 10.x address ipvsmand refuses to start.
	x.Kill()
	x.Plain = true
	x.Start()
	if err := x.Wait(20 * time.Second); err == nil {
		t.Error("d4 without TLS flags on a non-loopback address started")
	}
	if l := x.Log(); !strings.Contains(l, `--raft-addr "`+topo.DirectorAddr(4)+`:7000" is not a loopback address: give --tls-cert, --tls-key and --tls-ca`) {
		t.Errorf("d4's refusal does not name the flags: %s", lastLine(l))
	}
}

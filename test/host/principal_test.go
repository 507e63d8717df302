package host

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
)

// rawWrite sends one POST to node's API as a client other than the CLI
// would, with the cluster token and the headers hdr (name, value, ...),
// and returns the status and the body.
func rawWrite(t *testing.T, c *harness.Cluster, n *harness.Node, path, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.BaseURL(n)+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token())
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST %s via %s: %v", path, n.ID, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// addService is the body of an ops write that adds service 10.9.0.N:80.
func addService(n int) string {
	return fmt.Sprintf(`{"ops":[{"kind":"add-service","service":{"key":{"protocol":"tcp","address":"10.9.0.%d","port":80},"scheduler":"rr"}}]}`, n)
}

// newestEntry is the newest history item, read with the CLI through via.
func newestEntry(t *testing.T, c *harness.Cluster, via *harness.Node) api.HistoryItem {
	t.Helper()
	var items []api.HistoryItem
	if err := json.Unmarshal([]byte(c.MustCLI(via, "", "history", "--json")), &items); err != nil || len(items) == 0 {
		t.Fatalf("history --json via %s: %v (%d items)", via.ID, err, len(items))
	}
	return items[len(items)-1]
}

// TestHistoryRecordsThePrincipalBesideTheClaim: three loopback directors.
// A client that names itself alice@prod-admin, through a follower (the
// write forwarded) or at the leader posing as a forwarding node, is
// recorded as what authenticated it, the cluster token, with alice as
// claimed; the CLI's own writes the same way.
func TestHistoryRecordsThePrincipalBesideTheClaim(t *testing.T) {
	c := harness.NewCluster(t)
	nodes := []*harness.Node{c.Add("n1"), c.Add("n2"), c.Add("n3")}
	nodes[0].Start("--bootstrap")
	nodes[1].Start("--join", nodes[0].APIAddr)
	nodes[2].Start("--join", nodes[0].APIAddr)
	waitSettled(t, c, nodes[0], 60*time.Second, nodeIDs(nodes)...)
	lead := leader(t, c, nodes...)
	fol := others(nodes, lead)[0]

	const want = "admin-token (claimed alice@prod-admin)"
	for i, tc := range []struct {
		name string
		via  *harness.Node
		hdr  []string
	}{
		{"through a follower", fol, []string{api.HeaderActor, "alice@prod-admin"}},
		{"at the leader, posing as a forwarding node", lead, []string{api.HeaderActor, "alice@prod-admin", api.HeaderForwarded, fol.ID, api.HeaderPrincipal, "node-cert:" + fol.ID}},
		// A follower used to answer a forwarded header with "no longer the
		// leader": from a client it now counts for nothing.
		{"through a follower, posing as a forwarding node", fol, []string{api.HeaderActor, "alice@prod-admin", api.HeaderForwarded, lead.ID, api.HeaderPrincipal, "node-key"}},
	} {
		if code, body := rawWrite(t, c, tc.via, "/v1/ops", addService(i+1), tc.hdr...); code != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.name, code, body)
		}
		if h := newestEntry(t, c, lead); h.Actor != want || h.Principal != "admin-token" || h.Claimed != "alice@prod-admin" {
			t.Errorf("%s: history records %q (principal %q, claimed %q), want %q", tc.name, h.Actor, h.Principal, h.Claimed, want)
		}
	}
	c.MustCLI(fol, "", "-A", "-t", "10.9.0.10:80", "-s", "rr")
	if h := newestEntry(t, c, fol); !strings.HasPrefix(h.Actor, "admin-token (claimed ") || !strings.Contains(h.Claimed, "@") {
		t.Errorf("a CLI write through a follower: history records %q (claimed %q), want admin-token with the CLI's user@host as claimed", h.Actor, h.Claimed)
	}
}

// rawGet is GET path on node's API with the cluster token.
func rawGet(t *testing.T, c *harness.Cluster, n *harness.Node, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.BaseURL(n)+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token())
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s via %s: %v", path, n.ID, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestForwardedHeaderFromAClientDoesNotSkipTheWriteLimit: on a loopback
// director every client and every member share 127.0.0.1, so a client
// that added X-Ipvsman-Forwarded used to pass for a forwarding member and
// skip the write limit. Now it is limited like one without the header.
func TestForwardedHeaderFromAClientDoesNotSkipTheWriteLimit(t *testing.T) {
	const rate, burst, sent = 1, 10, 40
	c := harness.NewCluster(t)
	n := c.Add("n1", "--max-writes-per-second", fmt.Sprint(rate), "--write-burst", fmt.Sprint(burst))
	n.Start("--bootstrap")
	leader(t, c, n)
	round := func(name string, hdr ...string) (accepted, limited int) {
		start := time.Now()
		for range sent {
			code, body := rawWrite(t, c, n, "/v1/zero", `{}`, hdr...)
			switch code {
			case http.StatusOK:
				accepted++
			case http.StatusTooManyRequests:
				limited++
			default:
				t.Fatalf("%s: POST /v1/zero: %d %s", name, code, body)
			}
		}
		took := time.Since(start)
		t.Logf("%s: %d of %d accepted, %d x 429, in %s", name, accepted, sent, limited, took.Round(time.Millisecond))
		// The bucket holds at most the burst and refills at the rate.
		if most := burst + int(took.Seconds()*rate) + 1; accepted > most {
			t.Errorf("%s: %d of %d writes accepted, want at most %d (burst %d, %d/s over %s)", name, accepted, sent, most, burst, rate, took.Round(time.Millisecond))
		}
		return accepted, limited
	}
	// The client's own round first: it empties the bucket the second
	// round, with the header, would have skipped.
	round("without X-Ipvsman-Forwarded")
	if _, limited := round("with X-Ipvsman-Forwarded", api.HeaderForwarded, "n2"); limited == 0 {
		t.Errorf("with X-Ipvsman-Forwarded: no write refused (429): the header skipped the limit")
	}
}

// TestHistoryPrintsAClientsTextEscaped: a claim with a bidi override, an
// 8-bit CSI and a byte that is not UTF-8 (Go's server refuses control
// bytes in a header, not these), and a reason with terminal sequences (a
// write's body may hold anything), are printed by `ipvsman history`
// escaped, in the recorded actor and the summary.
func TestHistoryPrintsAClientsTextEscaped(t *testing.T) {
	c := harness.NewCluster(t)
	n := c.Add("n1")
	n.Start("--bootstrap")
	leader(t, c, n)
	claim := "mallory\u202egnp.exe\u009b2J\xff"
	reason := "apply \x1b]0;owned\x07\x1b[2Jclean.yaml"
	var current api.ConfigResponse
	code, body := rawGet(t, c, n, "/v1/config")
	if err := json.Unmarshal([]byte(body), &current); code != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/config: %d %v", code, err)
	}
	key := fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.9.0.11"), Port: 80}
	current.Config.Services[key.String()] = &fsm.Service{Key: key, Scheduler: "rr"} // so that the write makes a version
	next, err := json.Marshal(api.ApplyRequest{Config: current.Config, Reason: reason})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := rawWrite(t, c, n, "/v1/config", string(next), api.HeaderActor, claim); code != http.StatusOK {
		t.Fatalf("whole-topology write with a hostile reason: %d %s", code, body)
	}
	out := c.MustCLI(n, "", "history")
	for _, bad := range []string{"\x1b", "\a", "\u202e", "\u009b", "\ufffd", "\xff"} {
		if strings.Contains(out, bad) {
			t.Errorf("ipvsman history prints %q unescaped:\n%q", bad, out)
		}
	}
	for _, want := range []string{`admin-token (claimed mallory\u202egnp.exe\u009b2J\xff)`, `apply \x1b]0;owned\a\x1b[2Jclean.yaml`} {
		if !strings.Contains(out, want) {
			t.Errorf("ipvsman history lacks %s:\n%s", want, out)
		}
	}
}

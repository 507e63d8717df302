package host

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
)

// TestHealthVerdictsOnLoopback: the leader checks two real servers over
// HTTP (real local servers); one starts answering 503 and is down, its
// verdict replicated to every node (weight 0 in the effective table
// everywhere); the leader is killed during the outage and the new leader
// keeps the verdict without flapping; the server recovers and is up.
func TestHealthVerdictsOnLoopback(t *testing.T) {
	var failing atomic.Bool
	srv := func(name string, fail *atomic.Bool) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if fail != nil && fail.Load() {
				http.Error(w, "maintenance", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, name)
		}))
	}
	a, b := srv("a", nil), srv("b", &failing)
	defer a.Close()
	defer b.Close()
	port := func(s *httptest.Server) string { _, p, _ := net.SplitHostPort(s.Listener.Addr().String()); return p }
	topo := fmt.Sprintf(`services:
  - protocol: tcp
    address: 192.0.2.1
    port: 80
    scheduler: rr
    forward: masq
    check: {type: http, path: /health, interval: 200ms, timeout: 100ms, rise: 2, fall: 2, status: [200]}
    servers:
      - {address: 127.0.0.1, port: %s}
      - {address: 127.0.0.1, port: %s}
`, port(a), port(b))
	file := filepath.Join(t.TempDir(), "web.yaml")
	if err := os.WriteFile(file, []byte(topo), 0o600); err != nil {
		t.Fatal(err)
	}
	bKey := "127.0.0.1:" + port(b)

	c := harness.NewCluster(t)
	n1, n2, n3 := c.Add("n1"), c.Add("n2"), c.Add("n3")
	nodes := []*harness.Node{n1, n2, n3}
	n1.Start("--bootstrap")
	n2.Start("--join", n1.APIAddr)
	n3.Start("--join", n1.APIAddr)
	c.Voters(t, n1, nodes...)
	lead := leader(t, c, nodes...)
	c.MustCLI(n2, "", "apply", "-f", file)

	healthOf := func(via *harness.Node) string { return c.MustCLI(via, "", "health") }
	serverLine := func(out string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, bKey) {
				return l
			}
		}
		return ""
	}
	harness.Eventually(t, 20*time.Second, "both up", func() (bool, string) {
		out := healthOf(n3)
		return strings.Count(out, " up ") == 2, out
	})
	weight := func(via *harness.Node) string {
		for _, l := range strings.Split(c.MustCLI(via, "", "-L", "-n"), "\n") {
			if f := strings.Fields(l); len(f) >= 4 && f[1] == bKey {
				return f[3]
			}
		}
		return ""
	}

	failing.Store(true)
	harness.Eventually(t, 20*time.Second, "b down on every node", func() (bool, string) {
		for _, n := range nodes {
			if w := weight(n); w != "0" {
				return false, n.ID + " weight " + w
			}
		}
		return true, ""
	})
	if l := serverLine(healthOf(n1)); !strings.Contains(l, "down") || !strings.Contains(l, "HTTP 503") {
		t.Errorf("health line of b: %q", l)
	}
	if l := serverLine(c.MustCLI(n3, "", "-L", "-n", "--health")); !strings.Contains(l, " 0 ") || !strings.Contains(l, "down  fail:HTTP_503") {
		t.Errorf("-L -n --health line of b: %q", l)
	}

	lead.Kill()
	var rest []*harness.Node
	for _, n := range nodes {
		if n != lead {
			rest = append(rest, n)
		}
	}
	next := leader(t, c, rest...)
	harness.Eventually(t, 20*time.Second, "the new leader checked b five times", func() (bool, string) {
		l := serverLine(healthOf(next))
		f := strings.Fields(l)
		return len(f) >= 8 && f[4] == "down" && f[len(f)-2] >= "5" && len(f[len(f)-2]) >= 1 && f[len(f)-2] != "0", l
	})
	for _, n := range rest {
		if w := weight(n); w != "0" {
			t.Errorf("after the failover b has weight %q through %s", w, n.ID)
		}
		if strings.Contains(n.Log(), `"health":"up"`) && strings.Contains(n.Log(), bKey) && strings.Contains(n.Log(), `"msg":"health transition","service":"tcp:192.0.2.1:80","server":"`+bKey+`","health":"up"`) {
			t.Errorf("%s flapped b up", n.ID)
		}
	}

	failing.Store(false)
	harness.Eventually(t, 20*time.Second, "b up again", func() (bool, string) {
		for _, n := range rest {
			if w := weight(n); w != "1" {
				return false, n.ID + " weight " + w
			}
		}
		return true, ""
	})
}

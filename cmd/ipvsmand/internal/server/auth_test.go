package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
)

const (
	adminToken = "admin-token-0123456789"
	readToken  = "read-only-token-0123456789"
)

// leaderAPI is the API of a single bootstrapped node that leads.
func leaderAPI(t *testing.T) (*httptest.Server, *cluster.Node) {
	t.Helper()
	return leaderAPIWith(t, Limits{})
}

func leaderAPIWith(t *testing.T, limits Limits) (*httptest.Server, *cluster.Node) {
	t.Helper()
	n, err := cluster.Open(cluster.Config{
		NodeID: "a1", DataDir: t.TempDir(), RaftAddr: harness.FreeAddr(t), APIAddr: "127.0.0.1:1", Bootstrap: true,
		Logger: slog.New(slog.DiscardHandler), Fatal: func(err error) { t.Errorf("fatal: %v", err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	harness.Eventually(t, 10*time.Second, "the single node leads", func() (bool, string) { return n.IsLeader(), "not leader" })
	srv := httptest.NewServer((&Server{Node: n, Token: adminToken, ReadToken: readToken, Limits: limits, IPVS: "off", Log: slog.New(slog.DiscardHandler)}).Handler())
	t.Cleanup(srv.Close)
	return srv, n
}

// writeRoutes is every route that changes something, with a body that the
// admin token gets past authorization with.
var writeRoutes = []struct{ path, body string }{
	{"/v1/ops", `{"ops":[{"kind":"add-service","service":{"key":{"protocol":"tcp","address":"10.0.0.1","port":80},"scheduler":"rr"}}]}`},
	{"/v1/config", `{"config":{"services":{},"vips":{}}}`},
	{"/v1/rollback", `{"version":1}`},
	{"/v1/zero", `{}`},
	{"/v1/cluster/join", `{"id":"x"}`},
	{"/v1/cluster/leave", `{"id":"x"}`},
	{"/v1/cluster/transfer", `{}`},
	{"/v1/cluster/join-via", `{"member":"127.0.0.1:1"}`},
	{"/v1/node/drain", `{}`},
	{"/v1/commands/note", `{}`},
}

// send makes one request to base with token ("" for none) and headers
// hdr (name, value, ...), and returns the status and the body.
func send(t *testing.T, base, method, path, token, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b.String()
}

func call(t *testing.T, srv *httptest.Server, method, path, token, body string) (int, string) {
	t.Helper()
	return send(t, srv.URL, method, path, token, body)
}

var readRoutes = []string{"/v1/status", "/v1/cluster/status", "/v1/config", "/v1/history", "/v1/health"}

// TestRolesRefuseWrites: without a token nothing answers; the read-only
// token reads everything and is refused every write, which changes nothing.
func TestRolesRefuseWrites(t *testing.T) {
	srv, n := leaderAPI(t)
	version := func() uint64 {
		var v uint64
		n.View(func(st *fsm.State, _ uint64) { v = st.Version })
		return v
	}
	before := version()
	for _, tok := range []string{"", "wrong-token-0123456789"} {
		for _, p := range readRoutes {
			if code, body := call(t, srv, http.MethodGet, p, tok, ""); code != http.StatusUnauthorized {
				t.Errorf("GET %s with token %q: %d %s, want 401", p, tok, code, body)
			}
		}
		for _, r := range writeRoutes {
			if code, body := call(t, srv, http.MethodPost, r.path, tok, r.body); code != http.StatusUnauthorized {
				t.Errorf("POST %s with token %q: %d %s, want 401", r.path, tok, code, body)
			}
		}
	}
	for _, p := range readRoutes {
		if code, body := call(t, srv, http.MethodGet, p, readToken, ""); code != http.StatusOK {
			t.Errorf("GET %s with the read-only token: %d %s", p, code, body)
		}
	}
	for _, r := range writeRoutes {
		code, body := call(t, srv, http.MethodPost, r.path, readToken, r.body)
		if code != http.StatusForbidden || !strings.Contains(body, `"kind":"forbidden"`) || !strings.Contains(body, "read-only token may not change anything") {
			t.Errorf("POST %s with the read-only token: %d %s, want 403 forbidden", r.path, code, body)
		}
	}
	if v := version(); v != before {
		t.Fatalf("refused writes changed the configuration: version %d -> %d", before, v)
	}

	// The client shows the refusal; the admin token writes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	op := fsm.Op{Kind: fsm.OpAddService, Service: &fsm.Service{Key: fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80}, Scheduler: "rr"}}
	_, err := (&api.Client{Base: srv.Listener.Addr().String(), Token: readToken}).Ops(ctx, []fsm.Op{op})
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusForbidden || apiErr.Kind != "forbidden" {
		t.Fatalf("client with the read-only token: %v", err)
	}
	if _, err := (&api.Client{Base: srv.Listener.Addr().String(), Token: adminToken}).Ops(ctx, []fsm.Op{op}); err != nil {
		t.Fatalf("client with the admin token: %v", err)
	}
	if v := version(); v != before+1 {
		t.Fatalf("admin write: version %d -> %d", before, v)
	}
}

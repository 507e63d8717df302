package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
)

// postWith sends a write with the admin token and extra headers.
func postWith(t *testing.T, base, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	var pairs []string
	for k, v := range hdr {
		pairs = append(pairs, k, v)
	}
	return send(t, base, http.MethodPost, path, adminToken, body, pairs...)
}

const addService80 = `{"ops":[{"kind":"add-service","service":{"key":{"protocol":"tcp","address":"10.0.0.1","port":80},"scheduler":"rr"}}]}`

// A retry of a committed write (the same request ID) is answered with the
// first outcome and applies nothing again. Before request IDs, a retry
// after a lost answer was proposed again and refused "already exists",
// so the operator was told a committed add had failed.
func TestRetryOfACommittedWriteGetsItsFirstOutcome(t *testing.T) {
	srv, n := leaderAPI(t)
	hdr := map[string]string{api.HeaderRequest: "retry-1"}
	code, first := postWith(t, srv.URL, "/v1/ops", addService80, hdr)
	if code != http.StatusOK {
		t.Fatalf("first try: %d %s", code, first)
	}
	code, again := postWith(t, srv.URL, "/v1/ops", addService80, hdr)
	if code != http.StatusOK {
		t.Fatalf("retry with the same request ID: %d %s, want 200 with the first outcome", code, again)
	}
	var a, b api.WriteResponse
	if err := json.Unmarshal([]byte(first), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(again), &b); err != nil {
		t.Fatal(err)
	}
	if !b.Result.Duplicate || b.Result.Version != a.Result.Version || b.Result.Request != "retry-1" {
		t.Fatalf("retry answered %+v, want the first outcome %+v marked duplicate", b.Result, a.Result)
	}
	var versions []uint64
	var requests []string
	n.View(func(st *fsm.State, _ uint64) {
		for _, h := range st.History {
			versions = append(versions, h.Version)
			requests = append(requests, h.Request)
		}
	})
	if len(versions) != 1 || requests[0] != "retry-1" {
		t.Fatalf("history %v with requests %q, want one version made by request retry-1", versions, requests)
	}
	// Another request ID is another write: refused, as it should be.
	if code, body := postWith(t, srv.URL, "/v1/ops", addService80, map[string]string{api.HeaderRequest: "retry-2"}); code != http.StatusBadRequest || !strings.Contains(body, "already exists") {
		t.Fatalf("a new request adding the same service: %d %s, want 400 already exists", code, body)
	}
}

// A write whose result has no services, where there are some, is refused
// unless the client allows it: an empty file or an import that converted
// nothing once removed every service and reported success.
func TestWritesThatEmptyTheTableNeedAllowEmpty(t *testing.T) {
	srv, n := leaderAPI(t)
	if code, body := postWith(t, srv.URL, "/v1/ops", addService80, nil); code != http.StatusOK {
		t.Fatalf("add: %d %s", code, body)
	}
	services := func() (k int) {
		n.View(func(st *fsm.State, _ uint64) { k = len(st.Config.Services) })
		return k
	}
	for _, w := range []struct{ path, body string }{
		{"/v1/config", `{"config":{"services":{},"vips":{}},"reason":"apply /dev/null"}`},
		{"/v1/ops", `{"ops":[{"kind":"clear"}]}`},
	} {
		code, body := postWith(t, srv.URL, w.path, w.body, nil)
		if code != http.StatusBadRequest || !strings.Contains(body, "would remove all 1 services") || !strings.Contains(body, "--allow-empty") {
			t.Errorf("POST %s %s: %d %s, want 400 naming the removal and --allow-empty", w.path, w.body, code, body)
		}
		if k := services(); k != 1 {
			t.Fatalf("a refused write changed the table: %d services", k)
		}
	}
	code, body := postWith(t, srv.URL, "/v1/config", `{"config":{"services":{},"vips":{}},"allow_empty":true}`, nil)
	if code != http.StatusOK || !strings.Contains(body, `"services_removed":1`) {
		t.Fatalf("with allow_empty: %d %s, want 200 with the removal counted", code, body)
	}
	if k := services(); k != 0 {
		t.Fatalf("allowed emptying left %d services", k)
	}
}

// twoNodes is a leader a1 and a follower a2, each with its API; the
// leader's API answers only after delay, like a leader busy committing a
// large write.
func twoNodes(t *testing.T, delay time.Duration, followerWait time.Duration) (leader *cluster.Node, followerURL string) {
	t.Helper()
	open := func(id, raftAddr string, api net.Listener, boot bool) *cluster.Node {
		n, err := cluster.Open(cluster.Config{
			NodeID: id, DataDir: t.TempDir(), RaftAddr: raftAddr, APIAddr: api.Addr().String(), Bootstrap: boot,
			// Gossip tells the leader the follower's protocol, which
			// carries request IDs into the log.
			Gossip: cluster.GossipConfig{Addr: harness.FreeAddr(t), Key: cluster.GossipKey(adminToken), Profile: "local"},
			Logger: slog.New(slog.DiscardHandler), Fatal: func(err error) { t.Errorf("fatal: %v", err) },
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Shutdown(context.Background()) })
		return n
	}
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	l1, l2 := listen(), listen()
	a1 := open("a1", harness.FreeAddr(t), l1, true)
	harness.Eventually(t, 10*time.Second, "a1 leads", func() (bool, string) { return a1.IsLeader(), "not leader" })
	r2 := harness.FreeAddr(t)
	a2 := open("a2", r2, l2, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a1.AddMember(ctx, fsm.Member{ID: "a2", RaftAddr: r2, APIAddr: l2.Addr().String()}, "test"); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, "a2 knows the leader's API", func() (bool, string) {
		_, api, err := a2.LeaderAPI()
		return err == nil && api != "", "no leader API"
	})
	harness.Eventually(t, 20*time.Second, "the leader sees every member speak the request protocol", func() (bool, string) {
		p, low := a1.MinProtocol()
		return p >= fsm.RequestProtocol, fmt.Sprintf("protocol %d: %+v", p, low)
	})
	h1 := (&Server{Node: a1, Token: adminToken, IPVS: "off", Log: slog.New(slog.DiscardHandler)}).Handler()
	s1 := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		h1.ServeHTTP(w, r)
	}))
	s1.Listener.Close()
	s1.Listener = l1
	s1.Start()
	t.Cleanup(s1.Close)
	s2 := httptest.NewUnstartedServer((&Server{Node: a2, Token: adminToken, IPVS: "off", Log: slog.New(slog.DiscardHandler), WaitLeader: followerWait}).Handler())
	s2.Listener.Close()
	s2.Listener = l2
	s2.Start()
	t.Cleanup(s2.Close)
	return a1, s2.URL
}

// A follower passing a write on honours the client's deadline, and a write
// that reached the leader is never reported as failed: before, the
// follower gave up after a fixed wait ("no leader accepted the request")
// while the leader went on to commit it.
func TestForwardedWriteIsNeverReportedFailedWhenItMayCommit(t *testing.T) {
	leader, follower := twoNodes(t, 600*time.Millisecond, 200*time.Millisecond)
	committed := func(id string) bool {
		found := false
		leader.View(func(st *fsm.State, _ uint64) {
			for _, h := range st.History {
				found = found || h.Request == id
			}
		})
		return found
	}

	// The client waits 10 s: the follower waits for the busy leader too.
	code, body := postWith(t, follower, "/v1/ops", addService80, map[string]string{api.HeaderRequest: "slow-1", api.HeaderTimeout: "10000"})
	if code != http.StatusOK || !committed("slow-1") {
		t.Fatalf("write through the follower with a 10 s deadline: %d %s (committed: %v), want 200", code, body, committed("slow-1"))
	}

	// The client waits less than the leader takes: the answer may not say
	// the write failed, since the leader goes on and commits it.
	code, body = postWith(t, follower, "/v1/ops", `{"ops":[{"kind":"add-service","service":{"key":{"protocol":"tcp","address":"10.0.0.1","port":81},"scheduler":"rr"}}]}`,
		map[string]string{api.HeaderRequest: "slow-2", api.HeaderTimeout: "300"})
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"kind":"`+api.KindOutcomeUnknown+`"`) || !strings.Contains(body, "request slow-2") {
		t.Fatalf("write through the follower past its deadline: %d %s, want 503 %s naming the request", code, body, api.KindOutcomeUnknown)
	}
	harness.Eventually(t, 10*time.Second, "the unknown write commits on the leader", func() (bool, string) {
		return committed("slow-2"), "not in history"
	})
}

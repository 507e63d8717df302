package server

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
)

// addOps adds service 10.0.0.N:80.
// post sends a write with headers hdr (name, value, ...).
func post(t *testing.T, srv *httptest.Server, path, token, body string, hdr ...string) (int, string) {
	t.Helper()
	return send(t, srv.URL, http.MethodPost, path, token, body, hdr...)
}

func addOps(n int) string {
	return fmt.Sprintf(`{"ops":[{"kind":"add-service","service":{"key":{"protocol":"tcp","address":"10.0.0.%d","port":80},"scheduler":"rr"}}]}`, n)
}

// lastHistory is the newest history item srv serves.
func lastHistory(t *testing.T, srv *httptest.Server) api.HistoryItem {
	t.Helper()
	code, body := call(t, srv, http.MethodGet, "/v1/history", adminToken, "")
	var items []api.HistoryItem
	if err := json.Unmarshal([]byte(body), &items); code != http.StatusOK || err != nil || len(items) == 0 {
		t.Fatalf("GET /v1/history: %d %v %s", code, err, body)
	}
	return items[len(items)-1]
}

// TestHistoryRecordsThePrincipalBesideTheClaim: on a plain cluster the
// history records the token that authenticated a write and, marked as
// claimed, the actor the client named; the principal a request passes on
// counts only with the node key.
func TestHistoryRecordsThePrincipalBesideTheClaim(t *testing.T) {
	srv, _ := leaderAPI(t)
	for i, tc := range []struct {
		name            string
		hdr             []string
		actor           string
		principal, with string
	}{
		{"a client", []string{api.HeaderActor, "alice@prod-admin"}, "admin-token (claimed alice@prod-admin)", "admin-token", "alice@prod-admin"},
		{"a client that names no one", nil, "admin-token", "admin-token", ""},
		{"a client posing as a forwarding node", []string{api.HeaderActor, "alice@prod-admin", api.HeaderForwarded, "a2", api.HeaderPrincipal, "node-cert:a2"},
			"admin-token (claimed alice@prod-admin)", "admin-token", "alice@prod-admin"},
		{"a client with a wrong node key", []string{api.HeaderActor, "bob", api.HeaderNodeKey, NodeKey("another-token-0123456789"), api.HeaderPrincipal, "read-token"},
			"admin-token (claimed bob)", "admin-token", "bob"},
		{"a node for itself", []string{api.HeaderActor, "ipvsmand@a4", api.HeaderNodeKey, NodeKey(adminToken)}, "node-key (claimed ipvsmand@a4)", "node-key", "ipvsmand@a4"},
		{"a node passing on its client's principal", []string{api.HeaderActor, "carol@ops", api.HeaderNodeKey, NodeKey(adminToken), api.HeaderForwarded, "a2", api.HeaderPrincipal, "node-cert:a7"},
			"node-cert:a7 (claimed carol@ops)", "node-cert:a7", "carol@ops"},
		{"a claim with a bidi override and a byte that is not UTF-8", []string{api.HeaderActor, "mallory\u202egnp.exe\xff"}, `admin-token (claimed mallory\u202egnp.exe\xff)`, "admin-token", `mallory\u202egnp.exe\xff`},
	} {
		if code, body := post(t, srv, "/v1/ops", adminToken, addOps(i+1), tc.hdr...); code != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.name, code, body)
		}
		h := lastHistory(t, srv)
		if h.Actor != tc.actor || h.Principal != tc.principal || h.Claimed != tc.with {
			t.Errorf("%s: recorded actor %q (principal %q, claimed %q), want %q", tc.name, h.Actor, h.Principal, h.Claimed, tc.actor)
		}
	}

	// A node's principal that is none, and a claim too long to be a name,
	// are refused, naming the header and the value.
	code, body := post(t, srv, "/v1/ops", adminToken, addOps(50), api.HeaderNodeKey, NodeKey(adminToken), api.HeaderPrincipal, "root")
	if code != http.StatusBadRequest || !strings.Contains(body, `header X-Ipvsman-Principal: principal \"root\": want admin-token`) {
		t.Errorf("a node passing a principal that is none: %d %s", code, body)
	}
	code, body = post(t, srv, "/v1/ops", adminToken, addOps(51), api.HeaderActor, strings.Repeat("a", fsm.MaxClaim+1))
	if code != http.StatusBadRequest || !strings.Contains(body, "header X-Ipvsman-Actor") || !strings.Contains(body, "257 bytes, want at most 256") {
		t.Errorf("a claim of %d bytes: %d %s", fsm.MaxClaim+1, code, body)
	}
}

// TestForwardedHeaderSkipsTheLimitOnlyFromANode: a client that adds the
// forwarded header is limited like any other; a node's forwarded write
// (the node key on a plain cluster) was counted where it came in.
func TestForwardedHeaderSkipsTheLimitOnlyFromANode(t *testing.T) {
	srv, _ := leaderAPIWith(t, Limits{WritesPerSecond: 0.001, WriteBurst: 2})
	count := func(n int, hdr ...string) (passed, limited int) {
		for range n {
			code, _ := post(t, srv, "/v1/zero", adminToken, `{}`, hdr...)
			if code == http.StatusTooManyRequests {
				limited++
			} else {
				passed++
			}
		}
		return
	}
	if passed, limited := count(6, api.HeaderForwarded, "a2"); passed != 2 || limited != 4 {
		t.Errorf("a client with the forwarded header: %d passed, %d refused (429); want the burst of 2 and 4 refused", passed, limited)
	}
	if passed, limited := count(4, api.HeaderForwarded, "a2", api.HeaderNodeKey, NodeKey(adminToken)); passed != 4 {
		t.Errorf("a node's forwarded writes: %d passed, %d refused (429); want all 4 passed", passed, limited)
	}
}

// TestNodeCertificateIsThePrincipal: in a TLS cluster a node is its
// verified certificate, named after the node ID it is bound to; the node key, which
// a holder of the cluster token could derive, makes no one a node there.
func TestNodeCertificateIsThePrincipal(t *testing.T) {
	ca := newNodeTLS(t, "cluster")
	srv := tlsLeaderAPI(t, ca.load("a1"))
	node := ca.load("a2").PeerClient()
	// A forwarder must be a member of the Raft configuration, and this
	// one-node cluster has only a1.
	member := ca.load("a1").PeerClient()
	operator := &tls.Config{RootCAs: ca.load("a3").CA, MinVersion: tls.VersionTLS13}
	for i, tc := range []struct {
		name  string
		cfg   *tls.Config
		hdr   []string
		actor string
	}{
		{"a node for itself", node, []string{api.HeaderActor, "ipvsmand@a2"}, "node-cert:a2 (claimed ipvsmand@a2)"},
		{"a node forwarding an operator's write", member, []string{api.HeaderActor, "alice@prod-admin", api.HeaderForwarded, "a1", api.HeaderPrincipal, "admin-token"}, "admin-token (claimed alice@prod-admin)"},
		{"an operator with the node key", operator, []string{api.HeaderActor, "mallory", api.HeaderNodeKey, NodeKey(adminToken), api.HeaderPrincipal, "node-cert:a1"}, "admin-token (claimed mallory)"},
	} {
		code, body, err := callTLS(t, srv, tc.cfg, "POST", "/v1/ops", adminToken, addOps(i+1), tc.hdr...)
		if err != nil || code != http.StatusOK {
			t.Fatalf("%s: %d %s %v", tc.name, code, body, err)
		}
		_, body, err = callTLS(t, srv, operator, "GET", "/v1/history", adminToken, "")
		var items []api.HistoryItem
		if err != nil || json.Unmarshal([]byte(body), &items) != nil || len(items) == 0 {
			t.Fatalf("history: %v %s", err, body)
		}
		if got := items[len(items)-1].Actor; got != tc.actor {
			t.Errorf("%s: recorded %q, want %q", tc.name, got, tc.actor)
		}
	}
}

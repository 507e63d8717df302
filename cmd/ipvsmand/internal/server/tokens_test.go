package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/test/harness"
)

const (
	tokA = "token-A-0123456789"
	tokB = "token-B-0123456789"
	tokC = "token-C-0123456789"
)

// TestRotationAcrossReloads: a changed token is accepted beside the
// previous one, which is what the node sends its peers, until a reload
// finds the token unchanged; a rotation begun again keeps the token the
// peers agreed on.
func TestRotationAcrossReloads(t *testing.T) {
	type want struct {
		accepts []string
		refuses []string
		send    string
	}
	r := Rotation{Current: tokA}
	for i, step := range []struct {
		read string
		want want
	}{
		{tokA, want{[]string{tokA}, []string{tokB, ""}, tokA}},            // unchanged
		{tokB, want{[]string{tokA, tokB}, []string{tokC, ""}, tokA}},      // first reload of a rotation
		{tokB, want{[]string{tokB}, []string{tokA}, tokB}},                // second: done
		{tokC, want{[]string{tokB, tokC}, []string{tokA}, tokB}},          // a new rotation
		{tokA, want{[]string{tokB, tokA}, []string{tokC}, tokB}},          // begun again before it ended: B stays
		{tokB, want{[]string{tokB}, []string{tokA, tokC}, tokB}},          // back to the agreed token
		{"", want{[]string{tokB}, []string{"", tokA}, tokB}},              // (read-only token removed: see below)
		{"", want{nil, []string{"", tokB}, ""}},                           // and gone at the next reload
		{tokC, want{[]string{tokC}, []string{"", tokB}, tokC}},            // none before: no previous
		{tokC, want{[]string{tokC}, []string{tokA, tokB, "", "x"}, tokC}}, // unchanged
	} {
		r = r.Next(step.read)
		for _, tok := range step.want.accepts {
			if !r.Accepts(tok) {
				t.Errorf("step %d (read %q): %+v does not accept %q", i, step.read, r, tok)
			}
		}
		for _, tok := range step.want.refuses {
			if r.Accepts(tok) {
				t.Errorf("step %d (read %q): %+v accepts %q", i, step.read, r, tok)
			}
		}
		if r.Send() != step.want.send {
			t.Errorf("step %d (read %q): %+v sends %q, want %q", i, step.read, r, r.Send(), step.want.send)
		}
	}
}

// TestTokensRefuseAReadTokenThatIsAnAdminOne: the read-only token may not
// be a cluster token still accepted, the previous one included; the
// refusal changes nothing. Forwarded requests carry this node's token of
// the caller's role.
func TestTokensRefuseAReadTokenThatIsAnAdminOne(t *testing.T) {
	tk := NewTokens(tokA, tokC)
	if _, _, err := tk.Rotate(tokB, tokA); err == nil {
		t.Fatal("read-only token = the previous cluster token: accepted")
	}
	if tk.Admin() != (Rotation{Current: tokA}) || tk.Read() != (Rotation{Current: tokC}) {
		t.Fatalf("a refused rotation changed the tokens: %+v %+v", tk.Admin(), tk.Read())
	}
	admin, read, err := tk.Rotate(tokB, tokC)
	if err != nil || admin != (Rotation{Current: tokB, Previous: tokA}) || read != (Rotation{Current: tokC}) {
		t.Fatalf("rotate: %+v %+v %v", admin, read, err)
	}
	if got := tk.forwardAs(tokB); got != tokA {
		t.Errorf("a request with the new cluster token is forwarded with %q, want the previous %q", got, tokA)
	}
	if got := tk.forwardAs(tokC); got != tokC {
		t.Errorf("a read-only request is forwarded with %q", got)
	}
	if tk.Send() != tokA {
		t.Errorf("peer calls send %q, want the previous token", tk.Send())
	}
}

// TestAPIAcceptsBothTokensDuringARotation: over HTTP, after the first
// reload both cluster tokens write; after the second, only the new one.
func TestAPIAcceptsBothTokensDuringARotation(t *testing.T) {
	n, err := cluster.Open(cluster.Config{
		NodeID: "a1", DataDir: t.TempDir(), RaftAddr: harness.FreeAddr(t), APIAddr: "127.0.0.1:1", Bootstrap: true,
		Logger: slog.New(slog.DiscardHandler), Fatal: func(err error) { t.Errorf("fatal: %v", err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	harness.Eventually(t, 10*time.Second, "the single node leads", func() (bool, string) { return n.IsLeader(), "not leader" })
	tk := NewTokens(tokA, "")
	srv := httptest.NewServer((&Server{Node: n, Tokens: tk, IPVS: "off", Log: slog.New(slog.DiscardHandler)}).Handler())
	t.Cleanup(srv.Close)
	status := func(tok string) int {
		code, _ := call(t, srv, http.MethodGet, "/v1/status", tok, "")
		return code
	}
	for _, step := range []struct {
		name     string
		token    string
		ok, gone []string
	}{
		{"start", tokA, []string{tokA}, []string{tokB}},
		{"first reload", tokB, []string{tokA, tokB}, nil},
		{"second reload", tokB, []string{tokB}, []string{tokA}},
	} {
		if _, _, err := tk.Rotate(step.token, ""); err != nil {
			t.Fatal(err)
		}
		for _, tok := range step.ok {
			if code := status(tok); code != http.StatusOK {
				t.Errorf("%s: %q got %d", step.name, tok, code)
			}
		}
		for _, tok := range step.gone {
			if code := status(tok); code != http.StatusUnauthorized {
				t.Errorf("%s: %q got %d, want 401", step.name, tok, code)
			}
		}
	}
}

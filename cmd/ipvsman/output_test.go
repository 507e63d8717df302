package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ipvsman/ipvsman/cluster/api"
)

// hostile is text a client or a backend could have put in the log: a
// terminal title and colour change (ESC, BEL), an 8-bit CSI, a bidi
// override and an isolate, a carriage return. (A byte that is not UTF-8
// does not survive the API's JSON, which makes it U+FFFD; printHistory's
// own test has one.)
const hostile = "x\x1b]0;pwned\x07\x1b[31m\u009b2J\u202etxt.exe\u2066\rover"

// hostileEscaped is hostile as the CLI prints it in a table cell.
const hostileEscaped = `x\x1b]0;pwned\a\x1b[31m\u009b2J\u202etxt.exe\u2066\rover`

// hostileAPI answers as a node whose log holds hostile text everywhere
// the CLI prints a string from it.
func hostileAPI(t *testing.T) *httptest.Server {
	t.Helper()
	history := []api.HistoryItem{{
		Version: 7, Time: 1, Actor: "admin-token (claimed " + hostile + ")", Request: "r-" + hostile,
		Summary: "add service tcp:10.0.0.1:80 " + hostile + "\nforged\t" + hostile,
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/history", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(history)
	})
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(api.HealthResponse{Checks: []api.CheckStatus{{Service: "tcp:10.0.0.1:80", Server: "10.3.0.10:80", Type: "http", Target: "10.3.0.10:80", Health: "down", At: time.Unix(1, 0), Detail: "body\n" + hostile}}})
	})
	mux.HandleFunc("POST /v1/ops", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(api.ErrorResponse{Kind: "rejected", Error: "service tcp:10.0.0.1:80: name " + hostile})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// cliRun runs the CLI's whole output path (run) against srv.
func cliRun(srv *httptest.Server, args ...string) (stdout, stderr string, status int) {
	var out, errb bytes.Buffer
	status = run(append([]string{"--api", srv.URL, "--token", "x"}, args...), &out, &errb)
	return out.String(), errb.String(), status
}

// assertInert fails when s holds anything a terminal acts on.
func assertInert(t *testing.T, what, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Errorf("%s: not UTF-8: %q", what, s)
	}
	for _, bad := range []string{"\x1b", "\a", "\r", "\u009b", "\u202e", "\u2066", "\u200f"} {
		if strings.Contains(s, bad) {
			t.Errorf("%s: holds %q unescaped:\n%q", what, bad, s)
		}
	}
}

// TestHistoryPrintsHostileTextEscaped: the history table escapes the
// actor, the request ID and every summary line, each in its cell: a
// newline or a tab cannot forge a row.
func TestHistoryPrintsHostileTextEscaped(t *testing.T) {
	srv := hostileAPI(t)
	out, errOut, status := cliRun(srv, "history")
	if status != 0 {
		t.Fatalf("history: exit %d: %s", status, errOut)
	}
	assertInert(t, "history", out)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("history: want a title, a row and one more summary line, got %d lines:\n%s", len(lines), out)
	}
	for _, want := range []string{"admin-token (claimed " + hostileEscaped + ")", "r-" + hostileEscaped, "add service tcp:10.0.0.1:80 " + hostileEscaped} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("history row lacks %q:\n%s", want, lines[1])
		}
	}
	if !strings.Contains(lines[2], `forged\t`+hostileEscaped) {
		t.Errorf("second summary line: %s", lines[2])
	}

	// --json is exact: the escapes the writer adds are JSON's own.
	out, _, status = cliRun(srv, "history", "--json")
	assertInert(t, "history --json", out)
	var items []api.HistoryItem
	if err := json.Unmarshal([]byte(out), &items); status != 0 || err != nil {
		t.Fatalf("history --json: exit %d, %v:\n%s", status, err, out)
	}
	var want []api.HistoryItem
	resp, err := http.Get(srv.URL + "/v1/history")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&want)
	resp.Body.Close()
	if !reflect.DeepEqual(items, want) {
		t.Errorf("history --json changed the values:\n%+v\nwant\n%+v", items, want)
	}
}

// TestOtherOutputsEscapeHostileText: a table cell (health) and an error
// relayed from the server reach the terminal escaped.
func TestOtherOutputsEscapeHostileText(t *testing.T) {
	srv := hostileAPI(t)
	out, errOut, status := cliRun(srv, "health")
	if status != 0 {
		t.Fatalf("health: exit %d: %s", status, errOut)
	}
	assertInert(t, "health", out)
	if n := strings.Count(strings.TrimRight(out, "\n"), "\n"); n != 1 || !strings.Contains(out, `fail (body\n`+hostileEscaped+")") {
		t.Errorf("health: want the title and one row with the detail escaped, got:\n%s", out)
	}
	_, errOut, status = cliRun(srv, "-A", "-t", "10.0.0.1:80", "-s", "rr")
	if status != 1 {
		t.Fatalf("a refused write: exit %d", status)
	}
	assertInert(t, "error", errOut)
	if !strings.Contains(errOut, "name "+hostileEscaped) {
		t.Errorf("error: %q", errOut)
	}
}

// TestPrintHistoryEscapesEveryField: printHistory on its own, with a byte
// that is not UTF-8 as well (an entry printed from a source other than
// the API's JSON).
func TestPrintHistoryEscapesEveryField(t *testing.T) {
	var b bytes.Buffer
	err := printHistory(&b, []api.HistoryItem{{Version: 3, Actor: "mallory\u202e\xff\tadmin", Request: "-", Summary: "one\x1b[2J\ntwo\u200f"}})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	assertInert(t, "printHistory", out)
	for _, want := range []string{`mallory\u202e\xff\tadmin`, `one\x1b[2J`, `two\u200f`} {
		if !strings.Contains(out, want) {
			t.Errorf("printHistory lacks %q:\n%s", want, out)
		}
	}
}

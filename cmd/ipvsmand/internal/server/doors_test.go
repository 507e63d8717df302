package server

import (
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// doors is every route the API serves and who may use it: the door table
// of docs/security.md. "read": the read-only or the cluster token; "admin":
// the cluster token only; "node": a node (certificate, or node key on
// loopback) besides the cluster token, for a request a node forwards.
var doors = map[string]string{
	"GET /v1/status":             "read",
	"GET /v1/cluster/status":     "read",
	"GET /v1/config":             "read",
	"GET /v1/history":            "read",
	"GET /v1/history/{version}":  "read",
	"GET /v1/kernel":             "read",
	"GET /v1/kernel/connections": "read",
	"GET /v1/health":             "read",
	"GET /metrics":               "read",
	"POST /v1/ops":               "admin",
	"POST /v1/config":            "admin",
	"POST /v1/rollback":          "admin",
	"POST /v1/zero":              "admin",
	"POST /v1/cluster/join":      "node",
	"POST /v1/cluster/leave":     "admin",
	"POST /v1/cluster/transfer":  "admin",
	"POST /v1/cluster/join-via":  "admin",
	"POST /v1/node/drain":        "admin",
	"POST /v1/commands/{name}":   "admin",
}

// TestEveryDoorIsInTheTable reads the routes server.go registers: a route
// added without a row here (and so in the door table) fails.
func TestEveryDoorIsInTheTable(t *testing.T) {
	src, err := os.ReadFile("server.go")
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, m := range regexp.MustCompile(`mux\.Handle(?:Func)?\("([A-Z]+ [^"]+)"`).FindAllStringSubmatch(string(src), -1) {
		routes = append(routes, m[1])
	}
	if len(routes) < 10 {
		t.Fatalf("found %d routes in server.go: the pattern no longer matches how routes are registered", len(routes))
	}
	for _, r := range routes {
		if _, ok := doors[r]; !ok {
			t.Errorf("route %q is served but not in the door table (doors, docs/security.md)", r)
		}
	}
	for d := range doors {
		if !slices.Contains(routes, d) {
			t.Errorf("door %q is in the table but not served", d)
		}
	}
}

// TestEveryDoorIsShutWithoutAToken: no route answers without the token,
// and none that changes something answers the read-only token.
func TestEveryDoorIsShutWithoutAToken(t *testing.T) {
	srv, _ := leaderAPI(t)
	for d, who := range doors {
		method, path, _ := strings.Cut(d, " ")
		path = strings.NewReplacer("{version}", "1", "{name}", "note").Replace(path)
		for _, tok := range []string{"", "wrong-token-0123456789"} {
			if code, body := call(t, srv, method, path, tok, "{}"); code != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q: %d %s, want 401", method, path, tok, code, body)
			}
		}
		code, body := call(t, srv, method, path, readToken, "{}")
		switch {
		case who == "read" && (code == http.StatusUnauthorized || code == http.StatusForbidden):
			t.Errorf("%s %s with the read-only token: %d %s, want it answered", method, path, code, body)
		case who != "read" && code != http.StatusForbidden:
			t.Errorf("%s %s with the read-only token: %d %s, want 403", method, path, code, body)
		}
	}
}

// TestTheDoorTableNamesRealTests: every row of docs/security.md's door
// table names a test, and every test it names exists.
func TestTheDoorTableNamesRealTests(t *testing.T) {
	root := "../../../../"
	doc, err := os.ReadFile(root + "docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## Doors: who may do what")
	if !ok {
		t.Fatal("docs/security.md has no door table")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	defined := map[string]bool{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := os.ReadFile(p)
		for _, m := range regexp.MustCompile(`(?m)^func (Test\w+)\(`).FindAllSubmatch(b, -1) {
			defined[string(m[1])] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| door ") {
			continue
		}
		rows++
		named := regexp.MustCompile("`(Test\\w+)`").FindAllStringSubmatch(line, -1)
		if len(named) == 0 {
			t.Errorf("door row names no test: %s", line)
		}
		for _, n := range named {
			if !defined[n[1]] {
				t.Errorf("door row names %s, which no test file defines", n[1])
			}
		}
	}
	if rows < len(doors)/3 {
		t.Fatalf("read %d rows from the door table: the table is not where the test looks", rows)
	}
}

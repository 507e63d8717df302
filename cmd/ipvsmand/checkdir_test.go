package main

import (
	"bytes"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// TestCheckDirFlags: a relative --check-dir or an unknown --check-user
// stops the start, naming the flag; a missing directory does not, and is
// logged once.
func TestCheckDirFlags(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	if _, err := openExec("etc/checks", "", log); err == nil || err.Error() != `--check-dir: "etc/checks": want an absolute path` {
		t.Fatalf("relative --check-dir: %v", err)
	}
	if _, err := openExec(t.TempDir(), "no-such-user-ipvsman", log); err == nil || !strings.HasPrefix(err.Error(), `--check-user: "no-such-user-ipvsman": `) {
		t.Fatalf("unknown --check-user: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "checks")
	x, err := openExec(missing, "", log)
	if err != nil || x == nil {
		t.Fatalf("a missing --check-dir stopped the start: %v", err)
	}
	if out := buf.String(); strings.Count(out, "--check-dir unusable") != 1 || !strings.Contains(out, missing) {
		t.Fatalf("log of a missing --check-dir:\n%s", out)
	}
	buf.Reset()
	if _, err := openExec(t.TempDir(), "root", log); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "exec checks run only programs in --check-dir") || !strings.Contains(out, "uid 0, gid 0, no supplementary groups") {
		t.Fatalf("log of a good --check-dir:\n%s", out)
	}

	// The leader's refusal names the node whose directory it checked.
	key := fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80}
	next := &fsm.Config{Services: map[string]*fsm.Service{key.String(): {Key: key, Scheduler: "rr",
		Check: &fsm.HealthCheck{Type: "exec", Command: []string{"/usr/bin/touch", "/tmp/x"}}}}}
	err = admitExec(x, "d1")(&fsm.Config{}, next)
	if err == nil || !strings.HasPrefix(err.Error(), `service tcp:10.0.0.1:80 check command "/usr/bin/touch": outside --check-dir "`+missing+`"`) ||
		!strings.HasSuffix(err.Error(), "(checked by the leader, d1)") {
		t.Fatalf("admitExec: %v", err)
	}
}

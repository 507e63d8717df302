package check

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
)

// execEnv is a check directory of the test's own (the test's user counts
// as root for it), the Exec over it, and what that Exec logged.
type execEnv struct {
	dir string
	x   *Exec
	log *harness.LogBuffer
	n   int
}

func newExecEnv(t *testing.T) *execEnv {
	t.Helper()
	dir := t.TempDir()
	d, err := NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	d.owner = os.Getuid()
	log := &harness.LogBuffer{}
	return &execEnv{dir: dir, x: &Exec{Dir: d, Log: slog.New(slog.NewTextHandler(log, nil))}, log: log}
}

// install writes an executable program name into the check directory.
func (e *execEnv) install(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(e.dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// sh installs script as a shell script of its own and returns an exec
// check running it with args: $1... are args, as with sh -c.
func (e *execEnv) sh(t *testing.T, script string, args ...string) fsm.HealthCheck {
	t.Helper()
	e.n++
	name := "check-" + strconv.Itoa(e.n)
	e.install(t, name, "#!/bin/sh\n"+script+"\n")
	return fsm.HealthCheck{Type: "exec", Command: append([]string{name}, args...)}
}

// build validates c and builds it with this Exec.
func (e *execEnv) build(t *testing.T, c fsm.HealthCheck) Checker {
	t.Helper()
	if err := fsm.ValidateHealthCheck("test check", &c); err != nil {
		t.Fatalf("invalid check %+v: %v", c, err)
	}
	ch, err := New(c, Options{Exec: e.x})
	if err != nil {
		t.Fatalf("New(%+v): %v", c, err)
	}
	return ch
}

var execTarget = netip.MustParseAddrPort("192.0.2.7:8080")

func TestExec(t *testing.T) {
	for _, tc := range []struct {
		name    string
		script  string
		command []string // instead of script
		ok      bool
		detail  string
		weight  int // -1: none
	}{
		{"exit 0", "exit 0", nil, true, "exit 0", -1},
		{"exit 1", "exit 1", nil, false, "exit 1", -1},
		{"stderr in detail", "echo starting; echo backend not ready >&2; exit 2", nil, false, "exit 2: backend not ready", -1},
		{"stdout in detail", "echo backend not ready; exit 3", nil, false, "exit 3: backend not ready", -1},
		{"weight", "echo checking; echo weight 5", nil, true, "exit 0, weight 5", 5},
		{"weight without newline", "printf 'weight 65535'", nil, true, "exit 0, weight 65535", 65535},
		{"weight on failure", "echo weight 0; exit 1", nil, false, "exit 1", 0},
		{"weight not last", "echo weight 5; echo done", nil, true, "exit 0", -1},
		{"weight out of range", "echo weight 65536", nil, true, "exit 0", -1},
		{"weight negative", "echo weight -1", nil, true, "exit 0", -1},
		{"weight with junk", "echo weight 5 please", nil, true, "exit 0", -1},
		{"env", `echo "$IPVSMAN_CHECK_ADDR $IPVSMAN_CHECK_PORT" >&2; [ "$IPVSMAN_CHECK_ADDR" = 192.0.2.7 ] && [ "$IPVSMAN_CHECK_PORT" = 8080 ]`, nil, true, "exit 0", -1},
		{"killed by a signal", "kill -TERM $$", nil, false, "killed by terminated", -1},
		{"not in the check dir", "", []string{"no-such-check"}, false, `not run: "no-such-check": not in --check-dir`, -1},
		{"outside the check dir", "", []string{"/bin/true"}, false, `not run: "/bin/true": outside --check-dir`, -1},
		// A million bytes of output: kept to a tail, the weight line still seen.
		{"large output", "head -c 1000000 /dev/zero | tr '\\0' x; echo; echo weight 7", nil, true, "exit 0, weight 7", 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newExecEnv(t)
			c := fsm.HealthCheck{Type: "exec", Command: tc.command}
			if tc.command == nil {
				c = e.sh(t, tc.script)
			}
			r := check(t, e.build(t, c), execTarget, 10*time.Second)
			wantResult(t, r, tc.ok, tc.detail)
			switch {
			case tc.weight < 0 && r.Weight != nil:
				t.Errorf("weight %d, want none", *r.Weight)
			case tc.weight >= 0 && r.Weight == nil:
				t.Errorf("no weight, want %d", tc.weight)
			case tc.weight >= 0 && *r.Weight != tc.weight:
				t.Errorf("weight %d, want %d", *r.Weight, tc.weight)
			}
		})
	}
}

// TestExecTimeoutKillsGroup: on timeout the shell and its background child
// are killed, and Check returns soon after the deadline.
func TestExecTimeoutKillsGroup(t *testing.T) {
	e := newExecEnv(t)
	pidfile := filepath.Join(t.TempDir(), "pid")
	ch := e.build(t, e.sh(t, `sleep 60 & echo $! > "$1"; wait`, pidfile))
	start := time.Now()
	r := check(t, ch, execTarget, 300*time.Millisecond)
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("check took %v with a 300ms timeout", el)
	}
	wantFail(t, r, "timeout (killed)")
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatalf("the script did not start its child: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the script's child %d still runs 10s after the timeout", pid)
		}
		time.Sleep(10 * time.Millisecond) // polling, with the deadline above
	}
}

// gone reports whether pid has exited (a zombie counts: its reaper may be
// a pid 1 that does not reap).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	// pid (comm) state ...: comm may hold spaces, so look after the last ')'.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] == 'Z' || b[i+2] == 'X'
	}
	return false
}

// TestExecBackgroundChildHoldsOutput: a command that exits but leaves a
// child holding its stdout is judged by its exit, without waiting for the
// child.
func TestExecBackgroundChildHoldsOutput(t *testing.T) {
	e := newExecEnv(t)
	pidfile := filepath.Join(t.TempDir(), "pid")
	ch := e.build(t, e.sh(t, `sleep 60 & echo $! > "$1"; echo weight 3`, pidfile))
	r := check(t, ch, execTarget, 10*time.Second)
	if b, err := os.ReadFile(pidfile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	wantOK(t, r)
	if r.Latency > 5*time.Second {
		t.Errorf("check took %v: it waited for the background child", r.Latency)
	}
	if r.Weight == nil || *r.Weight != 3 {
		t.Errorf("weight %v, want 3", r.Weight)
	}
}

func TestTail(t *testing.T) {
	tl := &tail{max: 8}
	for _, s := range []string{"abc", "defg", "hijkl"} {
		tl.Write([]byte(s))
	}
	if got := string(tl.bytes()); got != "efghijkl" {
		t.Fatalf("tail %q, want efghijkl", got)
	}
	tl.Write([]byte("0123456789"))
	if got := string(tl.bytes()); got != "23456789" {
		t.Fatalf("tail %q, want 23456789", got)
	}
	// A cut-off line is not a weight line.
	tl = &tail{max: 8}
	tl.Write([]byte("xxweight 5"))
	if w := tl.weight(); w != nil {
		t.Fatalf("weight %d from a line cut at its start", *w)
	}
}

package check

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/skip"
)

// testDir is a check directory the test's user owns, trusted as root is
// (root in CI), and a Dir over it.
func testDir(t *testing.T) (string, *Dir) {
	t.Helper()
	dir := t.TempDir()
	d, err := NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	d.owner = os.Getuid()
	return dir, d
}

func writeProgram(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestResolve: what a check's program may name, and every way out of the
// check directory refused with the path and the reason.
func TestResolve(t *testing.T) {
	dir, d := testDir(t)
	outside := t.TempDir()
	writeProgram(t, filepath.Join(dir, "ok"), 0o755)
	writeProgram(t, filepath.Join(dir, "web", "check"), 0o755)
	writeProgram(t, filepath.Join(dir, "private"), 0o700)
	writeProgram(t, filepath.Join(dir, "plain"), 0o644)
	writeProgram(t, filepath.Join(dir, "anyone"), 0o757)
	writeProgram(t, filepath.Join(dir, "group"), 0o775)
	writeProgram(t, filepath.Join(outside, "evil"), 0o755)
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeProgram(t, filepath.Join(dir, "open", "check"), 0o755)
	chmod(t, filepath.Join(dir, "open"), 0o777)
	writeProgram(t, filepath.Join(dir, "sticky", "check"), 0o755)
	chmod(t, filepath.Join(dir, "sticky"), 0o777|os.ModeSticky) // /tmp's exemption is for above the directory only
	symlink(t, "ok", filepath.Join(dir, "alias"))
	symlink(t, "web/check", filepath.Join(dir, "web-alias"))
	symlink(t, filepath.Join(outside, "evil"), filepath.Join(dir, "escape"))
	symlink(t, "../"+filepath.Base(outside)+"/evil", filepath.Join(dir, "escape-relative"))
	symlink(t, "/bin/true", filepath.Join(dir, "true"))
	symlink(t, outside, filepath.Join(dir, "outdir"))
	symlink(t, "missing", filepath.Join(dir, "dangling"))

	for _, tc := range []struct {
		program string
		want    string // the resolved path (under dir), or a part of the error
		ok      bool
	}{
		{"ok", "ok", true},
		{"web/check", "web/check", true},
		{"./ok", "ok", true},
		{filepath.Join(dir, "ok"), "ok", true},
		{filepath.Join(dir, "web", "check"), "web/check", true},
		{"private", "private", true},
		{"alias", "ok", true}, // a link inside to inside
		{"web-alias", "web/check", true},

		{"", "empty program", false},
		{"../ok", `".." may not leave --check-dir "` + dir + `": name a program inside it`, false},
		{"web/../ok", `".." may not leave`, false},
		{"web/../../" + filepath.Base(outside) + "/evil", `".." may not leave`, false},
		{dir + "/../" + filepath.Base(outside) + "/evil", `".." may not leave`, false},
		{"/usr/bin/touch", `outside --check-dir "` + dir + `": install the program there`, false},
		{filepath.Join(outside, "evil"), "outside --check-dir", false},
		{dir, "outside --check-dir", false},
		{dir + "x/ok", "outside --check-dir", false},
		{"escape", `leads to "` + filepath.Join(outside, "evil") + `", outside --check-dir "` + dir + `": a link must stay inside`, false},
		{"escape-relative", "leads to", false},
		{"true", "outside --check-dir", false},
		{"outdir/evil", "outside --check-dir", false},
		{"nothing", `not in --check-dir "` + dir + `": lstat`, false},
		{"dangling", "not in --check-dir", false},
		{"adir", "a directory, not a program", false},
		{"plain", "mode 0644: not executable (chmod 0755", false},
		{"anyone", "mode 0757: it must belong to root and not be writable by group or others (chown root:root", false},
		{"group", "mode 0775: it must belong to root", false},
		{"open/check", filepath.Join(dir, "open") + `": owner uid`, false},
		{"sticky/check", filepath.Join(dir, "sticky") + `": owner uid ` + strconv.Itoa(os.Getuid()) + `, mode 1777`, false},
	} {
		t.Run(tc.program, func(t *testing.T) {
			got, err := d.Resolve(tc.program)
			if tc.ok {
				if err != nil {
					t.Fatalf("Resolve(%q): %v", tc.program, err)
				}
				if want := filepath.Join(realPath(t, dir), tc.want); got != want {
					t.Fatalf("Resolve(%q) = %q, want %q", tc.program, got, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve(%q) = %q, want an error with %q", tc.program, got, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Resolve(%q): %v\nwant it to contain %q", tc.program, err, tc.want)
			}
			t.Log(err)
		})
	}
}

func realPath(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCheckDirItself: the directory must exist, be a directory, and it and
// every directory above it must be root's and writable by no one else; a
// sticky directory above it (/tmp) may be writable by all, the check
// directory itself may not.
func TestCheckDirItself(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "checks")
	d, err := NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	d.owner = os.Getuid()
	want := func(what, part string) {
		t.Helper()
		err := d.Check()
		_, rerr := d.Resolve("ok")
		switch {
		case part == "" && (err != nil || rerr != nil):
			t.Fatalf("%s: Check %v, Resolve %v; want both fine", what, err, rerr)
		case part != "" && (err == nil || !strings.Contains(err.Error(), part)):
			t.Fatalf("%s: Check %v, want an error with %q", what, err, part)
		case part != "" && (rerr == nil || !strings.Contains(rerr.Error(), part)):
			t.Fatalf("%s: Resolve %v, want an error with %q", what, rerr, part)
		}
	}
	want("missing", `--check-dir "`+dir+`": lstat`)
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	want("a file", "not a directory")
	os.Remove(dir)
	writeProgram(t, filepath.Join(dir, "ok"), 0o755)
	chmod(t, dir, 0o755)
	want("0755", "")
	chmod(t, dir, 0o777)
	want("world-writable", `"`+dir+`": owner uid `)
	chmod(t, dir, 0o777|os.ModeSticky)
	want("world-writable, sticky", "mode 1777: it and every directory above it must belong to root and not be writable by group or others (chown root:root \""+dir+"\"; chmod go-w \""+dir+"\")")
	chmod(t, dir, 0o775)
	want("group-writable", "mode 0775")
	chmod(t, dir, 0o755)
	chmod(t, base, 0o777)
	want("a world-writable directory above", `"`+base+`": owner uid `)
	chmod(t, base, 0o777|os.ModeSticky)
	want("a world-writable, sticky directory above", "")
	chmod(t, base, 0o700)

	// Through a link: the directory it leads to is checked too.
	other := t.TempDir()
	writeProgram(t, filepath.Join(other, "real", "ok"), 0o755)
	link := filepath.Join(t.TempDir(), "checks")
	symlink(t, filepath.Join(other, "real"), link)
	if d, err = NewDir(link); err != nil {
		t.Fatal(err)
	}
	d.owner = os.Getuid()
	want("a link to a good directory", "")
	chmod(t, filepath.Join(other, "real"), 0o777)
	want("a link to a world-writable directory", "mode 0777")

	if _, err := NewDir("etc/ipvsman/checks"); err == nil || !strings.Contains(err.Error(), "want an absolute path") {
		t.Fatalf("NewDir(relative) = %v, want a refusal", err)
	}
}

// TestResolveRefusesWhatAnotherUserOwns: a program, or a directory, of a
// user other than root is refused (root chowns; CI runs as root).
func TestResolveRefusesWhatAnotherUserOwns(t *testing.T) {
	if os.Geteuid() != 0 {
		skip.Now(t, "needs root (chown)")
	}
	dir := t.TempDir()
	d, err := NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeProgram(t, filepath.Join(dir, "theirs"), 0o755)
	writeProgram(t, filepath.Join(dir, "sub", "ok"), 0o755)
	if err := os.Chown(filepath.Join(dir, "theirs"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Resolve("sub/ok"); err != nil {
		t.Fatalf("root's program: %v", err)
	}
	if _, err := d.Resolve("theirs"); err == nil || !strings.Contains(err.Error(), "owner uid 65534, mode 0755") {
		t.Fatalf("a program of uid 65534: %v, want a refusal naming the owner", err)
	}
	if err := os.Chown(filepath.Join(dir, "sub"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Resolve("sub/ok"); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "sub")+`": owner uid 65534`) {
		t.Fatalf("a directory of uid 65534: %v, want a refusal naming it", err)
	}
}

// TestAdmit: a configuration adding an exec check whose program is not in
// the directory is refused, naming the check, the command and the reason;
// programs already in use pass (an unrelated write is never refused for
// them), and other checks are not looked at.
func TestAdmit(t *testing.T) {
	dir, d := testDir(t)
	writeProgram(t, filepath.Join(dir, "ok"), 0o755)
	exec := func(cmd ...string) *fsm.HealthCheck { return &fsm.HealthCheck{Type: "exec", Command: cmd} }
	cfg := func(svcCheck, rsCheck *fsm.HealthCheck) *fsm.Config {
		key := fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80}
		rs := &fsm.RealServer{Address: netip.MustParseAddr("10.0.1.1"), Port: 80, Weight: 1, Check: rsCheck}
		svc := &fsm.Service{Key: key, Scheduler: "rr", Check: svcCheck, Servers: map[string]*fsm.RealServer{rs.Key(): rs}}
		return &fsm.Config{Services: map[string]*fsm.Service{key.String(): svc}}
	}
	for _, tc := range []struct {
		name      string
		cur, next *fsm.Config
		want      string // "": admitted
	}{
		{"no change", cfg(nil, nil), nil, ""},
		{"no exec check", nil, cfg(&fsm.HealthCheck{Type: "tcp"}, nil), ""},
		{"in the directory", nil, cfg(exec("ok", "--quick"), nil), ""},
		{"service, outside", nil, cfg(exec("/usr/bin/touch", "/tmp/x"), nil),
			`service tcp:10.0.0.1:80 check command "/usr/bin/touch": outside --check-dir "` + dir + `"`},
		{"real server, missing", cfg(nil, nil), cfg(exec("ok"), exec("gone")),
			`real server 10.0.1.1:80 of service tcp:10.0.0.1:80 check command "gone": not in --check-dir`},
		{"dot-dot", nil, cfg(nil, exec("../ok")), `check command "../ok": ".." may not leave`},
		{"already in use", cfg(exec("/usr/bin/check"), nil), cfg(exec("/usr/bin/check"), exec("/usr/bin/check")), ""},
		{"in use, another added", cfg(exec("/usr/bin/check"), nil), cfg(exec("/usr/bin/check"), exec("/usr/bin/other")), `command "/usr/bin/other"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := d.Admit(tc.cur, tc.next)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Admit: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestExecRefusalLoggedOnce: a check whose program the directory lacks
// fails, saying why, and is never run; the node logs it once however often
// and by however many checks it is tried, and once more when the program
// is installed and runs.
func TestExecRefusalLoggedOnce(t *testing.T) {
	e := newExecEnv(t)
	c := fsm.HealthCheck{Type: "exec", Command: []string{"later"}}
	a, b := e.build(t, c), e.build(t, c)
	for range 3 {
		for _, ch := range []Checker{a, b} {
			wantFail(t, check(t, ch, execTarget, 10*time.Second), `not run: "later": not in --check-dir "`+e.dir+`"`)
		}
	}
	if n := strings.Count(e.log.String(), "exec check not run"); n != 1 {
		t.Fatalf("%d refusal lines, want 1:\n%s", n, e.log)
	}
	if !strings.Contains(e.log.String(), "program=later") || !strings.Contains(e.log.String(), "check_dir="+e.dir) {
		t.Fatalf("the refusal does not name the program and the directory:\n%s", e.log)
	}
	e.install(t, "later", "#!/bin/sh\nexit 0\n")
	wantOK(t, check(t, a, execTarget, 10*time.Second))
	wantOK(t, check(t, b, execTarget, 10*time.Second))
	if n := strings.Count(e.log.String(), "exec check program allowed again"); n != 1 {
		t.Fatalf("%d lines for the program's return, want 1:\n%s", n, e.log)
	}
	// A new reason is news again.
	chmod(t, filepath.Join(e.dir, "later"), 0o757)
	wantFail(t, check(t, a, execTarget, 10*time.Second), "mode 0757")
	if n := strings.Count(e.log.String(), "exec check not run"); n != 2 {
		t.Fatalf("%d refusal lines after the program became writable by all, want 2:\n%s", n, e.log)
	}
}

// TestExecRefusedWithoutADirectory: a node without a check directory
// builds no exec checker.
func TestExecRefusedWithoutADirectory(t *testing.T) {
	_, err := New(fsm.HealthCheck{Type: "exec", Command: []string{"ok"}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "no check directory") {
		t.Fatalf("New without Options.Exec: %v, want a refusal", err)
	}
}

// TestExecAsUser: with a credential the program runs as that user and
// group with no supplementary groups (root sets them; CI runs as root).
func TestExecAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		skip.Now(t, "needs root (setuid)")
	}
	e := newExecEnv(t)
	// The user must be able to enter the directory to run what is in it.
	for p := e.dir; p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		chmod(t, p, 0o755)
	}
	e.x.Cred = &syscall.Credential{Uid: 65534, Gid: 65533, Groups: []uint32{}}
	if err := e.x.Dir.Reachable(e.x.Cred); err != nil {
		t.Fatalf("Reachable: %v", err)
	}
	c := e.sh(t, `[ "$(id -u)" = 65534 ] && [ "$(id -g)" = 65533 ] && [ "$(id -G)" = 65533 ] || { echo "uid $(id -u) gid $(id -g) groups $(id -G)"; exit 1; }`)
	wantOK(t, check(t, e.build(t, c), execTarget, 10*time.Second))

	chmod(t, e.dir, 0o700)
	if err := e.x.Dir.Reachable(e.x.Cred); err == nil || !strings.Contains(err.Error(), `"`+e.dir+`": owner uid 0, group gid 0, mode 0700: uid 65534 (--check-user) cannot enter it`) {
		t.Fatalf("Reachable through a 0700 directory: %v", err)
	}
}

func TestUserCredential(t *testing.T) {
	for _, name := range []string{"root", "0"} {
		c, err := UserCredential(name)
		if err != nil || c.Uid != 0 || c.Gid != 0 || c.Groups == nil || len(c.Groups) != 0 {
			t.Fatalf("UserCredential(%q) = %+v, %v; want uid 0, gid 0, no groups (set empty)", name, c, err)
		}
	}
	if _, err := UserCredential("no-such-user-ipvsman"); err == nil || !strings.Contains(err.Error(), `"no-such-user-ipvsman"`) {
		t.Fatalf("an unknown user: %v", err)
	}
}

func TestCanSwitch(t *testing.T) {
	for _, tc := range []struct{ status, want string }{
		{"Name:\tx\nCapEff:\t000001ffffffffff\n", ""},
		{"CapEff:\t00000000000000c0\n", ""},
		// The packaged unit's set before --check-user: NET_ADMIN, NET_RAW, SYS_NICE, IPC_LOCK.
		{"CapEff:\t0000000000807000\n", "lacks CAP_SETUID and CAP_SETGID"},
		{"CapEff:\t0000000000000040\n", "lacks CAP_SETUID ("},
		{"Name:\tx\n", "no CapEff line"},
	} {
		err := canSwitch(tc.status)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("canSwitch(%q) = %v, want %q", tc.status, err, tc.want)
		}
	}
}

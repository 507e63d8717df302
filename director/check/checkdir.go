package check

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/ipvsman/ipvsman/fsm"
)

// DefaultCheckDir is where exec checks' programs live unless ipvsmand is
// told otherwise (--check-dir); the package creates it, root-owned 0755.
const DefaultCheckDir = "/etc/ipvsman/checks"

// Dir is the directory an exec check's program must be in (--check-dir).
// Whoever holds the cluster token may name a program in a check, and the
// leader runs it, as root by default: the directory is what keeps that
// token from running any program on the host. Only what root has put
// there runs, so the directory, the directories above it and the program
// must be root's and writable by no one else.
//
// A Dir holds no state: every Resolve looks at the file system again, so
// that a program installed, fixed or removed is seen at its next check.
type Dir struct {
	path  string // absolute, clean, as configured
	owner int    // the one user besides root trusted to own what is checked: root in production, the test's user in tests
}

// NewDir is the check directory at path, which must be absolute. It need
// not exist yet: Resolve then refuses every program, saying why.
func NewDir(path string) (*Dir, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("%q: want an absolute path", path)
	}
	return &Dir{path: filepath.Clean(path), owner: 0}, nil
}

// Path is the directory as configured.
func (d *Dir) Path() string { return d.path }

// Check reports whether the directory is usable: it exists, and it and
// every directory above it are root's and not writable by others.
func (d *Dir) Check() error {
	_, err := d.real()
	return err
}

// Resolve finds program, the first word of an exec check's command, in
// the directory and returns the path to run. program is a name or a
// relative path inside the directory ("check-web", "web/check"), or an
// absolute path inside it ("/etc/ipvsman/checks/check-web"); there is no
// search of $PATH and no shell. Symbolic links are followed, and must
// end inside the directory. The error says why the program may not run,
// naming the path and, for ownership and modes, the fix; the caller
// names the program.
func (d *Dir) Resolve(program string) (string, error) {
	if program == "" {
		return "", errors.New("empty program")
	}
	if slices.Contains(strings.Split(program, "/"), "..") {
		return "", fmt.Errorf("\"..\" may not leave --check-dir %q: name a program inside it", d.path)
	}
	rel := program
	if filepath.IsAbs(program) {
		r, err := filepath.Rel(d.path, filepath.Clean(program))
		if err != nil || r == "." || !filepath.IsLocal(r) {
			return "", fmt.Errorf("outside --check-dir %q: install the program there and name it by its name in it", d.path)
		}
		rel = r
	}
	if !filepath.IsLocal(rel) {
		return "", fmt.Errorf("not a path inside --check-dir %q", d.path)
	}
	realDir, err := d.real()
	if err != nil {
		return "", err
	}
	joined := filepath.Join(d.path, rel)
	realProg, err := filepath.EvalSymlinks(joined)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("not in --check-dir %q: %w", d.path, err)
		}
		return "", fmt.Errorf("in --check-dir %q: %w", d.path, err)
	}
	if r, err := filepath.Rel(realDir, realProg); err != nil || r == "." || !filepath.IsLocal(r) {
		where := fmt.Sprintf("%q", d.path)
		if realDir != d.path {
			where += fmt.Sprintf(" (%q)", realDir)
		}
		return "", fmt.Errorf("leads to %q, outside --check-dir %s: a link must stay inside", realProg, where)
	}
	// The directories holding each step of the way: the link's and the
	// program's own, up to the check directory.
	for _, p := range []string{filepath.Dir(joined), filepath.Dir(realProg)} {
		if err := d.walk(p, realDir); err != nil {
			return "", err
		}
	}
	fi, err := os.Stat(realProg)
	if err != nil {
		return "", fmt.Errorf("%q: %w", realProg, err)
	}
	switch {
	case fi.IsDir():
		return "", fmt.Errorf("%q: a directory, not a program", realProg)
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%q: not a regular file", realProg)
	}
	if err := d.trusted(realProg, fi, true); err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%q: mode %04o: not executable (chmod 0755 %q)", realProg, fi.Mode().Perm(), realProg)
	}
	return realProg, nil
}

// real checks the directory as configured and as resolved, every
// directory above both, and returns the resolved one.
func (d *Dir) real() (string, error) {
	realDir, err := filepath.EvalSymlinks(d.path)
	if err != nil {
		return "", fmt.Errorf("--check-dir %q: %w", d.path, err)
	}
	fi, err := os.Stat(realDir)
	if err != nil {
		return "", fmt.Errorf("--check-dir %q: %w", d.path, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("--check-dir %q: not a directory", d.path)
	}
	// The configured path's parents hold the links on the way, if any.
	if err := d.walk(filepath.Dir(d.path), realDir); err != nil {
		return "", err
	}
	if err := d.walk(realDir, realDir); err != nil {
		return "", err
	}
	return realDir, nil
}

// walk checks dir and every directory above it. Those inside the check
// directory (as configured or resolved) must be writable by their owner
// alone; those above it may be writable by all if sticky (/tmp), since no
// one else can then rename or replace root's entries.
func (d *Dir) walk(dir, realDir string) error {
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%q: %w", p, err)
		}
		inside := false
		for _, top := range []string{realDir, d.path} {
			inside = inside || p == top || strings.HasPrefix(p, top+"/")
		}
		if err := d.trusted(p, fi, inside); err != nil {
			return err
		}
		if p == "/" || p == "." {
			return nil
		}
	}
}

// trusted refuses a file or directory someone other than root could
// change. strict: no write for group or others, even with the sticky bit.
func (d *Dir) trusted(path string, fi fs.FileInfo, strict bool) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%q: no owner to check", path)
	}
	mode := fi.Mode()
	writable := mode.Perm()&0o022 != 0
	if !strict && mode&fs.ModeSticky != 0 {
		writable = false
	}
	if (st.Uid == 0 || int(st.Uid) == d.owner) && !writable {
		return nil
	}
	what := "it"
	if fi.IsDir() {
		what = "it and every directory above it"
	}
	return fmt.Errorf("%q: owner uid %d, mode %s: %s must belong to root and not be writable by group or others (chown root:root %q; chmod go-w %q)",
		path, st.Uid, modeString(mode), what, path, path)
}

// modeString is the permission bits as chmod takes them: 0755, 1777.
func modeString(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	return fmt.Sprintf("%04o", v)
}

// Admit refuses a configuration (next, replacing cur) holding an exec
// check whose program Resolve refuses, naming where the check sits. It
// runs on the leader before a write is proposed; fsm cannot do it, since
// what a directory holds differs between nodes and over time, and Apply
// must give every node the same answer. A program cur already uses is
// let through: it was admitted when it came (or before there was a check
// directory), a node that cannot run it fails its checks instead (see
// Exec), and refusing it would refuse every unrelated write.
func (d *Dir) Admit(cur, next *fsm.Config) error {
	if next == nil {
		return nil
	}
	have := map[string]bool{}
	if cur != nil {
		execPrograms(cur, func(prog string) { have[prog] = true })
	}
	refused := map[string]error{}
	execPrograms(next, func(prog string) {
		if have[prog] {
			return
		}
		have[prog] = true // resolved once however many checks use it
		if _, err := d.Resolve(prog); err != nil {
			refused[prog] = err
		}
	})
	if len(refused) == 0 {
		return nil
	}
	// Name the first check in order, so that the answer is the same every
	// time; sorting is left to this rare path, as the configuration may
	// hold 100,000 real servers.
	for _, sk := range next.SortedServiceKeys() {
		svc := next.Services[sk]
		if err := refused[execProgram(svc.Check)]; err != nil {
			return fmt.Errorf("service %s check command %q: %w", sk, execProgram(svc.Check), err)
		}
		for _, rk := range svc.SortedServerKeys() {
			rs := svc.Servers[rk]
			if err := refused[execProgram(rs.Check)]; err != nil {
				return fmt.Errorf("real server %s of service %s check command %q: %w", rs.Key(), sk, execProgram(rs.Check), err)
			}
		}
	}
	return nil
}

// execProgram is the program an exec check runs; "" for any other check.
func execProgram(h *fsm.HealthCheck) string {
	if h == nil || h.Type != "exec" || len(h.Command) == 0 {
		return ""
	}
	return h.Command[0]
}

// execPrograms calls f with the program of each exec check of c, in no
// particular order.
func execPrograms(c *fsm.Config, f func(prog string)) {
	for _, svc := range c.Services {
		if p := execProgram(svc.Check); p != "" {
			f(p)
		}
		for _, rs := range svc.Servers {
			if p := execProgram(rs.Check); p != "" {
				f(p)
			}
		}
	}
}

// Reachable reports whether a program in the directory can be run as
// cred (--check-user): the user needs search permission on the directory
// and every one above it. The package makes /etc/ipvsman 0700 (it holds
// the token), which a user other than root cannot enter.
func (d *Dir) Reachable(cred *syscall.Credential) error {
	if cred == nil || cred.Uid == 0 {
		return nil
	}
	realDir, err := d.real()
	if err != nil {
		return err
	}
	for p := realDir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%q: %w", p, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%q: no owner to check", p)
		}
		var bit fs.FileMode = 0o001
		switch {
		case st.Uid == cred.Uid:
			bit = 0o100
		case st.Gid == cred.Gid:
			bit = 0o010
		}
		if fi.Mode().Perm()&bit == 0 {
			return fmt.Errorf("%q: owner uid %d, group gid %d, mode %s: uid %d (--check-user) cannot enter it, so runs nothing in --check-dir %q (chmod o+x %q; the token file keeps its own mode)",
				p, st.Uid, st.Gid, modeString(fi.Mode()), cred.Uid, d.path, p)
		}
		if p == "/" {
			return nil
		}
	}
}

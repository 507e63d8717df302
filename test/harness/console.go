package harness

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Console is `ipvsman top` running in a detached 80×24 tmux session of its
// own (a private tmux server, -S), driven as a person would: keys in, the
// pane read back.
type Console struct {
	t          testing.TB
	sock, name string
}

// StartConsole runs `ipvsman top` against via's API (in the cluster's CLI
// network namespace, if it has one) under tmux.
func (c *Cluster) StartConsole(t testing.TB, via *Node, args ...string) *Console {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("the console tests drive ipvsman top in tmux: install it (apt-get install tmux): %v", err)
	}
	// A server of its own on a socket in the test's directory: private,
	// and gone with the directory.
	dir := t.TempDir()
	b := make([]byte, 4)
	rand.Read(b)
	x := &Console{t: t, sock: filepath.Join(dir, "tmux.sock"), name: "top-" + hex.EncodeToString(b)}
	bin, argv := inNetNS(c.CLINetNS, c.CLIBin, append(append(c.CLIFlags(via), "top"), args...)...)
	// The shell keeps the pane after the console ends, with its exit
	// status and error output, so that a crash is on the screen too.
	errFile := filepath.Join(dir, "top.stderr")
	cmd := fmt.Sprintf("%s %s 2>%s; echo \"console exited: $?\"; cat %s; exec cat",
		bin, strings.Join(argv, " "), errFile, errFile)
	t.Cleanup(func() { _, _ = x.Tmux("kill-server") })
	if out, err := x.Tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", x.name, cmd); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	return x
}

// In is x reporting to t (a subtest), so that a failure stops only t.
func (x *Console) In(t testing.TB) *Console {
	y := *x
	y.t = t
	return &y
}

// Tmux runs a tmux command against x's server.
func (x *Console) Tmux(args ...string) (string, error) {
	cmd := exec.Command("tmux", append([]string{"-S", x.sock}, args...)...)
	// The lab VM's init sets no terminal type; tmux needs one it knows.
	cmd.Env = append(cmd.Environ(), "TERM=xterm-256color")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Name is the tmux session's name.
func (x *Console) Name() string { return x.name }

// Screen is the pane as it is now.
func (x *Console) Screen() string {
	out, err := x.Tmux("capture-pane", "-p", "-t", x.name)
	if err != nil {
		x.t.Fatalf("tmux capture-pane: %v: %s", err, out)
	}
	return strings.TrimRight(out, "\n")
}

// Press types keys one at a time: literal characters, or tmux key names
// such as Enter.
func (x *Console) Press(keys ...string) {
	x.t.Helper()
	for _, k := range keys {
		args := []string{"send-keys", "-t", x.name}
		if len(k) == 1 {
			args = append(args, "-l", "--", k)
		} else {
			args = append(args, k)
		}
		if out, err := x.Tmux(args...); err != nil {
			x.t.Fatalf("tmux send-keys %q: %v: %s", k, err, out)
		}
	}
}

// WaitScreen waits until every want is on the screen and returns it.
func (x *Console) WaitScreen(what string, want ...string) string {
	x.t.Helper()
	var s string
	Eventually(x.t, 20*time.Second, what, func() (bool, string) {
		s = x.Screen()
		flat := strings.Join(strings.Fields(s), " ") // a wrapped status line reads whole
		for _, w := range want {
			if !strings.Contains(s, w) && !strings.Contains(flat, strings.Join(strings.Fields(w), " ")) {
				return false, fmt.Sprintf("no %q on the screen:\n%s", w, s)
			}
		}
		return true, ""
	})
	return s
}

package topo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Exec runs a command inside a node's namespace (`ip netns exec`) and
// returns its combined output. The error, if any, carries the output too.
// It is bounded by Options.ExecTimeout and safe to call from any goroutine
// and from t.Cleanup functions.
func (tp *Topology) Exec(node, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), tp.execTO)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", tp.NS(node), name}, args...)...)
	// A killed command's children may still hold the output pipe: stop
	// waiting for them shortly after.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %s %s: %w: %s", node, name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// MustExec is Exec that fails the test on error.
func (tp *Topology) MustExec(node, name string, args ...string) string {
	tp.t.Helper()
	out, err := tp.Exec(node, name, args...)
	if err != nil {
		tp.t.Fatal(err)
	}
	return out
}

// ip runs one `ip` command in a node's namespace (`ip -n`, which needs no
// mount namespace and so is cheaper than Exec) and fails the test on error.
func (tp *Topology) ip(node string, args ...string) {
	tp.t.Helper()
	full := append([]string{"-n", tp.NS(node)}, args...)
	if out, err := exec.Command("ip", full...).CombinedOutput(); err != nil {
		tp.t.Fatalf("topo: ip %s: %v: %s", strings.Join(full, " "), err, strings.TrimSpace(string(out)))
	}
}

// ipBatch feeds commands to one `ip -batch -` process, in namespace ns or
// the root namespace if ns is "": one process instead of one per command,
// which matters in the VM where each costs 0.1-0.3 s.
func ipBatch(ns, cmds string, force bool) error {
	var args []string
	if ns != "" {
		args = append(args, "-n", ns)
	}
	if force {
		args = append(args, "-force")
	}
	args = append(args, "-batch", "-")
	cmd := exec.Command("ip", args...)
	cmd.Stdin = strings.NewReader(cmds)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s\ncommands:\n%s", strings.Join(args, " "), err, strings.TrimSpace(string(out)), cmds)
	}
	return nil
}

// Proc is a background process inside a namespace, started by Start. Its
// combined stdout and stderr go to LogPath, and the first MiB is also kept
// in memory for WaitLine and Output.
type Proc struct {
	Name    string // "node/command", for messages
	LogPath string

	cmd  *exec.Cmd
	log  *logWriter
	done chan struct{}
	err  error // Wait's result, set before done is closed
}

// maxKept bounds the output a Proc keeps in memory; the log file has all.
const maxKept = 1 << 20

// Start runs a command in the background inside a node's namespace. The
// process and any children it forks form their own process group, which
// Kill and Stop signal as a whole; the lab's teardown kills whatever is left.
func (tp *Topology) Start(node, name string, args ...string) *Proc {
	tp.t.Helper()
	tp.mu.Lock()
	seq := len(tp.procs)
	tp.mu.Unlock()
	logPath := filepath.Join(tp.logDir, fmt.Sprintf("%s-%s-%d.log", node, filepath.Base(name), seq))
	f, err := os.Create(logPath)
	if err != nil {
		tp.t.Fatalf("topo: %v", err)
	}
	lw := &logWriter{f: f, changed: make(chan struct{})}
	// `ip netns exec` execs the command in place (no fork), so the pid is
	// the command's own.
	cmd := exec.Command("ip", append([]string{"netns", "exec", tp.NS(node), name}, args...)...)
	cmd.Stdout, cmd.Stderr = lw, lw
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// If the test binary dies (a panic, go test's timeout), its
		// servers die with it instead of holding the lab's ports.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		tp.t.Fatalf("topo: start %s in %s: %v", name, node, err)
	}
	p := &Proc{Name: node + "/" + filepath.Base(name), LogPath: logPath, cmd: cmd, log: lw, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	tp.mu.Lock()
	tp.procs = append(tp.procs, p)
	tp.mu.Unlock()
	return p
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited and its output is flushed.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Kill sends SIGKILL to the process group (a crash, as far as peers can
// tell) and waits for the process to be gone.
func (p *Proc) Kill() error {
	p.signal(syscall.SIGKILL)
	err := p.Wait(10 * time.Second)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil // killed, as asked
	}
	return err
}

// Stop sends SIGTERM to the process group (a graceful stop) and returns at
// once; Wait tells when and how it ended.
func (p *Proc) Stop() { p.signal(syscall.SIGTERM) }

func (p *Proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
		// Reaped: the pid (and group id) may belong to someone else now.
	default:
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// Wait waits up to timeout for the process to exit and returns its exit
// error (nil for status 0), or an error if it is still running.
func (p *Proc) Wait(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		return fmt.Errorf("%s still running after %s", p.Name, timeout)
	}
}

// Output returns what the process has printed so far (its first MiB).
func (p *Proc) Output() string { return p.log.String() }

// WaitLine waits up to timeout for the process to print a line equal to
// line. Whole lines, so that "ready" does not match "address already in use".
func (p *Proc) WaitLine(line string, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		found, changed := p.log.hasLine(line)
		if found {
			return nil
		}
		select {
		case <-changed:
		case <-p.done:
			if found, _ := p.log.hasLine(line); found {
				return nil
			}
			return fmt.Errorf("%s exited (%v) without printing %q; output:\n%s", p.Name, p.err, line, p.Output())
		case <-t.C:
			return fmt.Errorf("%s did not print %q within %s; output:\n%s", p.Name, line, timeout, p.Output())
		}
	}
}

// logWriter writes to the log file, keeps the first maxKept bytes, and
// wakes WaitLine on every write.
type logWriter struct {
	mu      sync.Mutex
	f       *os.File
	kept    []byte
	changed chan struct{}
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := maxKept - len(w.kept); room > 0 {
		w.kept = append(w.kept, b[:min(room, len(b))]...)
	}
	close(w.changed)
	w.changed = make(chan struct{})
	return w.f.Write(b)
}

func (w *logWriter) hasLine(line string) (bool, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := []byte(line + "\n")
	return bytes.HasPrefix(w.kept, l) || bytes.Contains(w.kept, append([]byte("\n"), l...)), w.changed
}

func (w *logWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.kept)
}

// stopProcs kills every process still running and, if the test failed,
// logs the end of each one's output, which is usually where the cause is.
func (tp *Topology) stopProcs() {
	tp.mu.Lock()
	procs := append([]*Proc(nil), tp.procs...)
	tp.mu.Unlock()
	for _, p := range procs {
		p.signal(syscall.SIGKILL)
	}
	for _, p := range procs {
		_ = p.Wait(10 * time.Second)
		if tp.t.Failed() {
			out := p.Output()
			if len(out) > 2048 {
				out = "..." + out[len(out)-2048:]
			}
			tp.t.Logf("topo: output of %s (%s):\n%s", p.Name, p.LogPath, out)
		}
	}
}

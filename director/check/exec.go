package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipvsman/ipvsman/fsm"
)

func init() { Register("exec", newExec) }

// Environment variables that tell an exec check's command what to check.
const (
	EnvCheckAddr = "IPVSMAN_CHECK_ADDR"
	EnvCheckPort = "IPVSMAN_CHECK_PORT"
)

// Exec is how this node runs exec checks: only programs in Dir, as the
// user Cred names. One Exec serves every exec check of the node, so that
// a refused program is logged once, not once per real server and check.
type Exec struct {
	Dir *Dir
	// Cred, when set, is the user and group the programs run as
	// (--check-user), with no supplementary groups; nil: the daemon's own
	// (root, as packaged).
	Cred *syscall.Credential
	Log  *slog.Logger

	mu      sync.Mutex
	refused map[string]string // program -> the refusal last logged
}

// resolve is Dir.Resolve, logging a program's refusal when it starts or
// its reason changes, and its end.
func (x *Exec) resolve(program string) (string, error) {
	path, err := x.Dir.Resolve(program)
	if err != nil {
		err = fmt.Errorf("%q: %w", program, err)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	log := x.Log
	if log == nil {
		log = slog.Default()
	}
	if err != nil {
		if x.refused == nil {
			x.refused = map[string]string{}
		}
		if x.refused[program] != err.Error() {
			x.refused[program] = err.Error()
			log.Error("exec check not run: its program is not one --check-dir allows; its checks fail until it is", "program", program,
				"check_dir", x.Dir.Path(), "err", err)
		}
		return "", err
	}
	if _, was := x.refused[program]; was {
		delete(x.refused, program)
		log.Info("exec check program allowed again", "program", program, "path", path)
	}
	return path, nil
}

// execChecker runs Command (no shell: an argv) with the target in
// $IPVSMAN_CHECK_ADDR and $IPVSMAN_CHECK_PORT; exit status 0 is OK. Like
// keepalived's MISC_CHECK with misc_dynamic, the command may set the real
// server's weight: if the last line of its standard output is "weight N"
// (0-65535), Result.Weight is N, whatever the exit status.
//
// The program must be in the node's check directory (Exec.Dir), looked
// up again at every check: one that is not there, or that someone other
// than root could change, is not run, and the check fails saying why.
// The command runs in its own process group, which is killed when ctx
// ends; only the last execTail bytes of each output stream are kept.
type execChecker struct {
	x    *Exec
	argv []string
	env  []string // the daemon's environment, read once
}

// execTail is how much of stdout is kept (the weight line is the last
// one); stderr keeps less, for Detail.
const (
	execTail    = 4 << 10
	execErrTail = 1 << 10
	// execWaitDelay bounds the wait for output pipes that a background
	// child holds open after the command itself has exited.
	execWaitDelay = 250 * time.Millisecond
)

func newExec(c fsm.HealthCheck, o Options) (Checker, error) {
	if len(c.Command) == 0 || c.Command[0] == "" {
		return nil, errors.New("command: empty")
	}
	if o.Exec == nil || o.Exec.Dir == nil {
		return nil, errors.New("this node runs no exec checks: it has no check directory")
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvCheckAddr+"=") && !strings.HasPrefix(kv, EnvCheckPort+"=") {
			env = append(env, kv)
		}
	}
	return &execChecker{x: o.Exec, argv: append([]string(nil), c.Command...), env: env}, nil
}

func (e *execChecker) Check(ctx context.Context, target netip.AddrPort) Result {
	start := time.Now()
	path, err := e.x.resolve(e.argv[0])
	if err != nil {
		return Result{Latency: max(time.Since(start), 1), Detail: clip("not run: " + err.Error())}
	}
	// The resolved path runs: what it names can change before the exec
	// only by root's hand, as every directory on the way is root's.
	cmd := exec.CommandContext(ctx, path, e.argv[1:]...)
	cmd.Env = append(e.env[:len(e.env):len(e.env)],
		EnvCheckAddr+"="+target.Addr().String(),
		EnvCheckPort+"="+strconv.Itoa(int(target.Port())))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: e.x.Cred}
	cmd.Cancel = func() error {
		// The whole group: a shell's children too.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = execWaitDelay
	stdout, stderr := &tail{max: execTail}, &tail{max: execErrTail}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err = RunOrdinary(cmd)
	res := Result{Latency: time.Since(start), Weight: stdout.weight()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil && cmd.ProcessState != nil && !cmd.ProcessState.Success():
		res.Detail = describe(ctx, ctx.Err()) + " (killed)"
		return res
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.Detail = "killed by " + ws.Signal().String()
		} else {
			res.Detail = "exit " + strconv.Itoa(ee.ExitCode())
		}
		if msg := lastLine(stderr.bytes()); msg != "" {
			res.Detail = clip(res.Detail + ": " + msg)
		} else if msg := lastLine(stdout.bytes()); msg != "" && res.Weight == nil {
			res.Detail = clip(res.Detail + ": " + msg)
		}
		return res
	case err != nil && !errors.Is(err, exec.ErrWaitDelay):
		// Not started (not found, not executable), or ctx ended first.
		res.Detail = describe(ctx, err)
		return res
	}
	res.OK, res.Detail = true, "exit 0"
	if res.Weight != nil {
		res.Detail += ", weight " + strconv.Itoa(*res.Weight)
	}
	return res
}

// tail is an io.Writer that keeps the last max bytes written and never
// blocks the writer.
type tail struct {
	max       int
	buf       []byte
	truncated bool
}

func (t *tail) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		t.truncated = true
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.truncated = true
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tail) bytes() []byte { return t.buf }

// weight parses a last line "weight N"; nil if there is none.
func (t *tail) weight() *int {
	b := bytes.TrimRight(t.buf, " \t\r\n")
	i := bytes.LastIndexByte(b, '\n')
	if i < 0 && t.truncated {
		return nil // the start of the line was cut off
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) != 2 || f[0] != "weight" {
		return nil
	}
	w, err := strconv.ParseUint(f[1], 10, 16)
	if err != nil {
		return nil
	}
	v := int(w)
	return &v
}

// lastLine is b's last non-empty line, for Detail.
func lastLine(b []byte) string {
	b = bytes.TrimRight(b, " \t\r\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return strings.TrimSpace(string(b))
}

// RunOrdinary runs cmd with ordinary scheduling: a daemon running
// real-time (--realtime-priority) would hand SCHED_RR down to it, and a
// command that spins would then hold a CPU at real-time priority until its
// timeout. The policy is put back as soon as the process exists.
func RunOrdinary(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	if a, err := unix.SchedGetAttr(cmd.Process.Pid, 0); err == nil && a.Policy != unix.SCHED_NORMAL {
		_ = unix.SchedSetAttr(cmd.Process.Pid, &unix.SchedAttr{Policy: unix.SCHED_NORMAL}, 0)
	}
	return cmd.Wait()
}

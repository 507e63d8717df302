// Package notify runs the operator's hook commands on the node's events:
// leadership gained and lost, a VIP added to or removed from an interface,
// a real server's verdict turning up or down, a service gaining or losing
// its quorum. They are keepalived's notify_master, notify_backup, notify_up,
// notify_down, quorum_up and quorum_down, with the event in environment
// variables instead of arguments.
//
// Hooks never hold the daemon up: events queue (bounded) for one worker that
// runs the commands one at a time, in the order the events happened, each
// under a timeout. A full queue drops the event and says so in the log.
// A hook's failure is logged and never acted on. It imports only fsm: the
// daemon hands it the events.
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/ipvsman/ipvsman/director/check"
)

// Kind is what happened.
type Kind string

const (
	Leader    Kind = "leader"     // this node gained leadership (and will hold the VIPs)
	Backup    Kind = "backup"     // this node lost leadership, or started without it
	VIPAdd    Kind = "vip-add"    // a VIP was put on an interface here
	VIPRemove Kind = "vip-remove" // a VIP was taken off an interface here
	Up        Kind = "up"         // a real server's verdict turned up
	Down      Kind = "down"       // a real server's verdict turned down
	// A service gained or lost its quorum (keepalived's quorum_up and
	// quorum_down; fsm/quorum.go).
	QuorumUp   Kind = "quorum-up"
	QuorumDown Kind = "quorum-down"
)

// Kinds lists every kind, in the order the flags present them.
var Kinds = []Kind{Leader, Backup, VIPAdd, VIPRemove, Up, Down, QuorumUp, QuorumDown}

// Event is one thing that happened on this node.
type Event struct {
	Kind    Kind
	VIP     string // VIPAdd, VIPRemove: address; Iface its interface
	Iface   string
	Service string // Up, Down: the service key and the real server
	Server  string
	Reason  string // why, when known (the check's detail, "leadership lost", ...)
	Term    uint64 // Leader, Backup: the Raft term, when known
}

// Config says which command runs for which kind. Commands run with
// /bin/sh -c, so they may carry arguments.
type Config struct {
	Commands map[Kind]string // by kind
	All      string          // run for every event, after the kind's own
	Timeout  time.Duration   // per command; default 10 s
	Queue    int             // events waiting at most; default 1024
	Node     string          // this node's ID, in every event
	Log      *slog.Logger
}

// Notifier delivers events to the hooks. The zero value is not usable; a nil
// *Notifier ignores every event, so a daemon without hooks needs no checks.
type Notifier struct {
	cfg     Config
	queue   chan job
	base    context.Context // cancelled when Close gives up on the queue
	giveUp  context.CancelFunc
	stopped chan struct{}

	mu      sync.Mutex
	seq     uint64
	dropped uint64
}

type job struct {
	ev  Event
	seq uint64
	at  time.Time
}

// New starts the worker, or returns nil when no command is configured.
func New(cfg Config) *Notifier {
	if cfg.All == "" && len(cfg.Commands) == 0 {
		return nil
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 1024
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	n := &Notifier{cfg: cfg, queue: make(chan job, cfg.Queue), stopped: make(chan struct{})}
	n.base, n.giveUp = context.WithCancel(context.Background())
	go n.work(n.queue)
	return n
}

// Notify queues an event; it never blocks.
func (n *Notifier) Notify(ev Event) {
	if n == nil || (n.cfg.Commands[ev.Kind] == "" && n.cfg.All == "") {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.queue == nil {
		return
	}
	n.seq++
	select {
	case n.queue <- job{ev: ev, seq: n.seq, at: time.Now()}:
		if n.dropped > 0 {
			n.cfg.Log.Warn("notify: events were dropped, the hooks could not keep up", "dropped", n.dropped)
			n.dropped = 0
		}
	default:
		n.dropped++
		if n.dropped == 1 {
			n.cfg.Log.Warn("notify: queue full, event dropped", "event", string(ev.Kind), "queue", cap(n.queue))
		}
	}
}

// Close runs the events already queued until ctx ends (a hook running then
// is killed), then stops the worker and waits for it.
func (n *Notifier) Close(ctx context.Context) {
	if n == nil {
		return
	}
	stop := context.AfterFunc(ctx, n.giveUp)
	defer stop()
	n.mu.Lock()
	close(n.queue)
	n.queue = nil // Notify after Close drops the event
	n.mu.Unlock()
	<-n.stopped
	n.giveUp()
}

func (n *Notifier) work(queue <-chan job) {
	defer close(n.stopped)
	for j := range queue {
		for _, c := range []string{n.cfg.Commands[j.ev.Kind], n.cfg.All} {
			if c != "" {
				n.run(c, j)
			}
		}
	}
}

// run runs one command for one event and logs its outcome: one line.
func (n *Notifier) run(command string, j job) {
	ctx, cancel := context.WithTimeout(n.base, n.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Env = append(os.Environ(), Env(n.cfg.Node, j.ev, j.seq, j.at)...)
	// The hook's own children die with it: kill the whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := check.RunOrdinary(cmd) // ordinary scheduling under a real-time daemon
	took := time.Since(start).Round(time.Millisecond)
	switch {
	case err == nil:
		n.cfg.Log.Info("notify: hook ran", "event", string(j.ev.Kind), "seq", j.seq, "command", command, "took", took.String())
	case ctx.Err() != nil:
		why := "its timeout"
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			why = "shutdown"
		}
		n.cfg.Log.Warn("notify: hook killed", "why", why, "event", string(j.ev.Kind), "seq", j.seq, "command", command, "timeout", n.cfg.Timeout.String(), "output", tail(out.Bytes()))
	default:
		n.cfg.Log.Warn("notify: hook failed", "event", string(j.ev.Kind), "seq", j.seq, "command", command, "err", err, "took", took.String(), "output", tail(out.Bytes()))
	}
}

// tail keeps the end of a hook's output for the log line.
func tail(b []byte) string {
	const max = 512
	b = bytes.TrimSpace(b)
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// Env is the event as the hook sees it.
func Env(node string, ev Event, seq uint64, at time.Time) []string {
	env := []string{
		"IPVSMAN_EVENT=" + string(ev.Kind),
		"IPVSMAN_NODE=" + node,
		"IPVSMAN_SEQ=" + strconv.FormatUint(seq, 10),
		"IPVSMAN_TIME=" + at.UTC().Format(time.RFC3339Nano),
	}
	add := func(k, v string) {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	add("IPVSMAN_VIP", ev.VIP)
	add("IPVSMAN_INTERFACE", ev.Iface)
	add("IPVSMAN_SERVICE", ev.Service)
	add("IPVSMAN_SERVER", ev.Server)
	add("IPVSMAN_REASON", ev.Reason)
	if ev.Term > 0 {
		add("IPVSMAN_TERM", fmt.Sprint(ev.Term))
	}
	return env
}

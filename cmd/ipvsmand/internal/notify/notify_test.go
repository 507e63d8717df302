package notify

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// syncBuf is a log sink the worker and the test share.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// record is a hook that appends its event's variables to a file, one line
// per run.
func record(file string) string {
	return `printf '%s|%s|%s|%s|%s|%s|%s|%s\n' "$IPVSMAN_SEQ" "$IPVSMAN_EVENT" "$IPVSMAN_NODE" "$IPVSMAN_VIP" "$IPVSMAN_INTERFACE" "$IPVSMAN_SERVICE" "$IPVSMAN_SERVER" "$IPVSMAN_TERM" >> ` + file
}

func lines(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestHooksRunInOrderWithTheEvent(t *testing.T) {
	dir := t.TempDir()
	kinds, all := filepath.Join(dir, "kinds"), filepath.Join(dir, "all")
	cmds := map[Kind]string{}
	for _, k := range Kinds {
		cmds[k] = record(kinds)
	}
	n := New(Config{Commands: cmds, All: record(all), Node: "d1", Log: slog.New(slog.NewTextHandler(&syncBuf{}, nil))})
	n.Notify(Event{Kind: Leader, Term: 7})
	n.Notify(Event{Kind: VIPAdd, VIP: "10.0.0.10", Iface: "eth0"})
	n.Notify(Event{Kind: Down, Service: "tcp:10.0.0.10:80", Server: "10.3.0.11:80"})
	n.Notify(Event{Kind: VIPRemove, VIP: "10.0.0.10", Iface: "eth0"})
	n.Notify(Event{Kind: Backup, Term: 8})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.Close(ctx)

	want := []string{
		"1|leader|d1|||||7",
		"2|vip-add|d1|10.0.0.10|eth0|||",
		"3|down|d1|||tcp:10.0.0.10:80|10.3.0.11:80|",
		"4|vip-remove|d1|10.0.0.10|eth0|||",
		"5|backup|d1|||||8",
	}
	for _, f := range []string{kinds, all} {
		if got := lines(t, f); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n%s\nwant:\n%s", filepath.Base(f), strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// A hook that hangs is killed at its timeout, with its children, and the
// next event's hook still runs; the daemon's calls never wait for it.
func TestSlowHookNeverHoldsTheDaemon(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	logs := &syncBuf{}
	n := New(Config{
		Commands: map[Kind]string{
			Leader: "sleep 60 & sleep 60",
			Backup: record(out),
		},
		Timeout: 200 * time.Millisecond,
		Queue:   4,
		Node:    "d2",
		Log:     slog.New(slog.NewTextHandler(logs, nil)),
	})
	start := time.Now()
	for range 50 { // far more than the queue holds
		n.Notify(Event{Kind: Leader})
	}
	n.Notify(Event{Kind: Backup})
	if took := time.Since(start); took > time.Second {
		t.Errorf("51 Notify calls took %v while a hook hung", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.Close(ctx)
	if !strings.Contains(logs.String(), "notify: hook killed") || !strings.Contains(logs.String(), "why=\"its timeout\"") {
		t.Errorf("no line about the killed hook:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "notify: queue full, event dropped") {
		t.Errorf("no line about the dropped events:\n%s", logs.String())
	}
	// The backup event came after the queue was full: dropped, and said so.
	if _, err := os.Stat(out); err == nil {
		t.Errorf("the backup hook ran although its event was dropped: %v", lines(t, out))
	}
}

// Close gives up on the queue when its context ends, killing the hook that
// runs, and returns.
func TestCloseGivesUp(t *testing.T) {
	n := New(Config{Commands: map[Kind]string{Leader: "sleep 60"}, Timeout: time.Minute, Log: slog.New(slog.NewTextHandler(&syncBuf{}, nil))})
	n.Notify(Event{Kind: Leader})
	n.Notify(Event{Kind: Leader})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	n.Close(ctx)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Close took %v with a 300 ms context", took)
	}
	n.Notify(Event{Kind: Leader}) // after Close: dropped, no panic
}

func TestNoHooksNoNotifier(t *testing.T) {
	var n *Notifier = New(Config{})
	if n != nil {
		t.Fatal("New without commands started a worker")
	}
	n.Notify(Event{Kind: Leader})
	n.Close(context.Background())
}

func TestVerdicts(t *testing.T) {
	s := "tcp:10.0.0.10:80"
	k := func(server string) string { return fsm.VerdictKey(s, server) }
	before := map[string]fsm.Verdict{
		k("10.3.0.1:80"): {Health: fsm.HealthUp},
		k("10.3.0.2:80"): {Health: fsm.HealthUp},
		k("10.3.0.3:80"): {Health: fsm.HealthDown},
		k("10.3.0.4:80"): {Health: fsm.HealthUp}, // removed: no event
	}
	after := map[string]fsm.Verdict{
		k("10.3.0.1:80"): {Health: fsm.HealthUp},                               // unchanged
		k("10.3.0.2:80"): {Health: fsm.HealthDown, Reason: "connect: refused"}, // down
		k("10.3.0.3:80"): {Health: fsm.HealthUp},                               // up
		k("10.3.0.5:80"): {Health: fsm.HealthUp},                               // new, up
		k("10.3.0.6:80"): {Health: fsm.HealthUnknown},                          // new, unknown: none
	}
	var got []string
	for _, e := range Verdicts(before, after) {
		got = append(got, string(e.Kind)+" "+e.Service+" "+e.Server+" "+e.Reason)
	}
	want := []string{
		"down tcp:10.0.0.10:80 10.3.0.2:80 connect: refused",
		"up tcp:10.0.0.10:80 10.3.0.3:80 ",
		"up tcp:10.0.0.10:80 10.3.0.5:80 ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("transitions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

package vip

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/skip"
	"golang.org/x/sys/unix"
)

// A daemon running real-time hands SCHED_RR down to what it starts; a
// track script must run with ordinary scheduling, or one that spins would
// hold a CPU at real-time priority.
func TestScriptsRunWithOrdinaryScheduling(t *testing.T) {
	if os.Geteuid() != 0 {
		skip.Now(t, "needs root (SCHED_RR)")
	}
	// Children are forked from the calling thread: make it real-time.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_RR, Priority: 1}, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetAttr(0, old, 0)

	// Without the reset, the child is real-time: the test can fail.
	out, err := exec.Command("/bin/sh", "-c", "chrt -p $$").Output()
	if err != nil || !strings.Contains(string(out), "SCHED_RR") {
		t.Fatalf("a plain child: %q, %v; want SCHED_RR inherited", out, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := runScript(ctx, "chrt -p $$ | grep -q SCHED_OTHER"); err != nil {
		t.Fatalf("a track script does not run with ordinary scheduling: %v", err)
	}
}

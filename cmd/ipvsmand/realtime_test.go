package main

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ipvsman/ipvsman/test/skip"
)

// policies returns every thread's scheduling policy.
func policies(t *testing.T) map[int]int {
	t.Helper()
	tids, err := tasks()
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for _, tid := range tids {
		p, err := scheduler(tid)
		if err == unix.ESRCH {
			continue
		}
		if err != nil {
			t.Fatalf("sched_getscheduler(%d): %v", tid, err)
		}
		out[tid] = p
	}
	return out
}

// lockedThreads parks n goroutines, each on an OS thread of its own (so
// the runtime has to start threads), until the returned func is called.
func lockedThreads(n int) (release func()) {
	var started, done sync.WaitGroup
	stop := make(chan struct{})
	for range n {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			runtime.LockOSThread() // the thread ends with the goroutine: a fresh one each time
			started.Done()
			<-stop
		}()
	}
	started.Wait()
	return func() { close(stop); done.Wait() }
}

func TestSetRealtimeEveryThread(t *testing.T) {
	if os.Geteuid() != 0 {
		skip.Now(t, "needs root (SCHED_RR)")
	}
	release := lockedThreads(4)
	defer release()
	if len(policies(t)) < 5 {
		t.Fatalf("want several threads to set, have %v", policies(t))
	}
	t.Cleanup(func() {
		// The other tests of this binary run with ordinary scheduling.
		for tid := range policies(t) {
			_ = setScheduler(tid, schedOther, 0)
		}
	})
	// Counted before the call: the runtime may start a thread after it
	// returns, cloned from one already set (the loop below checks it).
	before := len(policies(t))
	n, err := setRealtime(1)
	if err != nil {
		t.Fatal(err)
	}
	if n < before {
		t.Errorf("set %d threads, the process had %d before the call", n, before)
	}
	for tid, p := range policies(t) {
		if p != unix.SCHED_RR {
			t.Errorf("thread %d: policy %d after setRealtime, want SCHED_RR (%d)", tid, p, unix.SCHED_RR)
		}
	}
	// Threads the runtime starts afterwards inherit the policy from the
	// thread that clones them.
	release2 := lockedThreads(4)
	defer release2()
	for tid, p := range policies(t) {
		if p != unix.SCHED_RR {
			t.Errorf("thread %d started after setRealtime: policy %d, want SCHED_RR (%d)", tid, p, unix.SCHED_RR)
		}
	}
}

// TestRealtimeCheckPlanted plants the fault the test above must catch: one
// thread left at SCHED_OTHER is seen.
func TestRealtimeCheckPlanted(t *testing.T) {
	if os.Geteuid() != 0 {
		skip.Now(t, "needs root (SCHED_RR)")
	}
	t.Cleanup(func() {
		for tid := range policies(t) {
			_ = setScheduler(tid, schedOther, 0)
		}
	})
	if _, err := setRealtime(1); err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self := unix.Gettid()
	if err := setScheduler(self, schedOther, 0); err != nil {
		t.Fatal(err)
	}
	var other []int
	for tid, p := range policies(t) {
		if p != unix.SCHED_RR {
			other = append(other, tid)
		}
	}
	if !slices.Equal(other, []int{self}) {
		t.Fatalf("threads not SCHED_RR: %v, want exactly the planted %d", other, self)
	}
}

func TestSetRealtimeRefusesBadPriority(t *testing.T) {
	for _, p := range []int{-1, 100} {
		if n, err := setRealtime(p); err == nil || n != 0 {
			t.Errorf("setRealtime(%d) = %d, %v; want an error and nothing set", p, n, err)
		}
	}
}

func TestParseTIDs(t *testing.T) {
	got, err := parseTIDs([]string{"12", "3", "40"})
	if err != nil || !slices.Equal(got, []int{3, 12, 40}) {
		t.Fatalf("parseTIDs = %v, %v", got, err)
	}
	for _, bad := range [][]string{{"3", "self"}, {"0"}, {"-4"}} {
		if _, err := parseTIDs(bad); err == nil {
			t.Errorf("parseTIDs(%q): no error", bad)
		}
	}
}

// A refused setting is a warning in the log, and the daemon goes on.
func TestRealtimeFailureIsAWarning(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	realtime{priority: 100}.apply(log)
	if out := buf.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "real-time scheduling not set") {
		t.Fatalf("log: %q", out)
	}
}

// schedOther is SCHED_OTHER, Linux's ordinary policy (x/sys/unix has no
// name for it).
const schedOther = 0

// Bulk work leaves real-time scheduling for as long as it runs, on its
// own thread, and the thread gets it back afterwards; nested calls and a
// daemon without real-time run the work as is.
func TestOrdinaryLeavesRealtimeForBulkWork(t *testing.T) {
	if os.Geteuid() != 0 {
		skip.Now(t, "needs root (SCHED_RR)")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	if err := setScheduler(tid, unix.SCHED_RR, 3); err != nil {
		t.Fatal(err)
	}
	defer setScheduler(tid, unix.SCHED_NORMAL, 0)
	policy := func() int {
		p, err := scheduler(unix.Gettid())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	rt := realtime{priority: 3}
	ran := 0
	rt.ordinary(func() {
		ran++
		if p := policy(); p != unix.SCHED_NORMAL {
			t.Errorf("bulk work ran with policy %d, want SCHED_NORMAL (%d)", p, unix.SCHED_NORMAL)
		}
		if a, err := unix.SchedGetAttr(unix.Gettid(), 0); err != nil || a.Nice != bulkNice {
			t.Errorf("bulk work ran at %+v (%v), want nice %d", a, err, bulkNice)
		}
		rt.ordinary(func() {
			ran++
			if p := policy(); p != unix.SCHED_NORMAL {
				t.Errorf("nested bulk work ran with policy %d", p)
			}
		})
	})
	if p := policy(); p != unix.SCHED_RR {
		t.Errorf("after bulk work the thread has policy %d, want SCHED_RR (%d) back", p, unix.SCHED_RR)
	}
	realtime{}.ordinary(func() {
		ran++
		if p := policy(); p != unix.SCHED_RR {
			t.Errorf("without --realtime-priority the work changed the policy to %d", p)
		}
	})
	if ran != 3 {
		t.Fatalf("ran %d of 3 pieces of work", ran)
	}
}

// niceChild is set in the child process TestNiceEveryThread starts: raising
// the nice value needs no privilege but cannot be undone, so it is done in
// a process of its own.
const niceChild = "IPVSMAND_TEST_NICE_CHILD"

func TestNiceEveryThread(t *testing.T) {
	if os.Getenv(niceChild) != "" {
		release := lockedThreads(4)
		defer release()
		n, err := setNice(7)
		if err != nil {
			t.Fatal(err)
		}
		release2 := lockedThreads(4) // started after: inherit it
		defer release2()
		tids, err := tasks()
		if err != nil {
			t.Fatal(err)
		}
		for _, tid := range tids {
			prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
			if err == unix.ESRCH {
				continue
			}
			// The raw syscall returns 20 - nice.
			if err != nil || 20-prio != 7 {
				t.Errorf("thread %d: nice %d (err %v), want 7", tid, 20-prio, err)
			}
		}
		t.Logf("set %d threads, checked %d", n, len(tids))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNiceEveryThread$", "-test.v")
	cmd.Env = append(os.Environ(), niceChild+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "checked") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestNiceRefusesOutOfRange(t *testing.T) {
	for _, n := range []int{-21, 20} {
		if _, err := setNice(n); err == nil || !strings.Contains(err.Error(), "--nice") {
			t.Errorf("setNice(%d) = %v, want an error naming --nice", n, err)
		}
	}
}

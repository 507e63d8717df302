package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strconv"
	"unsafe"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// realtime is --realtime-priority and --lock-memory: what keepalived does
// for VRRP (vrrp_rt_priority, vrrp_no_swap), so that Raft's heartbeats and
// lease checks are not delayed by other work on the host. Both are off by
// default; a failure to get either is a warning, never fatal (a container
// without CAP_SYS_NICE still runs, only with ordinary scheduling).
type realtime struct {
	priority   int
	nice       int
	lockMemory bool
}

func (r *realtime) register(f *pflag.FlagSet) {
	f.IntVar(&r.priority, "realtime-priority", 0, "run every thread of the daemon with the real-time policy SCHED_RR at this priority (1-99), as keepalived's vrrp_rt_priority does, so that Raft's heartbeats are not delayed by other work on the host; 0: off (ordinary scheduling). Failure is a warning")
	f.IntVar(&r.nice, "nice", 0, "run every thread of the daemon at this nice value (-20 to 19) under ordinary scheduling, as keepalived's vrrp_priority does: the fair scheduler then gives the daemon that much more of a CPU than ordinary work, while its own threads share fairly among themselves; threads running real-time (--realtime-priority) ignore it. 0: unchanged. Failure is a warning")
	f.BoolVar(&r.lockMemory, "lock-memory", false, "lock the daemon's memory (mlockall, current and future) so it is never paged out, as keepalived's vrrp_no_swap does. Failure is a warning")
}

// apply sets what was asked and logs the outcome once. It runs first
// thing in run(): the runtime has only its first few threads then, and
// every thread it starts later is cloned from one of them and inherits the
// policy.
func (r realtime) apply(log *slog.Logger) {
	if r.priority != 0 {
		n, err := setRealtime(r.priority)
		if err != nil {
			log.Warn("real-time scheduling not set; running with ordinary scheduling", "priority", r.priority, "threads_set", n, "err", err)
		} else {
			log.Info("real-time scheduling set", "policy", "SCHED_RR", "priority", r.priority, "threads", n)
		}
	}
	if r.nice != 0 {
		n, err := setNice(r.nice)
		if err != nil {
			log.Warn("nice value not set; running at the inherited one", "nice", r.nice, "threads_set", n, "err", err)
		} else {
			log.Info("nice value set", "nice", r.nice, "threads", n)
		}
	}
	if r.lockMemory {
		if err := lockMemory(); err != nil {
			log.Warn("memory not locked; pages may be swapped out", "err", err)
		} else {
			log.Info("memory locked", "flags", "MCL_CURRENT|MCL_FUTURE")
		}
	}
}

// setRealtime sets SCHED_RR at prio on every thread of this process and
// returns how many it set.
func setRealtime(prio int) (int, error) {
	// Linux's range for SCHED_RR (sched_get_priority_min/max).
	if prio < 1 || prio > 99 {
		return 0, fmt.Errorf("--realtime-priority %d: want 1 to 99 for SCHED_RR, or 0 for off", prio)
	}
	return eachThread(func(tid int) error {
		if err := setScheduler(tid, unix.SCHED_RR, prio); err != nil {
			return fmt.Errorf("sched_setscheduler(%d, SCHED_RR, %d): %w", tid, prio, err)
		}
		return nil
	})
}

// setNice sets the nice value of every thread of this process and returns
// how many it set.
func setNice(nice int) (int, error) {
	if nice < -20 || nice > 19 {
		return 0, fmt.Errorf("--nice %d: want -20 to 19", nice)
	}
	return eachThread(func(tid int) error {
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil {
			return fmt.Errorf("setpriority(%d, %d): %w", tid, nice, err)
		}
		return nil
	})
}

// eachThread calls set on every thread (task) of this process. A thread
// started while the list is read may be missed, and is cloned from a
// thread not yet set: so the list is read again until a pass finds
// nothing left to set (at least twice, at most five times). It returns
// how many threads it set.
func eachThread(set func(tid int) error) (int, error) {
	done := map[int]bool{}
	for pass := 0; pass < 5; pass++ {
		tids, err := tasks()
		if err != nil {
			return len(done), err
		}
		fresh := 0
		for _, tid := range tids {
			if done[tid] {
				continue
			}
			if err := set(tid); err != nil {
				if errors.Is(err, unix.ESRCH) {
					continue // the thread ended meanwhile
				}
				return len(done), err
			}
			done[tid] = true
			fresh++
		}
		if pass > 0 && fresh == 0 {
			return len(done), nil
		}
	}
	return len(done), nil
}

// tasks lists the thread IDs of this process, from /proc/self/task.
func tasks() ([]int, error) {
	d, err := os.Open("/proc/self/task")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	return parseTIDs(names)
}

// parseTIDs turns /proc/self/task's entries into sorted thread IDs.
func parseTIDs(names []string) ([]int, error) {
	var out []int
	for _, n := range names {
		tid, err := strconv.Atoi(n)
		if err != nil || tid <= 0 {
			return nil, fmt.Errorf("/proc/self/task: unexpected entry %q", n)
		}
		out = append(out, tid)
	}
	sort.Ints(out)
	return out, nil
}

// setScheduler is sched_setscheduler(2) on one thread.
func setScheduler(tid, policy, prio int) error {
	param := struct{ priority int32 }{int32(prio)}
	_, _, e := unix.RawSyscall(unix.SYS_SCHED_SETSCHEDULER, uintptr(tid), uintptr(policy), uintptr(unsafe.Pointer(&param)))
	if e != 0 {
		return e
	}
	return nil
}

// scheduler is sched_getscheduler(2) on one thread.
func scheduler(tid int) (int, error) {
	p, _, e := unix.RawSyscall(unix.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(p), nil
}

// lockMemory is mlockall(MCL_CURRENT|MCL_FUTURE).
func lockMemory() error {
	return unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE)
}

// ordinary runs f on its own OS thread at ordinary scheduling (SCHED_NORMAL,
// nice bulkNice) when the daemon runs real-time, and as is otherwise. It is
// for the daemon's bulk work: decoding and applying a large write, a
// snapshot, a restore. At real-time priority such work runs until Linux's
// round-robin slice (100 ms) expires before any other thread of equal
// priority, such as another daemon's Raft heartbeat on a shared host, gets
// the CPU; a leader lease is shorter than that. Below real-time, every
// real-time thread preempts it at once.
//
// Not lower than nice -20: the garbage collector stops every goroutine of
// the daemon, the real-time ones included, and runs its stop-the-world
// phases on whichever thread started the cycle, often this one. At nice 0
// on a host full of ordinary work that thread gets a small share of a CPU
// and the stop lasted seconds (measured: 3.9 s); at -20 it gets nearly a
// whole CPU against ordinary work.
//
// Calls nest: a thread already at ordinary scheduling runs f as is.
const bulkNice = -20

func (r realtime) ordinary(f func()) {
	if r.priority == 0 {
		f()
		return
	}
	runtime.LockOSThread()
	tid := unix.Gettid()
	if p, err := scheduler(tid); err != nil || p != unix.SCHED_RR {
		runtime.UnlockOSThread()
		f()
		return
	}
	if err := unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL, Nice: bulkNice}, 0); err != nil {
		runtime.UnlockOSThread()
		f()
		return
	}
	defer func() {
		// A thread that cannot be put back stays locked to this
		// goroutine, so the runtime never hands it work that expects
		// real-time scheduling.
		if setScheduler(tid, unix.SCHED_RR, r.priority) == nil {
			runtime.UnlockOSThread()
		}
	}()
	f()
}

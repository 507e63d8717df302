package main

import (
	"log/slog"
	"os"
	"runtime"
)

// spareProcs is how many more Go processors (GOMAXPROCS) the daemon runs
// than the CPUs it may use.
//
// The runtime stops a goroutine for the garbage collector's stack scan
// only at a safe point, and copying or clearing one large buffer (a write
// of 100,000 real servers is several of them, each megabytes) has none:
// the collector's worker spins on its processor until the copy ends, and
// the copy holds another. With as many processors as CPUs (two here) that
// was every processor, so no timer fired and Raft's heartbeats stopped for
// 80 to 270 ms, past the 150 ms lease (runtime traces of the leader during
// make bench-writes, docs/timing.md). Two spare processors keep the
// heartbeats running beside such a pair; the kernel shares the CPUs among
// the threads as before.
const spareProcs = 2

// procsFor is the GOMAXPROCS to run with: the runtime's default plus the
// spares, unless the operator set GOMAXPROCS in the environment.
func procsFor(current int, fromEnv bool) int {
	if fromEnv {
		return current
	}
	return current + spareProcs
}

// setProcs applies procsFor and logs the outcome once.
func setProcs(log *slog.Logger) {
	_, fromEnv := os.LookupEnv("GOMAXPROCS")
	cur := runtime.GOMAXPROCS(0)
	n := procsFor(cur, fromEnv)
	if n != cur {
		runtime.GOMAXPROCS(n)
	}
	log.Info("go processors", "gomaxprocs", n, "cpus", runtime.NumCPU(), "from_environment", fromEnv)
}

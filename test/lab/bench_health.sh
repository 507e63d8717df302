#!/usr/bin/env bash
# make bench-health: boots the lab VM and compares ipvsman's HTTP checks
# (GET /, 200, every 1 s) with keepalived's checker, one after the other in
# the same VM against one local responder (test/lab/bench_health_test.go,
# build tags lab+labbench):
#   1. a sweep of keepalived alone up LADDER to the sustainable rate: the
#      most checks it holds at 1 s with no healthy server marked down;
#   2. ROUNDS rounds of each there, interleaved: CPU per 1,000 answered
#      checks per round, the ratio per round and its min / median / max
#      (cpu_vs_keepalived is the median);
#   3. CHECKS (overload) asked of each: false_downs_* and
#      effective_interval_*_s, how each gives way;
#   4. a storm of CHECKS transitions read back from the Raft log
#      (storm_entries_per_tick; STORM=0 skips it).
# About 15 minutes with the defaults. Figures are only comparable when no
# other VM shares the host's CPUs.
#
# Knobs (environment): CHECKS=5000, LADDER=100,250,500,750,1000,1500,2000,3000,
# RATE= (no sweep: the rounds at this many checks, for a VM too busy for
# any rung to hold), ROUNDS=3, WINDOW=30s (each round's measured window), STORM=1,
# PROFILE=1 (ipvsmand's CPU profile of each of its windows:
# logs/ipvsmand-LABEL.cpu.pprof), DAEMON_ENV="NAME=value ..." (ipvsmand's
# extra environment, e.g. GOMAXPROCS=1), STRACE=1 (strace -c -f of each
# checker in its window: logs/LABEL-TOOL.strace; a diagnosis, which slows the
# checkers), STRACE=perf (perf stat's counts of each checker's system calls
# and context switches instead, at little cost: logs/LABEL-TOOL.strace.perf).
# keepalived runs from the host's root file system, which the VM mounts:
# Debian's package is installed on the host if it is missing.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${LAB_WORK:-$REPO/.lab/bench-health}
echo "building the binaries and booting the lab VM (Debian kernel under qemu; a sweep, ${ROUNDS:-3} rounds of each checker and an overload, windows of ${WINDOW:-30s}: about 15 minutes)..."
. "$REPO/test/lab/build.sh"
lab_keepalived bench-health
lab_build "$WORK" 'lab labbench' bench.test
# The processes' output (ipvsmand.log, keepalived and responder logs) stays in $WORK/logs.
export LAB_ENV_BENCH_CHECKS=${CHECKS:-5000} LAB_ENV_BENCH_LADDER=${LADDER:-} LAB_ENV_BENCH_RATE=${RATE:-} LAB_ENV_BENCH_ROUNDS=${ROUNDS:-3} LAB_ENV_BENCH_STORM=${STORM:-1} LAB_ENV_BENCH_WINDOW=${WINDOW:-30s} LAB_ENV_BENCH_OUT=$WORK/logs LAB_ENV_BENCH_PROFILE=${PROFILE:-} LAB_ENV_BENCH_DAEMON_ENV=${DAEMON_ENV:-} LAB_ENV_BENCH_STRACE=${STRACE:-}
# The VM's own limit (run.sh's LAB_TIMEOUT) above the test's.
export LAB_TIMEOUT=${LAB_TIMEOUT:-3000}
exec "$REPO/test/lab/vm/run.sh" "$WORK" -- ./bench.test -test.run '^TestBenchHealth$' -test.v -test.timeout 45m

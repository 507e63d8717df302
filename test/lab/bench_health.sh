#!/usr/bin/env bash
# make bench-health: boots the lab VM and measures 5,000 HTTP checks at a
# 1 s interval against one local responder, ipvsman's leader next to
# keepalived's checker (same checks, same VM, one after the other), and a
# storm of 5,000 transitions read back from the Raft log
# (test/lab/bench_health_test.go, build tags lab+labbench). Ends with
# cpu_vs_keepalived and storm_entries_per_tick.
#
# Knobs (environment): CHECKS=5000, WINDOW=60s (each side's measured window),
# PROFILE=1 (ipvsmand's CPU profile of its window: logs/ipvsmand.cpu.pprof),
# DAEMON_ENV="NAME=value ..." (ipvsmand's extra environment, e.g. GOMAXPROCS=1),
# STRACE=1 (strace -c -f of each checker in its window: logs/NAME.strace; a
# diagnosis, which slows the checkers).
# keepalived runs from the host's root file system, which the VM mounts:
# Debian's package is installed on the host if it is missing.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${LAB_WORK:-$REPO/.lab/bench-health}
if ! command -v keepalived >/dev/null 2>&1 && [ ! -x /usr/sbin/keepalived ]; then
	echo "bench-health: installing keepalived (the baseline)"
	sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends keepalived >/dev/null
fi
echo "building the binaries and booting the lab VM (Debian kernel under qemu; two windows of ${WINDOW:-60s} and set-up: several minutes)..."
. "$REPO/test/lab/build.sh"
lab_build "$WORK" 'lab labbench' bench.test
# The processes' output (ipvsmand.log, keepalived and responder logs) stays in $WORK/logs.
export LAB_ENV_BENCH_CHECKS=${CHECKS:-5000} LAB_ENV_BENCH_WINDOW=${WINDOW:-60s} LAB_ENV_BENCH_OUT=$WORK/logs LAB_ENV_BENCH_PROFILE=${PROFILE:-} LAB_ENV_BENCH_DAEMON_ENV=${DAEMON_ENV:-} LAB_ENV_BENCH_STRACE=${STRACE:-}
exec "$REPO/test/lab/vm/run.sh" "$WORK" -- ./bench.test -test.run '^TestBenchHealth$' -test.v -test.timeout 20m

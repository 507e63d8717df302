#!/usr/bin/env bash
# make bench-scale: boots the lab VM (4 GiB) and runs the largest published
# keepalived configuration's shape, 2,277 virtual services x 37,205 real
# servers (generated), on three ipvsman directors, then the same
# configuration in keepalived's checker (test/lab/bench_scale_test.go, build
# tags lab+labbench). Ends with scale_apply_s, propagation_p50_ms,
# propagation_p99_ms, resync_cpu_pct, rss_mb per daemon, false_downs,
# keepalived_reload_s and single_change_vs_keepalived_reload.
#
# Knobs (environment): SERVICES=2277, SERVERS=37205, CHECKS=2000 (servers
# with an HTTP check every 6 s), CHANGES=50 (single weight changes),
# WINDOW=60s (the quiet window of resync_cpu_pct), ROUNDS=3 (keepalived
# reloads), RESYNC= (ipvsmand --resync; empty: its default), LAB_MEM=4096.
# keepalived runs from the host's root file system, which the VM mounts:
# Debian's package is installed on the host if it is missing.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${LAB_WORK:-$REPO/.lab/bench-scale}
echo "building the binaries and booting the lab VM (Debian kernel under qemu; the full shape takes a long while under emulation)..."
. "$REPO/test/lab/build.sh"
lab_keepalived bench-scale
lab_build "$WORK" 'lab labbench' bench.test
# The processes' output (d1.log ... and the keepalived and responder logs) stays in $WORK/logs.
export LAB_MEM=${LAB_MEM:-4096} LAB_TIMEOUT=${LAB_TIMEOUT:-5400}
export LAB_ENV_SCALE_SERVICES=${SERVICES:-2277} LAB_ENV_SCALE_SERVERS=${SERVERS:-37205} LAB_ENV_SCALE_CHECKS=${CHECKS:-2000} \
	LAB_ENV_SCALE_CHANGES=${CHANGES:-50} LAB_ENV_SCALE_WINDOW=${WINDOW:-60s} LAB_ENV_SCALE_ROUNDS=${ROUNDS:-3} \
	LAB_ENV_SCALE_RESYNC=${RESYNC:-} LAB_ENV_SCALE_OUT=$WORK/logs
exec "$REPO/test/lab/vm/run.sh" "$WORK" -- ./bench.test -test.run '^TestBenchScale$' -test.v -test.timeout 85m

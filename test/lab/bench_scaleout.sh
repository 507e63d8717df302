#!/usr/bin/env bash
# make bench-scaleout: boots the lab VM and runs every director active
# behind an ECMP router (BIRD with BFD and layer-4 multipath hashing in the
# client's namespace), test/lab/bench_scaleout_test.go, build tags
# lab+labbench. Ends with the figures, one "name: value" line each:
# scaleout_min_share_pct, mh_moved_pct, scaleout_failover_ms,
# scaleout_longest_outage_ms, scaleout_survived_pct,
# scaleout_drain_failed_requests, scaleout_drain_s (and each round's line).
#
# Knobs (environment): ROUNDS=3 (share, failover and drain rounds),
# CONNS=900 (new connections per share round), BFD=on (off: the router and
# the directors run BGP alone, so a crash is noticed by the hold time),
# LINKCUT=on (off: the crash is kill -9 alone), BFD_MS=200 (BFD interval;
# multiplier 3), ADD=1 (real servers mh_moved_pct adds; 2 shows it fail),
# SYNC=on (off: no connection sync; connections go on through sloppy_tcp
# and mh alone).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${LAB_WORK:-$REPO/.lab/bench-scaleout}
echo "building the binaries and booting the lab VM (Debian kernel under qemu)..."
. "$REPO/test/lab/build.sh"
lab_build "$WORK" 'lab labbench' bench.test
# The processes' output (d1.log ... and labtool's) stays in $WORK/logs.
export LAB_TIMEOUT=${LAB_TIMEOUT:-2700}
export LAB_ENV_SCALEOUT_ROUNDS=${ROUNDS:-3} LAB_ENV_SCALEOUT_CONNS=${CONNS:-900} \
	LAB_ENV_SCALEOUT_BFD=${BFD:-on} LAB_ENV_SCALEOUT_LINKCUT=${LINKCUT:-on} \
	LAB_ENV_SCALEOUT_BFD_MS=${BFD_MS:-200} LAB_ENV_SCALEOUT_ADD=${ADD:-1} LAB_ENV_SCALEOUT_SYNC=${SYNC:-on} LAB_ENV_SCALEOUT_OUT=$WORK/logs
status=0
"$REPO/test/lab/vm/run.sh" "$WORK" -- ./bench.test -test.run '^TestBenchScaleout$' -test.v -test.timeout 40m | tee "$WORK/output.txt" || status=$?
echo "--- bench-scaleout figures ---"
grep -E '^(scaleout_|mh_moved_)' "$WORK/output.txt" || true
exit "$status"

#!/usr/bin/env bash
# make bench-apply: boots the lab VM and times the reconciler's full apply of
# 1,000 services x 10 real servers against ipvsadm -R of the same rules, and
# one weight change (test/lab/bench_apply_test.go, build tags lab+labbench).
# Ends with full_apply_vs_ipvsadm_restore and single_change_vs_full_apply.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${LAB_WORK:-$REPO/.lab/bench}
echo "building the binaries and booting the lab VM (Debian kernel under qemu; a few minutes)..."
. "$REPO/test/lab/build.sh"
lab_build "$WORK" 'lab labbench' bench.test
exec "$REPO/test/lab/vm/run.sh" "$WORK" -- ./bench.test -test.run '^TestBenchApply$' -test.v -test.timeout 20m

#!/usr/bin/env bash
# Runs the lab tests (build tag "lab") inside the VM with real IPVS:
# builds static binaries and the test binary on the host, boots the VM once,
# runs the tests there, and ends with "lab: N passed, N failed".
# Usage: test/lab/e2e.sh [go test flags for the lab binary, e.g. -test.run Plain]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${LAB_WORK:-$REPO/.lab/e2e}
. "$REPO/test/lab/build.sh"
lab_build "$WORK" lab lab.test

status=0
# The whole lab tier takes about 20 minutes under emulation; qemu is killed
# after 30 (LAB_TIMEOUT overrides).
export LAB_TIMEOUT=${LAB_TIMEOUT:-1800}
"$REPO/test/lab/vm/run.sh" "$WORK" -- ./lab.test -test.v -test.timeout 28m "$@" | tee "$WORK/output.txt" || status=$?

passed=$(grep -c '^--- PASS' "$WORK/output.txt" || true)
failed=$(grep -c '^--- FAIL' "$WORK/output.txt" || true)
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi # the VM or the binary died
echo "lab: $passed passed, $failed failed"
exit "$status"

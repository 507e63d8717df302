#!/usr/bin/env bash
# Runs the lab tests (build tag "lab") inside the VM with real IPVS:
# builds static binaries and the test binary on the host, boots the VM once,
# runs the tests there, and ends with "lab: N passed, N failed"; a run in
# which no test ran fails.
# Usage: test/lab/e2e.sh [go test flags for the lab binary, e.g. -test.run Plain]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${LAB_WORK:-$REPO/.lab/e2e}
. "$REPO/test/lab/build.sh"
. "$REPO/test/lab/count.sh"
lab_build "$WORK" lab lab.test

# CI's "every skip is a failure" (test/skip) reaches the tests in the VM.
if [ -n "${IPVSMAN_NO_SKIP:-}" ]; then export LAB_ENV_IPVSMAN_NO_SKIP=$IPVSMAN_NO_SKIP; fi

status=0
# The whole lab tier takes about 25 minutes under emulation (25.2 in the
# CI run of 2026-12-06); qemu is killed after 45 (LAB_TIMEOUT overrides),
# the tests inside give up after 43.
export LAB_TIMEOUT=${LAB_TIMEOUT:-2700}
"$REPO/test/lab/vm/run.sh" "$WORK" -- ./lab.test -test.v -test.timeout 43m "$@" | tee "$WORK/output.txt" || status=$?

lab_count "$WORK/output.txt" "$status"

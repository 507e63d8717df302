#!/usr/bin/env bash
# Runs the lab tests (build tag "lab") inside the VM with real IPVS:
# builds static binaries and the test binary on the host, boots the VM once,
# runs the tests there, and ends with "lab: N passed, N failed".
# Usage: test/lab/e2e.sh [go test flags for the lab binary, e.g. -test.run Plain]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${LAB_WORK:-$REPO/.lab/e2e}
rm -rf "$WORK"
mkdir -p "$WORK/bin"

export CGO_ENABLED=0
go -C "$REPO" build -o "$WORK/bin/ipvsmand" ./cmd/ipvsmand
go -C "$REPO" build -o "$WORK/bin/ipvsman" ./cmd/ipvsman
go -C "$REPO" build -o "$WORK/bin/labtool" ./test/lab/labtool
go -C "$REPO" test -c -tags lab -o "$WORK/lab.test" ./test/lab/

status=0
LAB_ENV_IPVSMAN_BIN_DIR=/tmp/lab/bin LAB_ENV_LABTOOL=/tmp/lab/bin/labtool \
	"$REPO/test/lab/vm/run.sh" "$WORK" -- ./lab.test -test.v -test.timeout 14m "$@" | tee "$WORK/output.txt" || status=$?

passed=$(grep -c '^--- PASS' "$WORK/output.txt" || true)
failed=$(grep -c '^--- FAIL' "$WORK/output.txt" || true)
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi # the VM or the binary died
echo "lab: $passed passed, $failed failed"
exit "$status"

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
# The whole lab tier's tests take about 13 minutes under emulation (743 s
# on 2026-12-06, with the binaries in the VM's memory); the tests inside
# give up after 28, and qemu is killed after 30 (LAB_TIMEOUT overrides).
export LAB_TIMEOUT=${LAB_TIMEOUT:-1800}
# TestSchedulersLoadOnDemand needs a VM that loaded no scheduler module:
# it gets a boot of its own (LAB_SCHEDULERS=ondemand) after the others,
# when the -test.run given selects it (-test.list answers on the host,
# running nothing). Go's last -test.run/-test.skip wins, so ours go after
# the caller's flags.
ondemand='^TestSchedulersLoadOnDemand$'
run=
for ((i = 1; i <= $#; i++)); do
	case ${!i} in
		-test.run=* | --test.run=*) run=${!i#*=} ;;
		-test.run | --test.run) j=$((i + 1)) && run=${!j:-} ;;
	esac
done
listed=$("$WORK/lab.test" -test.list "${run:-.}" 2>/dev/null || true)
others=$(grep -c -v -x 'TestSchedulersLoadOnDemand' <<<"$listed" || true)
# The coexistence test runs Debian's ldirectord, from the host's root.
if grep -q -x 'TestLdirectordBesideIpvsmand' <<<"$listed"; then lab_ldirectord e2e; fi
: >"$WORK/output.txt"
if [ "${others:-0}" -gt 0 ]; then
	"$REPO/test/lab/vm/run.sh" "$WORK" -- ./lab.test -test.v -test.timeout 28m "$@" -test.skip "$ondemand" | tee -a "$WORK/output.txt" || status=$?
fi
if grep -q -x 'TestSchedulersLoadOnDemand' <<<"$listed"; then
	LAB_SCHEDULERS=ondemand LAB_TIMEOUT=600 "$REPO/test/lab/vm/run.sh" "$WORK" -- ./lab.test -test.v -test.timeout 8m "$@" -test.run "$ondemand" | tee -a "$WORK/output.txt" || status=$?
fi

lab_count "$WORK/output.txt" "$status"

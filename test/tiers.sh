#!/usr/bin/env bash
# make test: runs each tier (a make target) in order, stops at the first that
# fails, and prints how long each took, so that the whole run's budget (45
# minutes on the CI machine) can be kept by the tier that grew.
# Usage: test/tiers.sh TARGET...
set -uo pipefail
MAKE=${MAKE:-make}
if [ $# -eq 0 ]; then
	echo "tiers.sh: no tier given: a run of nothing would say every tier passed" >&2
	exit 2
fi
start=$(date +%s)
took=()
for tier in "$@"; do
	t0=$(date +%s)
	"$MAKE" --no-print-directory "$tier"
	rc=$?
	took+=("$tier $(($(date +%s) - t0))s")
	if [ "$rc" -ne 0 ]; then
		echo "make test: $tier failed (exit $rc); tiers: ${took[*]}" >&2
		exit "$rc"
	fi
done
total=$(($(date +%s) - start))
printf 'make test: all tiers passed in %dm%02ds (%s)\n' $((total / 60)) $((total % 60)) "$(IFS=,; echo "${took[*]}" | sed 's/,/, /g')"

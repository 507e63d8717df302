#!/bin/sh
# Runs every fuzz target in the module for $FUZZTIME, one at a time (go test
# accepts one -fuzz target per run). A finding fails the run and leaves its
# input under testdata/fuzz, which then becomes a regression test.
set -eu
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
n=0
for f in $(git ls-files --cached --others --exclude-standard '*_test.go'); do
	for t in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f"); do
		echo "fuzz: $t ($(dirname "$f")) for $FUZZTIME"
		$GO test -run='^$' -fuzz="^$t\$" -fuzztime="$FUZZTIME" "./$(dirname "$f")" >/tmp/fuzz.$$ 2>&1 || { cat /tmp/fuzz.$$; rm -f /tmp/fuzz.$$; exit 1; }
		n=$((n + 1))
	done
done
rm -f /tmp/fuzz.$$
echo "fuzz: $n targets, no findings"

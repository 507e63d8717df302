#!/usr/bin/env bash
# make lab-shell: the lab VM with the topology and a three-director cluster
# up, and an interactive shell (test/lab/shell_test.go).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${LAB_WORK:-$REPO/.lab/shell}
. "$REPO/test/lab/build.sh"
lab_build "$WORK" 'lab labshell' shell.test
exec "$REPO/test/lab/vm/run.sh" -i "$WORK" -- ./shell.test -test.run '^TestShell$' -test.timeout 0

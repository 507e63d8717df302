#!/usr/bin/env bash
# make lab-shell: the lab VM with the topology and a three-director cluster
# up, and an interactive shell (test/lab/shell_test.go).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${LAB_WORK:-$REPO/.lab/shell}
rm -rf "$WORK"
mkdir -p "$WORK/bin"
export CGO_ENABLED=0
go -C "$REPO" build -o "$WORK/bin/ipvsmand" ./cmd/ipvsmand
go -C "$REPO" build -o "$WORK/bin/ipvsman" ./cmd/ipvsman
go -C "$REPO" build -o "$WORK/bin/labtool" ./test/lab/labtool
go -C "$REPO" test -c -tags 'lab labshell' -o "$WORK/shell.test" ./test/lab/
LAB_ENV_IPVSMAN_BIN_DIR=/tmp/lab/bin LAB_ENV_LABTOOL=/tmp/lab/bin/labtool \
	exec "$REPO/test/lab/vm/run.sh" -i "$WORK" -- ./shell.test -test.run '^TestShell$' -test.timeout 0

#!/usr/bin/env bash
# make demo: boots the lab VM and walks through a three-director ipvsman
# cluster with real IPVS (test/lab/demo_test.go, build tags lab+labdemo).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${LAB_WORK:-$REPO/.lab/demo}
rm -rf "$WORK"
mkdir -p "$WORK/bin"
echo "building the binaries and booting the lab VM (Debian kernel under qemu; about a minute)..."
export CGO_ENABLED=0
go -C "$REPO" build -o "$WORK/bin/ipvsmand" ./cmd/ipvsmand
go -C "$REPO" build -o "$WORK/bin/ipvsman" ./cmd/ipvsman
go -C "$REPO" build -o "$WORK/bin/labtool" ./test/lab/labtool
go -C "$REPO" test -c -tags 'lab labdemo' -o "$WORK/demo.test" ./test/lab/
LAB_ENV_IPVSMAN_BIN_DIR=/tmp/lab/bin LAB_ENV_LABTOOL=/tmp/lab/bin/labtool \
	exec "$REPO/test/lab/vm/run.sh" "$WORK" -- ./demo.test -test.run '^TestDemo$' -test.timeout 10m

#!/usr/bin/env bash
# make demo: boots the lab VM and walks through a three-director ipvsman
# cluster with real IPVS (test/lab/demo_test.go, build tags lab+labdemo).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${LAB_WORK:-$REPO/.lab/demo}
echo "building the binaries and booting the lab VM (Debian kernel under qemu; about a minute)..."
. "$REPO/test/lab/build.sh"
lab_build "$WORK" 'lab labdemo' demo.test
exec "$REPO/test/lab/vm/run.sh" "$WORK" -- ./demo.test -test.run '^TestDemo$' -test.timeout 10m

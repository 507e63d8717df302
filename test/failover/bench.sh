#!/usr/bin/env bash
# make bench-failover: client-visible failover time of ipvsman against
# keepalived (VRRP, advert_int 1 and 0.1) in the same namespace lab, and an
# idle ipvsman run. Root only. README.md in this directory explains it.
#
# Knobs (environment):
#   CYCLES=20    faults per series
#   IDLE=10m     ipvsman idle run without faults (Go duration; 0 skips it)
#   STRESS=10m   ipvsman under load: busy loops on every CPU, large writes
#                back to back, follower restarts (Go duration; 0 skips it)
#   STRESS_SERVERS=5000  real servers in each of the stress run's writes
#   ONLY=        keepalived or ipvsman to run one half
#   TIMEOUT=90m  go test -timeout
#   DAEMON_ARGS=--nice=-20  extra ipvsmand flags; the default is
#                what the packaged unit passes, so the figures are the
#                packaged daemon's (DAEMON_ARGS= for none)
#   DAEMON_ENV=  extra environment for every ipvsmand, e.g. GOGC=400
#   LOGDIR=      copy the daemons' logs there at the end
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}

if [ "$(id -u)" != 0 ]; then
	echo "bench-failover: needs root (network namespaces, veths, a bridge)" >&2
	exit 1
fi
if [ "${ONLY:-}" != ipvsman ] && ! command -v keepalived >/dev/null 2>&1; then
	echo "bench-failover: installing keepalived (the baseline)"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq keepalived >/dev/null
fi

# Static binaries built once, without the race detector: the daemons are
# what is measured, and the test binary would otherwise build its own.
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
CGO_ENABLED=0 $GO build -o "$bin/labtool" ./test/lab/labtool
export LABTOOL=$bin/labtool
if [ "${ONLY:-}" != keepalived ]; then
	CGO_ENABLED=0 $GO build -o "$bin/ipvsmand" ./cmd/ipvsmand
	CGO_ENABLED=0 $GO build -o "$bin/ipvsman" ./cmd/ipvsman
	export IPVSMAN_BIN_DIR=$bin
fi

export CYCLES=${CYCLES:-20} IDLE=${IDLE:-10m} STRESS=${STRESS:-10m} STRESS_SERVERS=${STRESS_SERVERS:-5000} ONLY=${ONLY:-} DAEMON_ARGS=${DAEMON_ARGS---nice=-20} DAEMON_ENV=${DAEMON_ENV:-} LOGDIR=${LOGDIR:-}
$GO test -count=1 -tags failoverbench -run TestFailoverBench -v -timeout "${TIMEOUT:-90m}" ./test/failover/

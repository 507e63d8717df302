# Sourced by e2e.sh, demo.sh and shell.sh: lab_build WORK TAGS TESTBIN
# builds the static binaries and one lab test binary on the host (building
# under emulation would be slow), into WORK, which the VM sees as /tmp/lab.
lab_build() {
	local work=$1 tags=$2 testbin=$3
	local repo
	repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	rm -rf "$work"
	mkdir -p "$work/bin" "$work/bin-next"
	export CGO_ENABLED=0
	go -C "$repo" build -o "$work/bin/ipvsmand" ./cmd/ipvsmand
	go -C "$repo" build -o "$work/bin/ipvsman" ./cmd/ipvsman
	go -C "$repo" build -o "$work/bin/labtool" ./test/lab/labtool
	# The next release, simulated (build tag next): the rolling upgrade's
	# new binaries.
	go -C "$repo" build -tags next -o "$work/bin-next/ipvsmand" ./cmd/ipvsmand
	go -C "$repo" build -tags next -o "$work/bin-next/ipvsman" ./cmd/ipvsman
	go -C "$repo" test -c -tags "$tags" -o "$work/$testbin" ./test/lab/
	# What the tests inside read: prebuilt binaries instead of go build,
	# copied into the VM's memory (run.sh, LAB_LOCAL): run from the share,
	# each start of the CLI cost 2 s under emulation.
	export LAB_LOCAL="bin bin-next"
	export LAB_ENV_IPVSMAN_BIN_DIR=/run/lab/bin LAB_ENV_LABTOOL=/run/lab/bin/labtool \
		LAB_ENV_IPVSMAN_NEXT_BIN_DIR=/run/lab/bin-next
}

# lab_keepalived WHO installs Debian's keepalived on the host when it is
# missing: the benchmarks that compare with it run it from the host's root
# file system, which the VM mounts. WHO names the benchmark in the message.
lab_keepalived() {
	command -v keepalived >/dev/null 2>&1 || [ -x /usr/sbin/keepalived ] && return 0
	echo "$1: installing keepalived (the baseline)"
	local sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends keepalived >/dev/null
}

# lab_ldirectord WHO installs Debian's ldirectord (and ipvsadm, which it
# drives) on the host when missing: the coexistence test runs it beside
# ipvsmand in the VM, from the host's root file system. No daemon starts on
# install (policy-rc.d 101): the test starts its own, with its own config.
lab_ldirectord() {
	[ -x /usr/sbin/ldirectord ] && [ -x /usr/sbin/ipvsadm ] && return 0
	echo "$1: installing ldirectord (the tool ipvsmand must live beside)"
	local sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	local guard=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
		"${sudo[@]}" chmod +x /usr/sbin/policy-rc.d
		guard=1
	fi
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ldirectord ipvsadm >/dev/null
	[ -z "$guard" ] || "${sudo[@]}" rm -f /usr/sbin/policy-rc.d
}

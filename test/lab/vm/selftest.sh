#!/usr/bin/env bash
# selftest.sh: proves the lab works end to end, and times it.
#
#  1. a no-op command: boots, runs, powers off; exit status 0
#  2. IPVS: a virtual service per scheduler module (rr ... lblcr) with
#     ipvsadm, listed by ipvsadm -Ln and /proc/net/ip_vs; a LAB_ENV_ variable
#     (with a space and a quote) arrives intact
#  3. exit status propagation: a command exiting 3 makes run.sh exit 3
#  4. LAB_LOCAL: a directory of WORKDIR copied into the VM's memory
# and prints boot-to-first-command and total seconds, measured on the host
# from run.sh's start. Ends with "N passed, N failed"; exits non-zero if any
# check failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/lab-selftest.XXXXXX") # under /tmp on purpose
trap 'rm -rf "$work"' EXIT

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "selftest: ok   $*"; }
bad() { fail=$((fail + 1)); echo "selftest: FAIL $*"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# run NAME run.sh-args...: runs run.sh, echoing its output with each line
# stamped on arrival; sets rc, t_total and t_first (seconds from the start to
# the first line after "lab: booted", i.e. the command's first output).
run() {
	local name=$1 start now line first=
	shift
	log=$work/$name.log
	start=$EPOCHREALTIME
	set +e
	"$here/run.sh" "$@" 2>&1 | while IFS= read -r line; do
		printf '%s %s\n' "$EPOCHREALTIME" "$line" >>"$log"
		printf '  | %s\n' "$line"
	done
	rc=${PIPESTATUS[0]}
	set -e
	now=$EPOCHREALTIME
	t_total=$(secs "$start" "$now")
	first=$(awk '/ lab: booted in/ { getline; print $1; exit }' "$log")
	t_first=$([ -n "$first" ] && secs "$start" "$first" || echo '?')
	guest_up=$(sed -n 's/.* lab: booted in \([0-9.]*\)s.*/\1/p' "$log" | head -1)
}

# Build (or reuse) the initramfs first so that the timings below are those
# of a warm run; the build time is reported on its own.
start=$EPOCHREALTIME
[ "${LAB_SKIP_DEPS:-}" = 1 ] || "$here/deps.sh"
"$here/initramfs.sh" "${LAB_CACHE:-$(cd "$here/../../.." && pwd)/.lab/cache}" >/dev/null
t_build=$(secs "$start" "$EPOCHREALTIME")
export LAB_SKIP_DEPS=1

echo "selftest: no-op"
run noop "$work/noop" -- sh -c 'echo first-line'
if [ "$rc" -eq 0 ] && grep -q ' first-line$' "$log"; then ok "no-op exits 0"; else bad "no-op: rc=$rc"; fi
t_noop=$t_total t_boot=$t_first t_guest=$guest_up

echo "selftest: IPVS"
scheds="rr wrr lc wlc sh dh mh sed nq fo ovf lblc lblcr"
# shellcheck disable=SC2016 # expanded inside the VM
ipvs_cmd='echo first-line; echo "env: [$SELFTEST_VAR]"
i=0
for s in '"$scheds"'; do
	i=$((i + 1))
	ipvsadm -A -t 10.0.0.$i:80 -s $s || exit 1
done
ipvsadm -A -t 10.0.0.1:80 -s rr 2>/dev/null && exit 1 # a duplicate must fail
ipvsadm -Ln && cat /proc/net/ip_vs'
LAB_ENV_SELFTEST_VAR="a b'c" run ipvs "$work/ipvs" -- sh -c "$ipvs_cmd"
t_ipvs=$t_total
if [ "$rc" -eq 0 ]; then ok "IPVS command exits 0"; else bad "IPVS command: rc=$rc"; fi
if grep -q 'TCP  10\.0\.0\.1:80 rr' "$log" && grep -q '0A000001:0050 rr' "$log"; then
	ok "ipvsadm -Ln and /proc/net/ip_vs list the rr service"
else
	bad "rr service not listed"
fi
i=0 missing=
for s in $scheds; do
	i=$((i + 1))
	grep -q "TCP  10\.0\.0\.$i:80 $s\b" "$log" || missing+=" $s"
done
if [ -z "$missing" ]; then ok "all schedulers usable:$(printf ' %s' $scheds)"; else bad "schedulers missing:$missing"; fi
if grep -q "env: \[a b'c\]" "$log"; then ok "LAB_ENV_SELFTEST_VAR passed intact"; else bad "LAB_ENV_ not passed"; fi

echo "selftest: exit status"
run exit3 "$work/exit3" -- sh -c 'echo first-line; exit 3'
if [ "$rc" -eq 3 ]; then ok "exit 3 propagates (run.sh exited $rc)"; else bad "exit 3: run.sh exited $rc"; fi
t_exit3=$t_total

echo "selftest: LAB_LOCAL"
mkdir -p "$work/local/tools"
printf '#!/bin/sh\necho "local: $0"\n' >"$work/local/tools/hello"
chmod +x "$work/local/tools/hello"
# The copy in memory still runs once the share's file is gone.
LAB_LOCAL=tools run local "$work/local" -- sh -c 'echo first-line; rm /tmp/lab/tools/hello && /run/lab/tools/hello'
if [ "$rc" -eq 0 ] && grep -q 'local: /run/lab/tools/hello$' "$log"; then
	ok "LAB_LOCAL copies a WORKDIR directory into the VM's memory"
else
	bad "LAB_LOCAL: rc=$rc"
fi
if LAB_LOCAL=../x "$here/run.sh" "$work/local" -- true >/dev/null 2>&1; then
	bad "LAB_LOCAL=../x accepted"
else
	ok "LAB_LOCAL refuses a name outside WORKDIR"
fi

echo
echo "selftest: initramfs check/build ${t_build}s"
echo "selftest: boot to first command ${t_boot}s on the host clock (guest uptime ${t_guest}s)"
echo "selftest: total no-op ${t_noop}s, IPVS ${t_ipvs}s, exit-3 ${t_exit3}s"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

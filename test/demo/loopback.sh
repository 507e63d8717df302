#!/usr/bin/env bash
# make demo-loopback: a three-node ipvsman cluster on loopback with
# --ipvs=off. It shows the replicated model, not the kernel: `make demo`
# runs the lab VM with real IPVS.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$PWD/bin
WORK=$(mktemp -d /tmp/ipvsman-demo.XXXXXX)
declare -A PID RAFT API GOSSIP
trap 'for p in "${PID[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# free_port: a random high port nothing listens on (and none handed out yet).
USED=" "
free_port() {
	local p
	while :; do
		p=$(shuf -i 20000-60000 -n 1)
		case $USED in *" $p "*) continue ;; esac
		(echo >/dev/tcp/127.0.0.1/"$p") 2>/dev/null && continue
		USED="$USED$p "; echo "$p"; return
	done
}
# wait_for DESCRIPTION SECONDS COMMAND...: poll until COMMAND succeeds or time is up.
wait_for() {
	local what=$1 secs=$2; shift 2
	local end=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $end ]; then echo "demo: timed out waiting for $what" >&2; exit 1; fi
		sleep 0.1
	done
}
# Loopback only: plain TCP and HTTP are allowed there; off loopback
# ipvsmand needs --tls-cert, --tls-key and --tls-ca (docs/security.md).
ipvsman() { "$BIN/ipvsman" --token-file "$WORK/token" "$@"; }
start() {
	local id=$1; shift
	"$BIN/ipvsmand" --node-id "$id" --data-dir "$WORK/$id" --raft-addr "${RAFT[$id]}" --api-addr "${API[$id]}" \
		--gossip-addr "${GOSSIP[$id]}" --token-file "$WORK/token" --ipvs=off "$@" >>"$WORK/$id.log" 2>&1 &
	PID[$id]=$!
	disown "$!" # no job-control chatter when the demo kills it
}
is_leader() { ipvsman --api "$1" cluster status | grep -q Leader; }

# 0600 from the start: ipvsmand (and the CLI) refuse a token others may read.
(umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/token")
for id in n1 n2 n3; do
	p=$(free_port); RAFT[$id]=127.0.0.1:$p; USED="$USED$p "
	p=$(free_port); API[$id]=127.0.0.1:$p; USED="$USED$p "
	p=$(free_port); GOSSIP[$id]=127.0.0.1:$p; USED="$USED$p "
done

step "1. Start three directors (ipvsmand --ipvs=off) on loopback"
start n1 --bootstrap
wait_for "n1 to lead" 20 is_leader "${API[n1]}"
start n2; start n3
wait_for "n2 API" 20 ipvsman --api "${API[n2]}" cluster status
wait_for "n3 API" 20 ipvsman --api "${API[n3]}" cluster status
ipvsman --api "${API[n2]}" cluster join "${API[n1]}"
ipvsman --api "${API[n3]}" cluster join "${API[n2]}"
# Joiners start as non-voters; the leader promotes them once caught up.
three_up() { [ "$(ipvsman --api "${API[n1]}" cluster status | grep -c -E '^n[123] +voter ')" = 3 ]; }
wait_for "three voters" 20 three_up
ipvsman --api "${API[n1]}" cluster status

step "2. Configure the classic LVS sample through n3, in ipvsadm's language"
cat <<'CMDS' | tee "$WORK/cmds"
-A -t 193.123.45.12:23 -s rr
-a -t 193.123.45.12:23 -r 10.3.0.10 -g
-a -t 193.123.45.12:23 -r 10.3.0.11 -g
-A -t 193.123.45.12:80 -s wlc
-a -t 193.123.45.12:80 -r 10.3.0.10 -g -w 3
-a -t 193.123.45.12:80 -r 10.3.0.11 -g -w 2
CMDS
while read -r line; do
	# shellcheck disable=SC2086
	ipvsman --api "${API[n3]}" $line
done <"$WORK/cmds"

step "3. Every node lists the same table (ipvsman -L -n through each)"
ref=$(ipvsman --api "${API[n1]}" -L -n)
same() { [ "$(ipvsman --api "$1" -L -n)" = "$ref" ]; }
for id in n1 n2 n3; do
	wait_for "$id to list the table" 10 same "${API[$id]}"
	echo "-- through $id:"; ipvsman --api "${API[$id]}" -L -n
done

step "4. A bad command is refused with its reason; nothing changes"
ipvsman --api "${API[n2]}" -a -t 193.123.45.12:80 -r 10.3.0.12 -w 70000 || echo "(exit status $?)"

step "5. Kill the leader with SIGKILL"
for id in n1 n2 n3; do is_leader "${API[$id]}" 2>/dev/null && old=$id && break; done
kill -9 "${PID[$old]}"; unset "PID[$old]"
survivors=(); for id in n1 n2 n3; do [ "$id" != "$old" ] && survivors+=("$id"); done
t0=$(date +%s%N)
new_leader() { ipvsman --api "${API[${survivors[0]}]}" cluster status | grep -E 'Leader' | grep -qv "^$old "; }
wait_for "a new leader" 20 new_leader
echo "killed $old; new leader elected after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
ipvsman --api "${API[${survivors[0]}]}" cluster status

step "6. The cluster carries on: a write through ${survivors[1]}"
ipvsman --api "${API[${survivors[1]}]}" -a -t 193.123.45.12:80 -r 10.3.0.12 -g -w 1
ipvsman --api "${API[${survivors[0]}]}" -L -n

step "7. $old restarts from its data dir and catches up"
start "$old"
ref=$(ipvsman --api "${API[${survivors[1]}]}" -L -n)
wait_for "$old to catch up" 20 same "${API[$old]}"
echo "$old lists the same $(grep -c -E ' (Route|Masq|Tunnel) ' <<<"$ref") real servers as the others"

step "8. The configuration history"
ipvsman --api "${API[$old]}" history
echo
echo "demo done: 3 nodes, $(ipvsman --api "${API[$old]}" history --json | grep -o '"version"' | wc -l) configuration versions, leader failover survived."

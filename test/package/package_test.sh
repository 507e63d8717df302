#!/usr/bin/env bash
# make test-package: build the .deb with `make package`, then check it the
# way an operator meets it: its control data, its files unpacked into a
# fresh root (dpkg -x), a real install, reinstall, removal and purge into
# another fresh root (dpkg --root, maintainer scripts run chrootless), and
# an install and purge in a chroot (scripts run inside; needs root).
# Needs dpkg, systemd (systemd-analyze), groff, man-db, binutils,
# bash-completion and busybox-static; .ci/run installs them. Prints one line
# per check and "package: N checks passed".
set -euo pipefail
cd "$(dirname "$0")/../.."

n=0
ok() { n=$((n + 1)); echo "ok: $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

for tool in dpkg dpkg-deb systemd-analyze groff man readelf; do
	command -v "$tool" >/dev/null || fail "$tool not installed (see .ci/run)"
done

deb=$(make -s --no-print-directory package ${VERSION:+VERSION="$VERSION"} | tail -n 1)
[ -f "$deb" ] || fail "make package printed \"$deb\", not a file"
ok "make package built $deb"

work=$(mktemp -d)
pid=
trap '[ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null; rm -rf "$work"' EXIT

# --- control data ------------------------------------------------------
info=$(dpkg-deb --info "$deb")
field() { dpkg-deb --field "$deb" "$1"; }
[ "$(field Package)" = ipvsman ] || fail "Package: $(field Package)"
[ "$(field Architecture)" = amd64 ] || fail "Architecture: $(field Architecture)"
[ "$(field Recommends)" = ipvsadm ] || fail "Recommends: $(field Recommends), want ipvsadm"
[ -z "$(field Depends)" ] || fail "Depends: $(field Depends): the binaries are static, want none"
version=$(field Version)
[[ $deb == "dist/ipvsman_${version}_amd64.deb" ]] || fail "file name $deb does not carry Version $version"
for s in postinst prerm postrm conffiles; do
	grep -q " $s" <<<"$info" || fail "control archive has no $s"
done
[ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" = /etc/default/ipvsmand ] ||
	fail "conffiles: want exactly /etc/default/ipvsmand"
ok "control: ipvsman $version amd64, Recommends ipvsadm, no Depends, conffile /etc/default/ipvsmand"

echo "--- dpkg-deb --contents $deb"
dpkg-deb --contents "$deb" | awk '{print $1, $2, $6}'
echo "---"

# --- unpacked into a fresh root ----------------------------------------
root="$work/x"
mkdir "$root"
dpkg -x "$deb" "$root"
ok "dpkg -x into a fresh root"

for b in ipvsmand ipvsman; do
	f="$root/usr/sbin/$b"
	[ -f "$f" ] && [ -x "$f" ] || fail "$f: missing or not executable"
	! readelf -l "$f" | grep -q 'program interpreter' || fail "$f is dynamically linked"
done
out=$("$root/usr/sbin/ipvsmand" --version)
[[ $out =~ ^ipvsmand\ [^\ ]+\ \(protocol\ [0-9]+\)$ ]] || fail "ipvsmand --version printed \"$out\""
echo "  $out"
v=${out#ipvsmand }
v=${v%% *}
[ "${v//-/.}" = "$version" ] || fail "ipvsmand reports version $v, the package is $version"
out=$("$root/usr/sbin/ipvsman" version)
[[ $out =~ ^ipvsman\ [^\ ]+\ \(protocol\ [0-9]+\)$ ]] || fail "ipvsman version printed \"$out\""
echo "  $out"
ok "/usr/sbin/ipvsmand and /usr/sbin/ipvsman: static, executable, run, report the package's version"

unit="$root/lib/systemd/system/ipvsmand.service"
[ -f "$unit" ] || fail "no $unit"
[ -f "$root/usr/lib/modules-load.d/ipvsman.conf" ] || fail "no modules-load.d/ipvsman.conf"
# systemd-analyze checks the unit against the host's systemd: the binary
# path is pointed into the unpacked root, man: links at its man pages. It
# reports problems on stderr and still exits 0, so any output fails, but
# for what it says of the host's own units, which it loads too (Debian's
# ldirectord.service, say, draws a deprecation warning).
sed "s|=/usr/sbin/ipvsmand|=$root/usr/sbin/ipvsmand|" "$unit" >"$work/ipvsmand.service"
if ! out=$(MANPATH="$root/usr/share/man" systemd-analyze verify "$work/ipvsmand.service" 2>&1); then
	fail "systemd-analyze verify ipvsmand.service: $out"
fi
out=$(grep -v -E '^/(lib|usr/lib|etc|run)/systemd/system/[^:]+:[0-9]+: ' <<<"$out" || true)
if [ -n "$out" ]; then
	fail "systemd-analyze verify ipvsmand.service: $out"
fi
for want in 'ExecStart=/usr/sbin/ipvsmand ' 'ExecReload=/bin/kill -HUP $MAINPID' 'EnvironmentFile=-/etc/default/ipvsmand' 'Restart=on-failure' \
	'StateDirectory=ipvsman' 'AssertPathExists=/etc/ipvsman/token' 'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW' \
	'ExecStopPost=/usr/sbin/ipvsmand $IPVSMAND_OPTS --release-vips'; do
	grep -qF "$want" "$unit" || fail "ipvsmand.service has no $want"
done
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$unit")
[ -n "$stop" ] && [ "$stop" -gt 25 ] || fail "TimeoutStopSec=$stop: want more than the daemon's 25 s shutdown watchdog"
ok "ipvsmand.service: systemd-analyze verify is silent; stop timeout ${stop}s > 25 s watchdog"

# The unit's command line as systemd runs it: ExecStart, the token path
# pointed at a test token, $IPVSMAND_OPTS split on whitespace. The daemon
# runs the cluster only (--ipvs=off --vips=off: no root, no IPVS) and must
# stop on SIGTERM (KillSignal) with status 0 within TimeoutStopSec.
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
(umask 077; printf '%s\n' 0123456789abcdef0123 >"$work/token") # ipvsmand refuses a token others may read
port=$((20000 + RANDOM % 20000))
IPVSMAND_OPTS="--node-id=pkgtest --data-dir=$work/data --raft-addr=127.0.0.1:$port --api-addr=127.0.0.1:$((port + 1))"
IPVSMAND_OPTS+=" --gossip-addr=127.0.0.1:$((port + 2)) --gossip-profile=local --bootstrap --ipvs=off --vips=off"
cmdline=${exec_start//\/etc\/ipvsman\/token/$work/token}
cmdline=${cmdline/\/usr\/sbin\/ipvsmand/$root/usr/sbin/ipvsmand}
cmdline=${cmdline/\$IPVSMAND_OPTS/$IPVSMAND_OPTS}
# shellcheck disable=SC2086 # split as systemd splits an unquoted $VAR
$cmdline >"$work/daemon.log" 2>&1 &
pid=$!
deadline=$((SECONDS + 30))
until grep -q 'ipvsmand started' "$work/daemon.log"; do
	kill -0 "$pid" 2>/dev/null || fail "ipvsmand ($cmdline) exited: $(cat "$work/daemon.log")"
	[ "$SECONDS" -lt "$deadline" ] || fail "ipvsmand: no \"ipvsmand started\" within 30 s: $(cat "$work/daemon.log")"
	sleep 0.1
done
# ExecReload: SIGHUP reloads and never stops the daemon.
reload=$(sed -n 's/^ExecReload=//p' "$unit")
${reload//\$MAINPID/$pid}
deadline=$((SECONDS + 30))
until grep -q 'msg="reloaded' "$work/daemon.log"; do
	kill -0 "$pid" 2>/dev/null || fail "ipvsmand exited on $reload: $(cat "$work/daemon.log")"
	[ "$SECONDS" -lt "$deadline" ] || fail "ipvsmand: no \"reloaded\" log line within 30 s of $reload: $(cat "$work/daemon.log")"
	sleep 0.1
done
kill -0 "$pid" 2>/dev/null || fail "ipvsmand exited after $reload"
kill -TERM "$pid"
t0=$SECONDS
deadline=$((SECONDS + stop))
while kill -0 "$pid" 2>/dev/null; do
	[ "$SECONDS" -lt "$deadline" ] || fail "ipvsmand still running ${stop}s after SIGTERM: systemd would SIGKILL it"
	sleep 0.1
done
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "ipvsmand exited $rc after SIGTERM: $(cat "$work/daemon.log")"
grep -q 'msg=stopped' "$work/daemon.log" || fail "ipvsmand: no \"stopped\" log line: $(cat "$work/daemon.log")"
took=$((SECONDS - t0))
rm "$work/token"
rc=0
out=$($cmdline 2>&1) || rc=$?
[ "$rc" = 1 ] && grep -q -- "--token-file \"$work/token\": open" <<<"$out" ||
	fail "ipvsmand without its token: status $rc, \"$out\"; want 1 and an error naming --token-file"
ok "ExecStart + IPVSMAND_OPTS: ipvsmand starts, reloads on ExecReload, exits 0 ${took}s after SIGTERM (limit ${stop}s); without the token: ${out##*$'\n'}"

# ExecStopPost as systemd runs it after a crash: in a namespace of its
# own, an interface (one end of a veth pair: the dummy driver is not in
# every kernel) holds the address the data dir's vips.json
# records and one it does not; the command removes the first only, and a
# second run (a clean stop after a crash) changes nothing.
[ "$(id -u)" = 0 ] || fail "the ExecStopPost check needs root (a network namespace)"
stop_post=$(sed -n 's/^ExecStopPost=//p' "$unit")
ns="ipvsman-pkg-$$"
ip netns add "$ns"
trap '[ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null; { ip netns del "$ns" 2>/dev/null || :; }; rm -rf "$work"' EXIT
ip -n "$ns" link add vip0 type veth peer name vip1
ip -n "$ns" link set vip0 up
ip -n "$ns" addr add 192.0.2.10/32 dev vip0
ip -n "$ns" addr add 192.0.2.99/32 dev vip0
printf '[{"prefix":"192.0.2.10/32","interface":"vip0"}]' >"$work/data/vips.json"
cmdline=${stop_post/\/usr\/sbin\/ipvsmand/$root/usr/sbin/ipvsmand}
cmdline=${cmdline/\$IPVSMAND_OPTS/$IPVSMAND_OPTS}
for pass in 1 2; do
	# shellcheck disable=SC2086 # split as systemd splits an unquoted $VAR
	out=$(ip netns exec "$ns" $cmdline 2>&1) || fail "ExecStopPost ($cmdline), pass $pass: $out"
	addrs=$(ip -n "$ns" -o -4 addr show dev vip0)
	! grep -q ' 192.0.2.10/32 ' <<<"$addrs" || fail "ExecStopPost pass $pass left the recorded 192.0.2.10/32: $addrs"
	grep -q ' 192.0.2.99/32 ' <<<"$addrs" || fail "ExecStopPost pass $pass removed 192.0.2.99/32, which vips.json does not record: $addrs"
done
rm "$work/data/vips.json"
out=$(ip netns exec "$ns" $cmdline 2>&1) || fail "ExecStopPost without vips.json: $out"
ip netns del "$ns"
ok "ExecStopPost: removes the address vips.json records and keeps the other, twice in a row; without the file: ${out##*msg=}"

# /etc/default/ipvsmand is a shell fragment with the options off; every
# option it and examples/README.md show exists (but ipvsman's own: --node
# and --dir of `ipvsman tls init`, --dry-run).
(set -u; . "$root/etc/default/ipvsmand"; [ -z "$IPVSMAND_OPTS" ]) || fail "/etc/default/ipvsmand: IPVSMAND_OPTS not empty"
help=$("$root/usr/sbin/ipvsmand" --help)
for opt in $(grep -ho -- '--[a-z][a-z-]*' "$root/etc/default/ipvsmand" examples/README.md | grep -v -- '--now\|--dry-run\|--node$\|--dir$\|-f$' | sort -u); do
	grep -q -- "$opt[ =]" <<<"$help" || grep -q -- "$opt\$" <<<"$help" || fail "option $opt (in /etc/default/ipvsmand or examples/README.md) is not in ipvsmand --help"
done
ok "/etc/default/ipvsmand: IPVSMAND_OPTS empty; every option shown exists"

# Man pages: one per command, found by walking --help rather than by
# trusting the generator; each renders without a groff warning.
commands() { # prints "ipvsman sub sub" paths
	local path=("$@")
	echo "${path[*]}"
	local sub
	for sub in $("$root/usr/sbin/ipvsman" "${path[@]:1}" --help 2>/dev/null | awk '/^Available Commands:/{on=1; next} on && /^$/{on=0} on{print $1}'); do
		[ "$sub" = help ] && continue
		commands "${path[@]}" "$sub"
	done
}
mandir="$root/usr/share/man/man8"
pages=0
for cmd in $(commands ipvsman | tr ' ' '-') ipvsmand; do
	page="$mandir/$cmd.8.gz"
	[ -f "$page" ] || fail "no man page $page"
	th=$(zcat "$page" | grep -m1 '^\.TH')
	[[ $th == ".TH \""*"\" \"8\" \""*"\" \"ipvsman "*"\" \"ipvsman manual\""* ]] || fail "$cmd.8: header $th"
	warn=$(zcat "$page" | groff -man -Tutf8 -ww -z 2>&1) || fail "$cmd.8: groff failed: $warn"
	[ -z "$warn" ] || fail "$cmd.8: groff warnings: $warn"
	man -l "$page" >/dev/null 2>&1 || fail "man -l $cmd.8 failed"
	pages=$((pages + 1))
done
extra=$(comm -13 <( (commands ipvsman | tr ' ' '-'; echo ipvsmand) | sed 's/$/.8.gz/' | sort) <(ls "$mandir" | sort))
[ -z "$extra" ] || fail "man pages for no command: $extra"
zcat "$mandir/ipvsman.8.gz" | grep -q '^\.SH IPVSADM COMMAND LANGUAGE' || fail "ipvsman.8 lacks the ipvsadm language section"
zcat "$mandir/ipvsman.8.gz" | grep -q -- '--add-service *-A' || fail "ipvsman.8 lacks ipvsadm's commands"
for s in SIGNALS FILES 'EXIT STATUS'; do
	zcat "$mandir/ipvsmand.8.gz" | grep -q "^\.SH $s" || fail "ipvsmand.8 lacks $s"
done
! zcat "$mandir"/*.8.gz | grep -qF "\"$(uname -n)\"" || fail "a man page shows this build host's name"
ok "$pages man pages (every ipvsman command, ipvsmand), section 8, render without warnings"

# bash: bash-completion's loader finds the file where the package puts it
# (XDG_DATA_DIRS points it into the unpacked root), and completing
# "ipvsman cluster " offers the cluster subcommands (asked of the binary).
bc=/usr/share/bash-completion/bash_completion
[ -f "$bc" ] || fail "$bc missing: install bash-completion (see .ci/run)"
out=$(PATH="$root/usr/sbin:$PATH" XDG_DATA_DIRS="$root/usr/share" bash --norc -c '
	source '"$bc"'
	__load_completion ipvsman && complete -p ipvsman || exit 1
	COMP_WORDS=(ipvsman cluster ""); COMP_CWORD=2; COMP_LINE="ipvsman cluster "; COMP_POINT=${#COMP_LINE}
	__start_ipvsman 2>/dev/null
	echo "${COMPREPLY[*]}"') || fail "bash completion does not load: $out"
grep -q '^complete .* ipvsman$' <<<"$out" || fail "bash completion: not registered: $out"
[ "$(tail -n 1 <<<"$out")" = "join leave status transfer" ] || fail "bash: \"ipvsman cluster <TAB>\" offers \"$(tail -n 1 <<<"$out")\""
echo "$out" | sed 's/^/  /'
head -n 1 "$root/usr/share/zsh/vendor-completions/_ipvsman" | grep -q '^#compdef ipvsman' || fail "zsh completion: no #compdef ipvsman"
grep -q 'complete -c ipvsman' "$root/usr/share/fish/vendor_completions.d/ipvsman.fish" || fail "fish completion: no complete -c ipvsman"
ok "completions: bash loads from its standard place and completes, zsh and fish present"

doc="$root/usr/share/doc/ipvsman"
for f in copyright examples/README.md examples/web-farm.yaml examples/classic-lvs.topo; do
	[ -f "$doc/$f" ] || fail "no $doc/$f"
done
# Every example, subdirectories kept (examples/import/ too), readable by all.
for f in $(git ls-files examples); do
	got="$doc/examples/${f#examples/}"
	[ -f "$got" ] || fail "examples: $f is not at $got"
	[ "$(stat -c %a "$got")" = 644 ] || fail "$got: mode $(stat -c %a "$got"), want 644"
done
grep -q '^License: Apache-2.0$' "$doc/copyright" && grep -q '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/$' "$doc/copyright" ||
	fail "$doc/copyright: want the Debian copyright format with License: Apache-2.0"
grep -q 'Apache License' LICENSE && grep -q 'Version 2.0, January 2004' LICENSE || fail "LICENSE: not the Apache License 2.0"
ok "/usr/share/doc/ipvsman: copyright (Apache-2.0, Debian's format), every file of examples/ in place"

# --- make install into a fresh DESTDIR ----------------------------------
# The install path for hosts that take no .deb: the same binaries, man
# pages, completions and unit as the package, under PREFIX; the unit names
# the binary where PREFIX put it.
for prefix in /usr /usr/local; do
	dest="$work/install${prefix//\//-}"
	mkdir "$dest"
	make -s --no-print-directory install DESTDIR="$dest" PREFIX="$prefix" ${VERSION:+VERSION="$VERSION"} >"$work/make-install.log" 2>&1 ||
		fail "make install DESTDIR=$dest PREFIX=$prefix: $(cat "$work/make-install.log")"
	p="$dest$prefix"
	for b in ipvsmand ipvsman; do
		[ -f "$p/sbin/$b" ] && [ -x "$p/sbin/$b" ] || fail "make install PREFIX=$prefix: $p/sbin/$b missing or not executable"
	done
	out=$("$p/sbin/ipvsman" version)
	[ "${out% (*}" = "$("$root/usr/sbin/ipvsman" version | sed 's/ (.*//')" ] || fail "make install PREFIX=$prefix: ipvsman version \"$out\", the package's differs"
	unit_i="$dest$prefix/lib/systemd/system/ipvsmand.service"
	[ -f "$unit_i" ] || fail "make install PREFIX=$prefix: no $unit_i"
	grep -q "^ExecStart=$prefix/sbin/ipvsmand " "$unit_i" || fail "make install PREFIX=$prefix: unit ExecStart is $(grep '^ExecStart=' "$unit_i"), want $prefix/sbin/ipvsmand"
	grep -q "^ExecStopPost=$prefix/sbin/ipvsmand " "$unit_i" || fail "make install PREFIX=$prefix: unit ExecStopPost is $(grep '^ExecStopPost=' "$unit_i")"
	got=$(cd "$p/share/man/man8" && ls) || fail "make install PREFIX=$prefix: no man pages in $p/share/man/man8"
	[ "$got" = "$(cd "$mandir" && ls)" ] || fail "make install PREFIX=$prefix: man pages differ from the package's: $(diff <(cd "$mandir" && ls) <(echo "$got") | tr '\n' ' ')"
	man -l "$p/share/man/man8/ipvsman.8.gz" >/dev/null 2>&1 || fail "make install PREFIX=$prefix: man -l ipvsman.8.gz failed"
	for f in share/bash-completion/completions/ipvsman share/zsh/site-functions/_ipvsman share/fish/vendor_completions.d/ipvsman.fish \
		lib/modules-load.d/ipvsman.conf share/doc/ipvsman/LICENSE share/doc/ipvsman/copyright share/doc/ipvsman/examples/web-farm.yaml; do
		[ -f "$p/$f" ] || fail "make install PREFIX=$prefix: no $p/$f"
	done
	cmp -s "$p/share/bash-completion/completions/ipvsman" "$root/usr/share/bash-completion/completions/ipvsman" ||
		fail "make install PREFIX=$prefix: the bash completion differs from the package's"
	[ -f "$dest/etc/default/ipvsmand" ] && [ "$(stat -c %a "$dest/etc/ipvsman")" = 700 ] ||
		fail "make install PREFIX=$prefix: want /etc/default/ipvsmand and /etc/ipvsman (0700) under DESTDIR"
done
# Again over an edited /etc/default/ipvsmand: the operator's edit stays.
echo 'IPVSMAND_OPTS="--node-id=d1"' >>"$dest/etc/default/ipvsmand"
make -s --no-print-directory install DESTDIR="$dest" PREFIX=/usr/local ${VERSION:+VERSION="$VERSION"} >"$work/make-install.log" 2>&1 ||
	fail "make install again: $(cat "$work/make-install.log")"
grep -q -- '--node-id=d1' "$dest/etc/default/ipvsmand" || fail "make install replaced the edited /etc/default/ipvsmand"
# A relative PREFIX would scatter files under the checkout: refused.
! make -s --no-print-directory install DESTDIR="$work/bad" PREFIX=usr >"$work/make-install.log" 2>&1 ||
	fail "make install PREFIX=usr (relative) succeeded"
grep -q 'PREFIX "usr"' "$work/make-install.log" || fail "make install PREFIX=usr: error does not name PREFIX: $(cat "$work/make-install.log")"
ok "make install (PREFIX=/usr and /usr/local, DESTDIR): binaries, unit naming PREFIX/sbin, the package's man pages and completions, LICENSE, examples; keeps /etc/default/ipvsmand; refuses a relative PREFIX"

# --- installed by dpkg into a fresh root --------------------------------
# A minimal dpkg database is all dpkg --root needs. The maintainer scripts
# run on this host with DPKG_ROOT set (chrootless): they must touch the
# target root only, and not this host's systemd.
froot="$work/root"
mkdir -p "$froot/var/lib/dpkg/info" "$froot/var/lib/dpkg/updates"
touch "$froot/var/lib/dpkg/status"
dpkgr=(dpkg --root="$froot" --force-script-chrootless --log=/dev/null)
[ "$(id -u)" = 0 ] || dpkgr+=(--force-not-root)
"${dpkgr[@]}" -i "$deb" >"$work/install.log" 2>&1 || fail "dpkg --root -i: $(cat "$work/install.log")"
"${dpkgr[@]}" -s ipvsman | grep -q '^Status: install ok installed' || fail "dpkg --root -s: not installed"
[ "$(stat -c %a "$froot/etc/ipvsman")" = 700 ] || fail "/etc/ipvsman: mode $(stat -c %a "$froot/etc/ipvsman"), want 700"
[ -d "$froot/etc/ipvsman/checks" ] && [ "$(stat -c %a "$froot/etc/ipvsman/checks")" = 755 ] ||
	fail "/etc/ipvsman/checks: $(stat -c %a "$froot/etc/ipvsman/checks" 2>&1), want a directory, mode 755"
[ "$(id -u)" != 0 ] || [ "$(stat -c %u:%g "$froot/etc/ipvsman/checks")" = 0:0 ] ||
	fail "/etc/ipvsman/checks: owner $(stat -c %u:%g "$froot/etc/ipvsman/checks"), want 0:0 (ipvsmand runs nothing from a directory that is not root's)"
[ ! -e "$froot/etc/ipvsman/token" ] || fail "postinst made a token: every node must share one"
[ ! -e "$froot/etc/systemd/system/multi-user.target.wants/ipvsmand.service" ] || fail "ipvsmand enabled by the install"
grep -q 'ipvsmand is not enabled' "$work/install.log" || fail "postinst did not tell what to do next: $(cat "$work/install.log")"
[ -x "$froot/usr/sbin/ipvsmand" ] || fail "dpkg --root -i: no /usr/sbin/ipvsmand"
ok "dpkg --root -i: installed, /etc/ipvsman 0700 without a token, /etc/ipvsman/checks 0755, service not enabled"

# Reinstall over an edited conffile (an upgrade's path): the edit stays.
echo 'IPVSMAND_OPTS="--node-id=d1"' >>"$froot/etc/default/ipvsmand"
"${dpkgr[@]}" -i "$deb" >"$work/install.log" 2>&1 || fail "dpkg --root -i again: $(cat "$work/install.log")"
grep -q -- '--node-id=d1' "$froot/etc/default/ipvsmand" || fail "reinstall replaced the edited /etc/default/ipvsmand"
ok "reinstall keeps the edited /etc/default/ipvsmand"

# The operator's token and the node's state, then remove and purge.
echo 0123456789abcdef0123 >"$froot/etc/ipvsman/token"
mkdir -p "$froot/var/lib/ipvsman/raft"
"${dpkgr[@]}" -r ipvsman >"$work/remove.log" 2>&1 || fail "dpkg --root -r: $(cat "$work/remove.log")"
[ ! -e "$froot/usr/sbin/ipvsmand" ] || fail "dpkg -r left /usr/sbin/ipvsmand"
[ -f "$froot/etc/default/ipvsmand" ] || fail "dpkg -r removed the conffile"
[ -d "$froot/var/lib/ipvsman" ] || fail "dpkg -r removed the node's state"
"${dpkgr[@]}" -P ipvsman >"$work/remove.log" 2>&1 || fail "dpkg --root -P: $(cat "$work/remove.log")"
[ ! -e "$froot/etc/default/ipvsmand" ] || fail "purge left /etc/default/ipvsmand"
[ ! -e "$froot/var/lib/ipvsman" ] || fail "purge left /var/lib/ipvsman"
[ -f "$froot/etc/ipvsman/token" ] || fail "purge deleted the operator's token"
[ ! -e "$froot/etc/ipvsman/checks" ] || fail "purge left the empty /etc/ipvsman/checks"
ok "dpkg --root -r keeps config and state; -P removes them (and the empty checks directory) but not the operator's token"

# --- installed in a chroot ------------------------------------------------
# Without --force-script-chrootless dpkg chroots into the root to run the
# maintainer scripts, as on a real target: a static busybox is its /bin/sh
# and coreutils. Needs root, like chroot(2).
[ "$(id -u)" = 0 ] || fail "the chroot install needs root (make test-package runs as root, like test-host)"
busybox=$(command -v busybox) || fail "busybox not installed (busybox-static, see .ci/run)"
! readelf -l "$busybox" | grep -q 'program interpreter' || fail "$busybox is not static (install busybox-static)"
croot="$work/chroot"
mkdir -p "$croot/var/lib/dpkg/info" "$croot/var/lib/dpkg/updates" "$croot/bin" "$croot/dev" "$croot/tmp"
touch "$croot/var/lib/dpkg/status"
cp "$busybox" "$croot/bin/busybox"
for a in sh mkdir chmod rm rmdir; do ln -s busybox "$croot/bin/$a"; done
mknod -m 0666 "$croot/dev/null" c 1 3
dpkgc=(dpkg --root="$croot" --log=/dev/null)
"${dpkgc[@]}" -i "$deb" >"$work/install.log" 2>&1 || fail "chroot: dpkg -i: $(cat "$work/install.log")"
[ "$(stat -c %a "$croot/etc/ipvsman")" = 700 ] || fail "chroot: /etc/ipvsman mode $(stat -c %a "$croot/etc/ipvsman"), want 700"
[ "$(stat -c %a:%u:%g "$croot/etc/ipvsman/checks")" = 755:0:0 ] ||
	fail "chroot: /etc/ipvsman/checks $(stat -c %a:%u:%g "$croot/etc/ipvsman/checks" 2>&1), want 755:0:0"
grep -q 'ipvsmand is not enabled' "$work/install.log" || fail "chroot: postinst did not run: $(cat "$work/install.log")"
echo 0123456789abcdef0123 >"$croot/etc/ipvsman/token"
printf '#!/bin/sh\nexit 0\n' >"$croot/etc/ipvsman/checks/check-web"
mkdir -p "$croot/var/lib/ipvsman/raft"
"${dpkgc[@]}" -P ipvsman >"$work/remove.log" 2>&1 || fail "chroot: dpkg -P: $(cat "$work/remove.log")"
! grep -q 'ipvsman\.p[a-z]*:' "$work/remove.log" || fail "chroot: a maintainer script complained: $(cat "$work/remove.log")"
[ ! -e "$croot/var/lib/ipvsman" ] && [ ! -e "$croot/usr/sbin/ipvsmand" ] && [ -f "$croot/etc/ipvsman/token" ] ||
	fail "chroot: purge left $(ls "$croot/var/lib" "$croot/usr/sbin" 2>&1) or took the token"
[ -f "$croot/etc/ipvsman/checks/check-web" ] || fail "chroot: purge took the operator's check program"
ok "chroot (scripts run inside by busybox sh): install makes /etc/ipvsman 0700 and /etc/ipvsman/checks 0755 root's; purge removes state, keeps the token and the check programs"

echo "package: $n checks passed"

#!/usr/bin/env bash
# run.sh [-i] WORKDIR [--] COMMAND [ARGS...]
#
# Runs COMMAND as root inside a qemu VM booted with Debian's own kernel, and
# exits with its exit status. Why a VM: the host kernel (here and in CI) has
# no IPVS and cannot load modules; inside, every ip_vs module is loaded.
#
# Inside the VM the command sees the host's whole root file system read-only
# (so host binaries -- ip, ipvsadm, CGO_ENABLED=0 Go binaries -- run there),
# and WORKDIR read-write at /tmp/lab, which is its working directory. WORKDIR
# is also mounted at its own host path, so absolute paths into it work on
# both sides. The host's /tmp and /run are not visible inside (tmpfs), but
# WORKDIR may be under them: it is shared on its own, not through the host
# root; so is this repository when it is under /tmp or /run (read-only).
#
#   -i   interactive: run COMMAND first (e.g. to build a topology; it may be
#        omitted), then a shell on the console; the shell's exit status is
#        ours. No timeout. qemu's escape is Ctrl-A x.
#
# Environment:
#   LAB_TIMEOUT=1200   seconds before qemu is killed (exit 125); 0: never
#   LAB_CACHE          where the initramfs is cached (default REPO/.lab/cache)
#   LAB_SKIP_DEPS=1    do not check/install Debian packages (deps.sh)
#   LAB_ENV_NAME=val   becomes NAME=val in the command's environment
#   LAB_MEM=2048, LAB_SMP=2   VM memory (MiB) and CPUs
#   LAB_KVER           kernel version to boot (default: newest in /boot)
#   LAB_SCHEDULERS=preload  ondemand: boot without loading the IPVS
#                      scheduler modules (the kernel loads each on first use)
#   LAB_ROOT_CACHE=loose  9p cache mode of the host root inside (none: no
#                      caching, for host files that change during a run)
#   LAB_LOCAL="bin"    directories of WORKDIR copied to /run/lab/ (the VM's
#                      memory) before the command runs: binaries run there
#                      start without reading the uncached share
#
# Files the runner writes in WORKDIR: cmd.sh, .lab-env, .lab-hostdir,
# .lab-repodir and, from inside the VM, .exit-status.
#
# Exit status: the command's; 125 when the VM crashed, failed to set up or
# timed out (no status was written); 2 for a usage error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
repo=$(cd "$here/../../.." && pwd -P)

usage() {
	echo "usage: $0 [-i] WORKDIR [--] COMMAND [ARGS...]" >&2
	exit 2
}

interactive=0
if [ "${1:-}" = -i ]; then
	interactive=1
	shift
fi
[ $# -ge 1 ] || usage
workdir=$1
shift
[ "${1:-}" = -- ] && shift
[ $# -ge 1 ] || [ $interactive -eq 1 ] || usage
case $workdir in
	/*) ;;
	*) echo "lab: WORKDIR must be an absolute path: $workdir" >&2; exit 2 ;;
esac
timeout_s=${LAB_TIMEOUT:-1200}
case $timeout_s in
	'' | *[!0-9]*) echo "lab: LAB_TIMEOUT must be a number of seconds: $timeout_s" >&2; exit 2 ;;
esac

case ${LAB_SCHEDULERS:-preload} in
	preload | ondemand) ;;
	*) echo "lab: LAB_SCHEDULERS must be preload or ondemand: $LAB_SCHEDULERS" >&2; exit 2 ;;
esac

case ${LAB_ROOT_CACHE:-loose} in
	none | loose | mmap) ;;
	*) echo "lab: LAB_ROOT_CACHE must be none, loose or mmap: $LAB_ROOT_CACHE" >&2; exit 2 ;;
esac

mkdir -p "$workdir"
workdir=$(cd "$workdir" && pwd -P) # canonical: qemu and the VM want no ..

if [ "${LAB_SKIP_DEPS:-}" != 1 ]; then
	"$here/deps.sh"
fi
kver=$(lab_kver)
initramfs=$("$here/initramfs.sh" "${LAB_CACHE:-$repo/.lab/cache}")

# Quote for POSIX sh (the VM runs /bin/sh, dash on Debian, which has no
# $'...'): wrap in single quotes, each ' becoming '\''.
shq() {
	local s=$1
	printf "'%s'" "${s//\'/\'\\\'\'}"
}

# cmd.sh: the command, quoted word by word, run from /tmp/lab (= WORKDIR).
# LAB_LOCAL's directories are copied into the VM's memory first: the share
# is uncached (both sides see each write), so every exec of a binary on it
# reads the whole file over 9p again (2 s for `ipvsman --version` under
# emulation, against 0.2 s for a binary in memory).
{
	echo '# Written by test/lab/vm/run.sh: the command the lab VM runs, in /tmp/lab.'
	for d in ${LAB_LOCAL:-}; do
		if [[ $d == */* || $d == .* || ! -d $workdir/$d ]]; then
			lab_log "LAB_LOCAL: $d is not a directory directly in $workdir"
			exit 2
		fi
		echo "mkdir -p /run/lab && cp -a $(shq "$d") /run/lab/ || { echo 'lab: cannot copy $d into the VM'\''s memory' >&2; exit 125; }"
	done
	if [ $# -eq 0 ]; then
		echo ':'
	else
		line=exec
		for a in "$@"; do line+=" $(shq "$a")"; done
		echo "$line"
	fi
} >"$workdir/cmd.sh"

# .lab-env: LAB_ENV_NAME=value -> NAME=value, through a file rather than the
# kernel command line, which is short, unquoted and visible to the kernel.
{
	echo '# Written by test/lab/vm/run.sh: LAB_ENV_* variables, without the prefix.'
	while IFS= read -r name; do
		var=${name#LAB_ENV_}
		if [[ ! $var =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
			lab_log "ignoring $name: not a valid variable name without the prefix"
			continue
		fi
		echo "export $var=$(shq "${!name}")"
	done < <(compgen -e | grep '^LAB_ENV_' || true)
} >"$workdir/.lab-env"

# The host path of WORKDIR, so init can mount the share there too.
printf '%s\n' "$workdir" >"$workdir/.lab-hostdir"
rm -f "$workdir/.exit-status" "$workdir/.lab-repodir"

# A repository under /tmp or /run (CI clones may be) would be hidden by the
# VM's tmpfs there: share it too, read-only, and init mounts it at its path.
repo_share=()
case $repo/ in
	/tmp/* | /run/*)
		repo_share=(-virtfs "local,path=${repo//,/,,},mount_tag=repo,security_model=none,readonly=on,multidevs=remap")
		printf '%s\n' "$repo" >"$workdir/.lab-repodir"
		;;
esac

# tsc=reliable: without it the emulated TSC is not trusted and the clock is
# HPET, which the vDSO cannot read: every clock read becomes a system call
# (measured: 52,412 in 25 s of ipvsmand checking 2,000 servers, 64 per
# check), a cost no real director has. clocksource=tsc makes sure of it.
append="console=ttyS0 quiet loglevel=3 panic=-1 tsc=reliable clocksource=tsc lab_rootcache=${LAB_ROOT_CACHE:-loose} lab_schedulers=${LAB_SCHEDULERS:-preload}"
if [ $interactive -eq 1 ]; then
	append+=" lab_mode=shell lab_term=${TERM:-vt100}"
	if size=$(stty size 2>/dev/null </dev/tty); then
		append+=" lab_rows=${size% *} lab_cols=${size#* }"
	fi
else
	append+=" lab_mode=cmd"
fi

# qemu splits -virtfs options at commas; a literal comma is written ",,".
qemu=(
	qemu-system-x86_64
	-accel tcg,thread=multi -cpu max # KVM does not work on these machines
	-m "${LAB_MEM:-2048}" -smp "${LAB_SMP:-2}"
	-kernel "/boot/vmlinuz-$kver" -initrd "$initramfs" -append "$append"
	# No display, VGA or default devices; the serial line is the console.
	# (-nographic would also make SeaBIOS draw its banner, with terminal
	# escapes, on the serial line.)
	-nodefaults -display none -vga none -no-reboot -nic none
	# multidevs=remap: the host root spans several devices; without it inode
	# numbers collide and the VM's bind mounts (e.g. /proc) get hidden.
	-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
	-virtfs "local,path=${workdir//,/,,},mount_tag=lab,security_model=none,multidevs=remap"
	"${repo_share[@]}"
)

if [ $interactive -eq 1 ]; then
	# qemu puts the terminal in raw mode; restore it even if qemu dies hard.
	saved=$(stty -g 2>/dev/null </dev/tty || true)
	# The console on our terminal, multiplexed with qemu's monitor as
	# -nographic does (Ctrl-A x quits, Ctrl-A c is the monitor); signal=off
	# hands Ctrl-C to the VM's shell instead of killing qemu.
	qemu+=(-chardev stdio,id=con,mux=on,signal=off -serial chardev:con -mon chardev=con,mode=readline)
	set +e
	"${qemu[@]}"
	qrc=$?
	set -e
	[ -z "$saved" ] || stty "$saved" </dev/tty 2>/dev/null || true
else
	# stdin from /dev/null: qemu then leaves any terminal alone (no raw mode)
	# and the VM gets no input. --foreground keeps qemu in our process group
	# so that Ctrl-C reaches it. sed -u strips the \r of the serial line and
	# passes each line on at once (tr would buffer when stdout is a pipe).
	qemu+=(-serial stdio)
	# Ctrl-C reaches qemu too (same process group), which exits; remember it
	# to say "interrupted" rather than "crashed".
	interrupted=0
	trap 'interrupted=1' INT
	set +e
	timeout --foreground -k 10 "$timeout_s" "${qemu[@]}" </dev/null | sed -u 's/\r//g'
	qrc=${PIPESTATUS[0]}
	set -e
	trap - INT
	if [ $interrupted -eq 1 ]; then
		lab_log "interrupted"
		exit 130
	fi
	if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
		lab_log "timed out after ${timeout_s}s (LAB_TIMEOUT); qemu killed"
		exit 125
	fi
fi

if [ ! -s "$workdir/.exit-status" ] && [ $interactive -eq 1 ]; then
	lab_log "the VM stopped before its shell exited (qemu exit $qrc)"
	exit 125
fi
if [ ! -s "$workdir/.exit-status" ]; then
	lab_log "no exit status from the VM (qemu exit $qrc): it crashed or its setup failed; see the console output above"
	exit 125
fi
rc=$(cat "$workdir/.exit-status")
case $rc in
	'' | *[!0-9]*) lab_log "bad exit status from the VM: $rc"; exit 125 ;;
esac
exit "$rc"

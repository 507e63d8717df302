# shellcheck shell=bash
# Shared helpers for the lab scripts (sourced, not run).
#
# Why a separate file: run.sh and initramfs.sh must agree on which kernel
# is booted, and the modules in the initramfs must come from exactly that
# kernel's /lib/modules, or insmod fails on a version mismatch.

# lab_kver prints the version of the kernel the lab boots: the newest
# /boot/vmlinuz-<ver> that has a matching /lib/modules/<ver>. LAB_KVER
# overrides (e.g. when several linux-image packages are installed).
# The version is found at run time and never hard-coded: Debian bumps it with
# every kernel update, and CI machines may be on a newer point release.
lab_kver() {
	if [ -n "${LAB_KVER:-}" ]; then
		printf '%s\n' "$LAB_KVER"
		return
	fi
	local f v best=
	# sort -V orders 6.1.0-9 before 6.1.0-10, as the kernel versions mean.
	while read -r f; do
		v=${f#/boot/vmlinuz-}
		[ -d "/lib/modules/$v/kernel" ] && best=$v
	done < <(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V)
	if [ -z "$best" ]; then
		echo "lab: no /boot/vmlinuz-<ver> with /lib/modules/<ver> (install linux-image-amd64; see deps.sh)" >&2
		return 1
	fi
	printf '%s\n' "$best"
}

# lab_log prints a runner message on stderr, prefixed so it stands apart
# from the command's own output.
lab_log() {
	printf 'lab: %s\n' "$*" >&2
}

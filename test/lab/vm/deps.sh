#!/usr/bin/env bash
# Installs the Debian packages the VM lab needs, only if some are missing.
#
# Why: the host kernel (here and in CI) has no IPVS and cannot load modules,
# so the lab boots Debian's own kernel under qemu. A fresh CI machine has
# none of this; a developer machine usually has all of it, and then this
# script must cost nothing (no apt-get update), hence the dpkg -s checks.
#
# What each package is for:
#   qemu-system-x86     the emulator (TCG; KVM does not work on these machines)
#   linux-image-amd64   /boot/vmlinuz-<ver> and /lib/modules/<ver> with ip_vs*
#   busybox-static      the initramfs userland (static: no libraries to copy)
#   kmod                modprobe --show-depends / depmod, to build the initramfs
#   cpio                packs the initramfs
#   xz-utils zstd       unpack compressed .ko files (newer Debian kernels ship
#                       them as .ko.xz/.ko.zst; busybox cannot read those)
#   ipvsadm iproute2 iputils-ping
#                       the tools commands run inside the VM (the VM sees the
#                       host's root file system, so host tools are VM tools)
set -euo pipefail

packages=(
	qemu-system-x86 linux-image-amd64 busybox-static kmod cpio xz-utils zstd
	ipvsadm iproute2 iputils-ping
)

missing=()
for p in "${packages[@]}"; do
	# "install ok installed" and not merely known (e.g. removed, config-files).
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "lab: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "lab: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
	sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# --no-install-recommends: qemu recommends a GUI, OVMF and block plugins the
# lab never uses. linux-image-amd64's postinst runs update-initramfs (~80 s);
# the lab does not use Debian's initrd but cannot cheaply skip it.
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -qq --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# initramfs.sh CACHE_DIR
#
# Builds CACHE_DIR/initramfs-<kver>.cpio.gz for the lab VM, or reuses it when
# nothing it is made of has changed, and prints its path on stdout.
#
# Why our own initramfs and not Debian's: Debian's initrd wants a root disk;
# the lab has none. It mounts the host's root file system over 9p and chroots
# into it (see init). All the initramfs must hold is a shell (busybox-static,
# no libraries), the kernel modules for 9p/virtio/IPVS and their
# dependencies, and init. That is ~2 MB and takes a second or two to build.
set -euo pipefail
# modprobe and depmod live in /usr/sbin, which a normal user's PATH lacks.
PATH=$PATH:/usr/sbin:/sbin

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 CACHE_DIR" >&2; exit 2; }
cache=$1
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

kver=$(lab_kver)
moddir=/lib/modules/$kver
vmlinuz=/boot/vmlinuz-$kver
out=$cache/initramfs-$kver.cpio.gz
stampfile=$cache/initramfs-$kver.stamp

# Modules, in the order init loads them. Order matters: busybox modprobe
# ignores soft dependencies, and ip_vs needs libcrc32c, which needs a crc32c
# implementation loaded first, hence crc32c_generic at the top.
required=(
	crc32c_generic
	virtio_pci 9pnet_virtio 9p             # the two 9p shares
	nf_conntrack ip_vs                     # IPVS itself
	veth bridge                            # the namespace topology
	ipip                                   # IPVS tunnel forwarding
	tcp_diag udp_diag                      # ss(8) and sock_diag users
)
# Loaded when this kernel has them; a missing one is not an error.
#   dummy       handy for VIP/loopback-like interfaces in tests
optional=(ip6_tunnel tunnel6 dummy)
# The schedulers: every ip_vs scheduler module this kernel ships, found in
# its tree (ip_vs_twos exists from Linux 6.7 on; Debian 12's 6.1 lacks
# it), so that a scheduler a newer kernel adds is in the image without a
# list to update. init loads them after the modules above, unless the VM
# is booted with lab_schedulers=ondemand (run.sh: LAB_SCHEDULERS=ondemand):
# then the kernel loads each through /sbin/modprobe on first use, as on a
# machine that preloads nothing.
# Not schedulers: the FTP helper and the persistence engines (ip_vs_pe_*).
mapfile -t schedulers < <(
	find "$moddir/kernel/net/netfilter/ipvs" -name 'ip_vs_*.ko*' -printf '%f\n' 2>/dev/null |
		sed 's/\.ko.*$//' | grep -v -e '^ip_vs_ftp$' -e '^ip_vs_pe_' | LC_ALL=C sort
)
[ ${#schedulers[@]} -gt 0 ] || { echo "lab: kernel $kver has no ip_vs scheduler modules" >&2; exit 1; }
# In the image, never loaded at boot: the kernel loads them on first use
# (ip_vs_pe_sip when a service names the SIP persistence engine).
ondemand=(ip_vs_pe_sip)

busybox=$(command -v busybox || true)
[ -n "$busybox" ] || { echo "lab: busybox not found (install busybox-static; see deps.sh)" >&2; exit 1; }

# Everything the image is made of goes into the stamp, so a kernel update
# (even one keeping the version string), an edit of init or of this script,
# or another busybox rebuilds it; anything else reuses the cached image.
stamp=$(
	{
		echo "$kver"
		stat -c '%s %Y' "$vmlinuz" "$moddir/modules.dep" "$busybox"
		cat "$here/init" "$here/initramfs.sh" "$here/lib.sh"
	} | sha256sum | cut -c1-32
)

# Concurrent runs (make -j, two terminals) share the cache: serialise the
# check-and-build so that one builds and the others reuse.
exec 9>"$cache/.initramfs.lock"
flock 9

if [ -s "$out" ] && [ "$(cat "$stampfile" 2>/dev/null)" = "$stamp" ]; then
	echo "$out"
	exit 0
fi

lab_log "building initramfs for $kver in $cache"
work=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/lib/modules/$kver,etc,dev,proc,sys,newroot}
# /lib as a link to usr/lib, as on the host: depmod -b and busybox modprobe
# then agree on the modules directory whichever path each was built with.
ln -s usr/lib "$root/lib"

# busybox and a link per applet, at the paths busybox itself lists; this gives
# /sbin/modprobe, which the kernel execs to load modules on demand (e.g. an
# IPVS scheduler or a netlink family first used inside the VM).
cp "$busybox" "$root/bin/busybox"
while read -r applet; do
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done < <("$busybox" --list-full)
[ -e "$root/sbin/modprobe" ] || ln -s /bin/busybox "$root/sbin/modprobe"

# The kernel opens /dev/console for init's stdio before init can mount
# devtmpfs; the kernel's built-in initramfs usually has it, but do not rely
# on that (mknod needs root; without it we fall back to the built-in node).
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true

# Copy one module file into the image, under the same path relative to
# $moddir, uncompressed (busybox insmod reads plain .ko only).
copy_ko() {
	local src=$1 rel dst
	rel=${src#"$moddir"/}
	dst=$root/usr/lib/modules/$kver/$rel
	case $dst in
		*.ko.xz) dst=${dst%.xz} ;;
		*.ko.zst) dst=${dst%.zst} ;;
		*.ko.gz) dst=${dst%.gz} ;;
	esac
	[ -e "$dst" ] && return
	mkdir -p "$(dirname "$dst")"
	case $src in
		*.ko.xz) xz -dc "$src" >"$dst" ;;
		*.ko.zst) zstd -qdc "$src" >"$dst" ;;
		*.ko.gz) gzip -dc "$src" >"$dst" ;;
		*) cp "$src" "$dst" ;;
	esac
}

# Resolve each module with the host's kmod against the lab kernel's tree
# (-S kver): it prints "insmod /path.ko" for the module and every dependency
# (soft ones too), or "builtin NAME" when the kernel has it built in.
loaded=()
add_module() {
	local name=$1 must=$2 deps line
	if ! deps=$(modprobe -S "$kver" --show-depends "$name" 2>/dev/null); then
		if [ "$must" = required ]; then
			echo "lab: kernel $kver has no module $name" >&2
			exit 1
		fi
		return 0
	fi
	while read -r line; do
		case $line in
			insmod\ *)
				line=${line#insmod }
				copy_ko "${line%% *}"
				;;
		esac
	done <<<"$deps"
	# A built-in module needs no loading; list only real modules for init.
	case $deps in
		builtin\ *) ;;
		*) loaded+=("$name") ;;
	esac
}
for m in "${required[@]}"; do add_module "$m" required; done
for m in "${optional[@]}"; do add_module "$m" optional; done
boot=("${loaded[@]}")
loaded=()
for m in "${schedulers[@]}"; do add_module "$m" required; done
scheds=("${loaded[@]}")
loaded=()
for m in "${ondemand[@]}"; do add_module "$m" optional; done
loaded=("${boot[@]}")

# dummy would create a dummy0 of its own; tests create the interfaces they
# want, under the names they choose.
mkdir -p "$root/etc/modprobe.d"
echo 'options dummy numdummies=0' >"$root/etc/modprobe.d/lab.conf"

# init reads the load order from here, so it never names a module this
# kernel lacks; the schedulers apart, which it may leave to the kernel.
printf '%s\n' "${loaded[@]}" >"$root/etc/lab-modules"
printf '%s\n' "${scheds[@]}" >"$root/etc/lab-schedulers"

# depmod needs these to index the tree; they are small.
for f in modules.order modules.builtin modules.builtin.modinfo; do
	[ -e "$moddir/$f" ] && cp "$moddir/$f" "$root/usr/lib/modules/$kver/"
done
depmod -b "$root" "$kver"
[ -s "$root/lib/modules/$kver/modules.dep" ] || { echo "lab: depmod made no modules.dep" >&2; exit 1; }

install -m 755 "$here/init" "$root/init"

(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) |
	gzip -6 >"$work/initramfs.cpio.gz"
mv -f "$work/initramfs.cpio.gz" "$out"
echo "$stamp" >"$stampfile"
lab_log "initramfs: $(du -h "$out" | cut -f1), ${#loaded[@]} modules loaded at boot, ${#scheds[@]} schedulers"
echo "$out"

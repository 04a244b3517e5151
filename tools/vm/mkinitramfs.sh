#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the base initramfs of the current flavour: busybox, dmsetup, fio,
# e2fsprogs (mke2fs, e2fsck), an NBD
# server (nbdkit, its file plugin and delay filter) and client (nbd-client) and
# their libraries, and the kernel's modules. It is rebuilt only when the
# kernel's modules were reinstalled; what changes often (our modules, the
# selftests, /init) goes into a small per-run archive (tools/vm/run.sh) that the
# kernel unpacks on top of this one.
# Prints the path of the archive.
source "$(dirname "$0")/../build/env.sh"

obj=$(dmc_objtree)
out=$obj/guest/base.cpio
[ -e "$obj/.dmc-modules-installed" ] || dmc_die "kernel of flavour $KERNEL is not built"
if [ -e "$out" ] && [ "$out" -nt "$obj/.dmc-modules-installed" ] &&
	[ "$out" -nt "$0" ]; then
	echo "$out"
	exit 0
fi

dmc_log "building the base initramfs ($KERNEL)"
root=$obj/guest/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,etc,proc,sys,dev,tmp,run,root}

# busybox, with a link per applet; never one named busybox (it would replace
# the binary with a link to itself: "No working init found").
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list-full); do
	[ "$(basename "$applet")" = busybox ] && continue
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done

# Dynamically linked tools with every library ldd names (third column, so
# that /usr/lib/x86_64-linux-gnu/ceph/... is not missed).
copy_with_libs() {
	local bin=$1 lib
	install -D -m755 "$bin" "$root$bin"
	for lib in $(ldd "$bin" | awk '/=> \//{print $3} /^\t\/lib/{print $1}'); do
		[ -e "$root$lib" ] || install -D -m755 "$(readlink -f "$lib")" "$root$lib"
	done
}
copy_with_libs /usr/sbin/dmsetup
copy_with_libs /usr/bin/fio
copy_with_libs /usr/bin/nbdkit
copy_with_libs /usr/sbin/nbd-client
# ext4 on the clone: mkfs, fsck (e2fsprogs); fstrim is busybox's.
rm -f "$root/sbin/mke2fs" # busybox has a smaller one
copy_with_libs /sbin/mke2fs
copy_with_libs /sbin/e2fsck
ln -sf mke2fs "$root/sbin/mkfs.ext4"
install -D -m644 /etc/mke2fs.conf "$root/etc/mke2fs.conf"
for so in plugins/nbdkit-file-plugin.so filters/nbdkit-delay-filter.so; do
	copy_with_libs "/usr/lib/x86_64-linux-gnu/nbdkit/$so"
done

mkdir -p "$root/lib/modules"
cp -a "$obj"/guest-modules/lib/modules/* "$root/lib/modules/"
# Point the source/build links nowhere: they would drag nothing but confusion.
rm -f "$root"/lib/modules/*/{build,source}

echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) >"$out.tmp"
mv "$out.tmp" "$out"
rm -rf "$root"
dmc_log "base initramfs: $(du -h "$out" | cut -f1)"
echo "$out"

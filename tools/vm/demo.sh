#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The demo, run in the VM by `make demo`: a clone of a slow source at work.
# The source is a RAM disk behind dm-delay (10 ms a read, like a remote NBD or
# iSCSI disk). The clone serves reads at once, copies in the background while
# `dmsetup status` shows progress, takes writes during the copy, and at the
# end the destination is checked byte for byte against the source plus the
# writes, then swapped for a linear table.
set -e
export DM_DISABLE_UDEV=1
dmsetup() { command dmsetup --noudevsync "$@"; }
say() { printf '\n== %s\n' "$*"; }

MB=64
REGION=128 # sectors: 64 KiB
modprobe crc32c_generic
modprobe dm-delay
modprobe brd rd_nr=3 rd_size=$((MB * 1024)) max_part=0
if [ -n "$(find /lib/modules/"$(uname -r)" -name "dm_clone_rs.ko*")" ]; then
	module=dm_clone_rs threshold=copy_threshold
else
	module=dm_clone threshold=hydration_threshold
fi
modprobe "$module"
say "the clone target comes from module $module ($(dmsetup targets | grep '^clone'))"

say "source: $MB MiB of random data on /dev/ram2, behind dm-delay (10 ms per I/O)"
dd if=/dev/urandom of=/tmp/source.img bs=1M count=$MB 2>/dev/null
dd if=/tmp/source.img of=/dev/ram2 bs=1M oflag=direct 2>/dev/null
sectors=$(blockdev --getsz /dev/ram2)
dmsetup create slowsrc --table "0 $sectors delay /dev/ram2 0 10"

table="0 $sectors clone /dev/ram0 /dev/ram1 /dev/mapper/slowsrc $REGION 0 4 $threshold 2 hydration_batch_size 1"
say "dmsetup create clone --table \"$table\""
dmsetup create clone --table "$table"
dmsetup status clone

say "reads are served at once, from the source where not yet copied"
dd if=/dev/mapper/clone of=/tmp/first.img bs=1M count=1 iflag=direct 2>/dev/null
head -c 1048576 /tmp/source.img | cmp - /tmp/first.img
echo "first MiB read through the clone equals the source"

say "copy progress (dmsetup status: ... <copied>/<total regions> <in flight> ...)"
cp /tmp/source.img /tmp/expect.img
i=0
while :; do
	st=$(dmsetup status clone)
	echo "t=${i}s  $st"
	set -- $st
	[ "${7%/*}" = "${7#*/}" ] && break
	if [ "$i" = 2 ]; then
		echo "   writing 1 MiB of new data at offset 40 MiB while the copy runs"
		dd if=/dev/urandom of=/tmp/write.img bs=1M count=1 2>/dev/null
		dd if=/tmp/write.img of=/dev/mapper/clone bs=1M seek=40 oflag=direct 2>/dev/null
		dd if=/tmp/write.img of=/tmp/expect.img bs=1M seek=40 conv=notrunc 2>/dev/null
	fi
	sleep 1
	i=$((i + 1))
	[ "$i" -lt 300 ] || { echo "copy did not finish in 300 s"; exit 1; }
done

say "all regions copied: swap the clone for a linear table on the destination"
dmsetup suspend clone
dmsetup load clone --table "0 $sectors linear /dev/ram1 0"
dmsetup resume clone
dmsetup table clone

say "verify: the device equals the source plus the write made during the copy"
cmp /dev/mapper/clone /tmp/expect.img
echo "VERIFIED: $MB MiB identical (sha256 $(sha256sum </tmp/expect.img | cut -c1-16)...)"
dmsetup remove clone
dmsetup remove slowsrc

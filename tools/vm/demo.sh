#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The demo, run in the VM by `make demo`: a clone of a remote source at work.
# The source is a network block device: the kernel's NBD client (/dev/nbd0)
# connected over a unix socket to nbdkit, which serves a RAM disk with 10 ms
# per read (its delay filter), like a remote NBD or iSCSI disk. The clone
# is made by `clonectl create`, serves reads at once, takes a write, copies in
# the background while `clonectl status --watch` shows progress, rate and time
# to go, and ends with `clonectl finish` (the table swapped for a linear one on
# the destination, the device kept); then the device is checked byte for byte
# against the source plus the write.
set -e
export DM_DISABLE_UDEV=1
dmsetup() { command dmsetup --noudevsync "$@"; }
say() { printf '\n== %s\n' "$*"; }

MB=64
REGION=128 # sectors: 64 KiB
modprobe nbd nbds_max=1
modprobe brd rd_nr=3 rd_size=$((MB * 1024)) max_part=0
if [ -n "$(find /lib/modules/"$(uname -r)" -name "dm_clone_rs.ko*")" ]; then
	# The copy at 8 MiB/s at most, so that its progress can be watched.
	module=dm_clone_rs args="--copy-rate-limit 8"
else
	module=dm_clone args="--copy-threshold 2 --copy-batch-size 1"
fi
modprobe "$module"
say "the clone target comes from module $module ($(dmsetup targets | grep '^clone'))"

say "source: $MB MiB of random data on /dev/ram2, served by nbdkit (10 ms per read) as /dev/nbd0"
dd if=/dev/urandom of=/tmp/source.img bs=1M count=$MB 2>/dev/null
dd if=/tmp/source.img of=/dev/ram2 bs=1M oflag=direct 2>/dev/null
sectors=$(blockdev --getsz /dev/ram2)
echo "nbdkit --unix /tmp/nbd.sock -r --filter=delay file file=/dev/ram2 rdelay=10ms"
nbdkit --unix /tmp/nbd.sock --pidfile /tmp/nbd.pid -r --filter=delay file file=/dev/ram2 rdelay=10ms
i=0
until [ -s /tmp/nbd.pid ]; do
	sleep 0.1
	i=$((i + 1))
	[ "$i" -lt 100 ] || { echo "nbdkit did not start"; exit 1; }
done
echo "nbd-client -unix /tmp/nbd.sock /dev/nbd0 -nonetlink -block-size 4096"
nbd-client -unix /tmp/nbd.sock /dev/nbd0 -nonetlink -block-size 4096
i=0
until [ "$(blockdev --getsz /dev/nbd0)" = "$sectors" ]; do
	sleep 0.1
	i=$((i + 1))
	[ "$i" -lt 100 ] || { echo "/dev/nbd0 did not connect"; exit 1; }
done
t0=$(awk '{ print $1 }' /proc/uptime)
dd if=/dev/nbd0 of=/dev/null bs=4096 count=10 iflag=direct 2>/dev/null
t1=$(awk '{ print $1 }' /proc/uptime)
echo "10 reads of 4 KiB from /dev/nbd0, one at a time: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", (b - a) * 1000 }') ms"

dd if=/dev/zero of=/dev/ram0 bs=4096 count=1 oflag=direct 2>/dev/null
create="clonectl create clone --source /dev/nbd0 --dest /dev/ram1 --metadata /dev/ram0 --region-size 64k $args"
say "$create"
$create
dmsetup mknodes clone
dmsetup table clone
clonectl status clone --interval 0

say "reads are served at once, from the source where not yet copied"
dd if=/dev/mapper/clone of=/tmp/first.img bs=1M count=1 iflag=direct 2>/dev/null
head -c 1048576 /tmp/source.img | cmp - /tmp/first.img
echo "first MiB read through the clone equals the source"

say "writes land on the destination at once: 1 MiB of new data at offset 40 MiB"
cp /tmp/source.img /tmp/expect.img
dd if=/dev/urandom of=/tmp/write.img bs=1M count=1 2>/dev/null
dd if=/tmp/write.img of=/dev/mapper/clone bs=1M seek=40 oflag=direct 2>/dev/null
dd if=/tmp/write.img of=/tmp/expect.img bs=1M seek=40 conv=notrunc 2>/dev/null

say "clonectl status clone --watch (the background copy, until every region is copied)"
timeout 300 clonectl status clone --watch --interval 1

say "clonectl finish clone: the clone becomes a linear mapping of its destination"
clonectl finish clone --timeout 60
dmsetup table clone

say "verify: the device equals the source plus the write made during the copy"
cmp /dev/mapper/clone /tmp/expect.img
echo "VERIFIED: $MB MiB identical (sha256 $(sha256sum </tmp/expect.img | cut -c1-16)...)"
dmsetup remove clone
nbd-client -d /dev/nbd0 >/dev/null
kill "$(cat /tmp/nbd.pid)"

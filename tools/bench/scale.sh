#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Metadata operations at scale, ours against the C dm-clone, in one VM run
# (TCG: compare ratios, not absolute numbers). For each size 2^L regions of
# 64 KiB (LOGS, default "24 28": 1 TiB and 16 TiB), error targets as source
# and destination, metadata on a brd RAM disk, the copy off, no discard
# passdown; each target in turn:
#   create      dmsetup create (format the metadata, allocate the maps)
#   memory      the kernel's unreclaimable slab + vmalloc taken by the clone
#   reload0     suspend, load the same table, resume: the metadata read again,
#               nothing copied
#   discard     blkdiscard of the whole device, until the status says every
#               region is copied (the marks, and the commits on the way)
#   commit      the suspend after it (its commit writes what is left)
#   reload1     load and resume, everything copied
#   memory1     the memory when done
# Then the kernel log is searched for RCU stalls, soft lockups and hung tasks
# during the run (a stall is a bug: `make check`'s log checker fails on one).
# Run it with: make vm-run SCRIPT=tools/bench/scale.sh VM_MEM=4G
# (LOGS="24 28 30" needs VM_MEM=6G; 2^28 takes some minutes per target on TCG).
set -e
LOGS=${LOGS:-"24 28"}
export DM_DISABLE_UDEV=1
ds() { dmsetup --noudevsync "$@"; }
uptime_s() { awk '{ print $1 }' /proc/uptime; }
since() { awk -v t0="$1" '{ printf "%.2f", $1 - t0 }' /proc/uptime; }
use() {
	grep -q "^dm_clone_rs " /proc/modules && rmmod dm_clone_rs
	grep -q "^dm_clone " /proc/modules && rmmod dm_clone
	modprobe "$1"
	grep -q "^$1 " /proc/modules
}
kib() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	for f in /sys/kernel/slab/*/shrink; do echo 1 >"$f"; done 2>/dev/null
	awk '/^(SUnreclaim|VmallocUsed):/ { n += $2 } END { print n }' /proc/meminfo
}
copied() { ds status s-clone | awk '{ split($7, a, "/"); print (a[1] == a[2] && a[2] > 0) }'; }
echo "scale: mark $(uptime_s)" >/dev/kmsg

for L in $LOGS; do
	N=$((1 << L))
	LEN=$((N * 128))
	# The user guide's rule of thumb: N/4 bytes (a transaction touching every
	# array block, as a whole-device discard does, needs the bitset twice) and
	# a few MiB besides.
	META_MB=$((N / 4 / 1048576 + 8))
	modprobe brd rd_nr=1 rd_size=$((META_MB * 1024)) max_part=0
	ds create s-src --table "0 $LEN error"
	ds create s-dst --table "0 $LEN error"
	TABLE="0 $LEN clone /dev/ram0 /dev/mapper/s-dst /dev/mapper/s-src 128 2 no_hydration no_discard_passdown"
	for impl in dm_clone dm_clone_rs; do
		use $impl
		dd if=/dev/zero of=/dev/ram0 bs=1M count=1 oflag=direct 2>/dev/null
		m0=$(kib)
		t=$(uptime_s)
		ds create s-clone --table "$TABLE"
		create=$(since "$t")
		mem=$(($(kib) - m0))
		t=$(uptime_s)
		ds suspend s-clone && ds load s-clone --table "$TABLE" && ds resume s-clone
		reload0=$(since "$t")
		t=$(uptime_s)
		blkdiscard /dev/mapper/s-clone
		while [ "$(copied)" != 1 ]; do sleep 0.1; done
		discard=$(since "$t")
		t=$(uptime_s)
		ds suspend s-clone
		commit=$(since "$t")
		t=$(uptime_s)
		ds load s-clone --table "$TABLE" && ds resume s-clone
		reload1=$(since "$t")
		[ "$(copied)" = 1 ] || echo "scale: $impl 2^$L: not every region reads copied after the reload"
		mem1=$(($(kib) - m0))
		ds remove s-clone
		echo "scale 2^$L $impl: create $create reload0 $reload0 discard $discard commit $commit reload1 $reload1 memory_kib $mem memory1_kib $mem1"
	done
	ds remove s-src
	ds remove s-dst
	rmmod brd
done
grep -q "^dm_clone_rs " /proc/modules && rmmod dm_clone_rs
echo "scale: kernel log reports during the run (stalls, soft lockups, hung tasks):"
dmesg | sed -n '/scale: mark/,$p' | grep -iE "rcu.*stall|soft lockup|hung task|blocked for more" || echo "none"

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Flushes per fsync, ours against the C dm-clone in one run. Destination and
# metadata are null_blk devices with a write-back cache (memory_backed,
# cache_size), so every flush reaches them and /proc/diskstats counts it (a RAM
# disk has no cache: the block layer drops flushes to it). 50 times: a 4 KiB
# direct write that makes a region copied (a whole 4 KiB region), then fsync.
# Each fsync needs a commit, which flushes the destination before it writes the
# metadata; the fsync's own empty flush then has nothing left to do on the
# destination. Ours sends one destination flush per fsync, and no more flushes
# to either device than C does.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dm_require_modules crc32c_generic dm_clone_rs
rmmod dm_clone_rs
dm_require_modules dm_clone
rmmod dm_clone
dm_brd_setup dmc- 3 "$DMC_DEV_MB"
modprobe null_blk nr_devices=2 gb=1 memory_backed=1 cache_size=64 2>/dev/null ||
	dmc_skip "no null_blk with memory_backed and cache_size"
nb_cleanup() {
	dm_brd_cleanup
	rmmod null_blk 2>/dev/null
	dmc_unload_targets
}
trap nb_cleanup EXIT
ktap_set_plan 5

wc_mode() { cat /sys/block/"$1"/queue/write_cache; }
cached() { [ "$(wc_mode nullb0)" = "write back" ] && [ "$(wc_mode nullb1)" = "write back" ]; }
dm_test "null_blk destination and metadata have a write-back cache" cached
dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
dd if=/dev/urandom of=/tmp/dmc-w.bin bs=4096 count=1 2>/dev/null
# flushes <disk>: flush requests completed (the 19th field of /proc/diskstats).
flushes() { awk -v d="$1" '$3 == d { print $19 }' /proc/diskstats; }

# run <module>: "<destination flushes> <metadata flushes>" for 50 write+fsync pairs,
# on fresh metadata, the C names in the table (both modules take them).
run() {
	dmc_unload_targets
	modprobe "$1" || return 1
	dd if=/dev/zero of=/dev/nullb1 bs=4096 count=1 oflag=direct conv=fsync 2>/dev/null
	dmsetup create dmc-f --table "0 $len clone /dev/nullb1 /dev/nullb0 $DMC_SRC 8 1 no_hydration" ||
		return 1
	d0=$(flushes nullb0) m0=$(flushes nullb1)
	i=0
	while [ $i -lt 50 ]; do
		dd if=/tmp/dmc-w.bin of=/dev/mapper/dmc-f bs=4096 count=1 seek=$((i * 3 + 1)) \
			oflag=direct conv=fsync 2>/dev/null || { echo "# write+fsync $i failed"; return 1; }
		i=$((i + 1))
	done
	d1=$(flushes nullb0) m1=$(flushes nullb1)
	c=$(dmc_copied dmc-f)
	dmsetup remove dmc-f
	echo "# $1: $((d1 - d0)) destination and $((m1 - m0)) metadata flushes, $c regions copied" >&2
	echo "$((d1 - d0)) $((m1 - m0))"
}
set -- $(run dm_clone_rs) $(run dm_clone)
rust_d=$1 rust_m=$2 c_d=$3 c_m=$4
echo "# flushes for 50 fsyncs: ours destination $rust_d metadata $rust_m; C destination $c_d metadata $c_m"
dm_test "ours: one destination flush per fsync (50)" [ "$rust_d" = 50 ]
dm_test "ours: no more destination flushes than C" dmc_between "$rust_d" 0 "$c_d"
dm_test "ours: no more metadata flushes than C" dmc_between "$rust_m" 0 "$c_m"
dm_test "ours: each commit flushes the metadata (at least 50)" dmc_between "$rust_m" 50 999999
ktap_finished

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Flushes pass through rlinear to a device with a volatile cache (null_blk,
# counted in /proc/diskstats), and discards reach the device at the right
# offset (brd frees discarded pages: they read back as zeroes).
. "$(dirname "$0")/lib.sh"

ktap_print_header
rl_setup
dm_require_modules null_blk
ktap_set_plan 5

# Flushes: null_blk with a write-back cache.
rmmod null_blk 2>/dev/null
modprobe null_blk nr_devices=1 queue_mode=2 memory_backed=1 cache_size=16 gb=1 ||
	ktap_exit_fail_msg "cannot load null_blk"
trap 'dm_brd_cleanup; rmmod null_blk 2>/dev/null' EXIT
# Field 16 of /proc/diskstats: flush requests completed.
flushes() { awk '$3 == "nullb0" { print $19 }' /proc/diskstats; }
dmsetup create rl-flush --table "0 8192 rlinear /dev/nullb0 0"
before=$(flushes)
dd if=/dev/zero of=/dev/mapper/rl-flush bs=4k count=1 conv=fsync 2>/dev/null
after=$(flushes)
echo "# nullb0 flushes: $before -> $after"
dm_test "fsync through rlinear flushes the device below" [ "${after:-0}" -gt "${before:-0}" ]
dm_test "rlinear advertises the write-back cache" \
	[ "$(cat "$(dm_queue rl-flush)/write_cache")" = "write back" ]

# Discards: 2 MiB at 1 MiB into the target, which starts 1 MiB into ram1.
dmsetup create rl-disc --table "0 16384 rlinear /dev/ram1 2048"
dm_test "discard through rlinear succeeds" blkdiscard -o $((1 << 20)) -l $((2 << 20)) /dev/mapper/rl-disc
dd if=/dev/zero of=/tmp/rl-ram1.img bs=1M seek=2 count=2 conv=notrunc 2>/dev/null
cmp -s /dev/ram1 /tmp/rl-ram1.img
dm_test "exactly the discarded range of the device reads as zeroes" [ $? = 0 ]
dm_test "discard limits passed up from the device" \
	[ "$(cat "$(dm_queue rl-disc)/discard_max_bytes")" -gt 0 ]
ktap_finished

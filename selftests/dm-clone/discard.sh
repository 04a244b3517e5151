#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Discards (behaviour 5): regions a discard covers whole are marked copied and
# the discard goes down to the destination trimmed to them; partial regions at
# its edges are left alone (their data still comes from the source); with
# no_discard_passdown, or a destination that cannot discard, the regions are
# marked but the destination untouched; a discard to the end of the target
# covers a short last region; discard limits and io_min/io_opt are set from the
# region size; a region being copied when a discard covers it is left to its
# copy, so a write to it after the discard survives the copy landing.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_setup
command -v blkdiscard >/dev/null || { ktap_skip_all "no blkdiscard"; exit "$KSFT_SKIP"; }
ktap_set_plan 21

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
R=8192 # region bytes (16 sectors)
# The destination starts full of 0xaa bytes, to see what a discard touched
# (brd reads discarded pages as zeroes).
fill_dest() {
	dd if=/dev/zero bs=1M count=$DMC_DEV_MB 2>/dev/null | tr '\0' '\252' >/tmp/dmc-aa.img
	dd if=/tmp/dmc-aa.img of="$DMC_DEST" bs=1M oflag=direct 2>/dev/null
	dd if=/dev/zero of="$DMC_META" bs=1M count=1 oflag=direct 2>/dev/null
}
dd if=/dev/zero of=/tmp/dmc-zero.bin bs=$R count=16 2>/dev/null

fill_dest
dm_test "create with 8 KiB regions, no background copy" dmsetup create dmc-dc --table \
	"0 $len clone $DMC_META $DMC_DEST $DMC_SRC 16 1 no_background_copy"
C=/dev/mapper/dmc-dc
q=$(dm_queue dmc-dc)
dm_test "io_min and io_opt are the region size" \
	[ "$(cat $q/minimum_io_size)" = $R -a "$(cat $q/optimal_io_size)" = $R ]
dm_test "discard granularity is the destination's (passdown)" \
	[ "$(cat $q/discard_granularity)" = "$(cat /sys/block/ram1/queue/discard_granularity)" ]

# From the middle of region 10 to the middle of region 20: regions 11..19.
blkdiscard -o $((10 * R + 4096)) -l $((10 * R)) $C
dm_test "the 9 regions covered whole are marked copied" [ "$(dmc_copied dmc-dc)" = 9 ]
dm_test "they are discarded on the destination" dmc_same "$DMC_DEST" $R 9 11 /tmp/dmc-zero.bin 0
# edges <device> <image>: regions 10 and 20 of the device equal the image's.
edges() { dmc_same "$1" $R 1 10 "$2" 10 && dmc_same "$1" $R 1 20 "$2" 20; }
dm_test "the edge regions are untouched on the destination" edges "$DMC_DEST" /tmp/dmc-aa.img
dm_test "the edge regions still read as the source" edges $C /tmp/dmc-src.img
inside_one() {
	blkdiscard -o $((30 * R + 512)) -l 4096 $C && [ "$(dmc_copied dmc-dc)" = 9 ] &&
		dmc_same "$DMC_DEST" $R 1 30 /tmp/dmc-aa.img 30 && dmc_same $C $R 1 30 /tmp/dmc-src.img 30
}
dm_test "a discard inside one region does nothing (region not marked, bytes unchanged)" inside_one
dmsetup remove dmc-dc

fill_dest
dm_test "create with no_discard_passdown" dmsetup create dmc-dc --table \
	"0 $len clone $DMC_META $DMC_DEST $DMC_SRC 16 2 no_background_copy no_discard_passdown"
q=$(dm_queue dmc-dc)
dm_test "discard granularity is the region size (no passdown)" \
	[ "$(cat $q/discard_granularity)" = $R ]
blkdiscard -o $((40 * R)) -l $((10 * R)) $C
dm_test "the 10 regions are marked copied" [ "$(dmc_copied dmc-dc)" = 10 ]
dm_test "the destination is untouched" dmc_same "$DMC_DEST" $R 10 40 /tmp/dmc-aa.img 40
dmsetup remove dmc-dc

# A target 4 KiB short of a whole number of regions: its last region is short.
fill_dest
short=$((len - 8))
dm_test "create with a short last region" dmsetup create dmc-dc --table \
	"0 $short clone $DMC_META $DMC_DEST $DMC_SRC 16 1 no_background_copy"
last=$((short / 16)) # index of the short region
blkdiscard -o $(((last - 1) * R)) -l $((R + 4096)) $C
dm_test "a discard to the end covers the short last region (2 marked)" [ "$(dmc_copied dmc-dc)" = 2 ]
dm_test "and discards it on the destination" dmc_same "$DMC_DEST" 4096 3 $(((last - 1) * 2)) /tmp/dmc-zero.bin 0
dmsetup remove dmc-dc

# A destination that cannot discard (null_blk without discard): passdown is
# turned off, with a log line and the feature in the status; discards still
# mark regions.
if modprobe null_blk nr_devices=1 gb=1 memory_backed=1 discard=0 2>/dev/null; then
	dd if=/dev/zero of="$DMC_META" bs=1M count=1 oflag=direct 2>/dev/null
	dm_dmesg_mark nodiscard
	dm_test "create on a destination that cannot discard" dmsetup create dmc-dc --table \
		"0 $len clone $DMC_META /dev/nullb0 $DMC_SRC 16 1 no_background_copy"
	dm_dmesg_since nodiscard | grep -q "discard unsupported: disabling discard passdown"
	dm_test "passdown is turned off, with a log line" \
		[ $? = 0 -a "$(dmsetup status dmc-dc | awk '{ print $9, $10, $11 }')" = "2 no_background_copy no_discard_passdown" ]
	blkdiscard -o $((40 * R)) -l $((10 * R)) $C
	dm_test "discards still mark regions (10)" [ "$(dmc_copied dmc-dc)" = 10 ]
	dmsetup remove dmc-dc
	rmmod null_blk
else
	for t in "create on a destination that cannot discard" "passdown is turned off, with a log line" \
		"discards still mark regions (10)"; do
		ktap_test_skip "$t (no null_blk)"
	done
fi

# A discard of the whole device while regions are being copied. The source is
# suspended, so the copies the clone starts at once (from region 0 on) wait
# there. The discard marks every other region; region 0, being copied, is left
# to its copy: a write to it after the discard waits for that copy and lands
# over it. (Marked by the discard, the write would go straight to the
# destination and the copy, landing after, would overwrite it.)
dd if=/dev/zero of="$DMC_META" bs=1M count=1 oflag=direct 2>/dev/null
dmc_slow_source 0
dmsetup suspend dmc-zslow
dmsetup create dmc-dc --table "0 $len clone $DMC_META $DMC_DEST /dev/mapper/dmc-zslow 16"
dmc_wait_for 10 '[ "$(dmc_status_field dmc-dc 5)" -gt 0 ]'
inflight=$(dmc_status_field dmc-dc 5)
blkdiscard $C
copied=$(dmc_copied dmc-dc)
echo "# $inflight regions being copied at the discard; $copied of $((len / 16)) marked by it"
dm_test "a discard leaves the regions being copied unmarked" \
	[ "$inflight" -gt 0 -a "$copied" = $((len / 16 - inflight)) ]
dd if=/dev/urandom of=/tmp/dmc-w0.img bs=4096 count=1 2>/dev/null
dd if=/tmp/dmc-w0.img of=$C bs=4096 count=1 oflag=direct 2>/dev/null &
writer=$!
sleep 0.5
dmsetup resume dmc-zslow
wait $writer
dm_test "a write after it to such a region lands over its copy" \
	dmc_same $C 4096 1 0 /tmp/dmc-w0.img 0
dm_test "and the rest of the region reads as the source" \
	dmc_same $C 4096 1 1 /tmp/dmc-src.img 1
dmsetup remove dmc-dc
dmsetup remove dmc-zslow
ktap_finished

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Where bios go (behaviours 1 and 2 of the clone target): reads of regions not
# copied come from the source; a write covering a whole region goes to the
# destination without reading the source and marks the region; a partial write
# waits while its region is copied (once), then lands; concurrent partial writes
# to one region copy it once and all land; writes to copied regions go to the
# destination. The background copy is off, so every source read is ours.
# Source reads are counted in /proc/diskstats; a count that cannot be read fails
# the check (an empty value on both sides would compare equal).
. "$(dirname "$0")/lib.sh"

ktap_print_header
dmc_setup
ktap_set_plan 14

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
R=65536 # region bytes (128 sectors)
B=4096
cp /tmp/dmc-src.img /tmp/dmc-exp.img
# The source through a linear device: device-mapper counts its reads in
# /proc/diskstats (brd does not).
dmc_linear dmc-zsrc "$DMC_SRC" || ktap_exit_fail_msg "cannot make the source's linear device"
S=$(command dmsetup info -c --noheadings -o blkdevname dmc-zsrc)
dmc_between "$(dmc_sectors_read "$S")" 0 999999999 || ktap_exit_fail_msg "no read count for the source ($S)"
# source_reads <command...>: run it; $got is the number of sectors it read from the source.
source_reads() {
	local before after
	before=$(dmc_sectors_read "$S")
	"$@"
	after=$(dmc_sectors_read "$S")
	if dmc_between "$before" 0 999999999 && dmc_between "$after" 0 999999999; then
		got=$((after - before))
	else
		got=unknown
	fi
	echo "# source sectors read: $got"
}
dm_test "create with 64 KiB regions, no background copy" dmsetup create dmc-io --table \
	"0 $(dm_sectors "$DMC_SRC") clone $DMC_META $DMC_DEST /dev/mapper/dmc-zsrc 128 1 no_background_copy"
C=/dev/mapper/dmc-io

# 1. A read of region 3 returns what the source holds now (written after create).
dd if=/dev/urandom of=/tmp/dmc-m.bin bs=$R count=1 2>/dev/null
dd if=/tmp/dmc-m.bin of="$DMC_SRC" bs=$R seek=3 oflag=direct 2>/dev/null
dmc_put /tmp/dmc-m.bin $R 1 0 /tmp/dmc-src.img 3
dmc_put /tmp/dmc-m.bin $R 1 0 /tmp/dmc-exp.img 3
dm_test "read of an uncopied region returns the source's current bytes" \
	dmc_same $C $R 1 3 /tmp/dmc-m.bin 0
dm_test "reads copy nothing" [ "$(dmc_copied dmc-io)" = 0 ]

# 2. A whole-region write to region 5: no source read, region marked.
dd if=/dev/urandom of=/tmp/dmc-w.bin bs=$R count=1 2>/dev/null
source_reads dd if=/tmp/dmc-w.bin of=$C bs=$R seek=5 oflag=direct 2>/dev/null
dmc_put /tmp/dmc-w.bin $R 1 0 /tmp/dmc-exp.img 5
dm_test "whole-region write reads nothing from the source" [ "$got" = 0 ]
dm_test "whole-region write marks its region copied" [ "$(dmc_copied dmc-io)" = 1 ]
dm_test "whole-region write is on the destination" dmc_same "$DMC_DEST" $R 1 5 /tmp/dmc-w.bin 0

# 3. A 4 KiB write into the middle of region 7: the region is copied, once.
dd if=/dev/urandom of=/tmp/dmc-p.bin bs=$B count=1 2>/dev/null
source_reads dd if=/tmp/dmc-p.bin of=$C bs=$B seek=$((7 * 16 + 5)) oflag=direct 2>/dev/null
dmc_put /tmp/dmc-p.bin $B 1 0 /tmp/dmc-exp.img $((7 * 16 + 5))
dm_test "partial write copies its region: 128 sectors read from the source" [ "$got" = 128 ]
dm_test "partial write lands on the copied region" dmc_same "$DMC_DEST" $R 1 7 /tmp/dmc-exp.img 7

# 4. Eight concurrent 4 KiB writes into region 9: one copy, all eight land. The
# source answers after 2 s (dm-delay), so all eight arrive while the region's copy
# is in flight: they are seen in flight together on the clone.
for i in 0 1 2 3 4 5 6 7; do
	dd if=/dev/urandom of=/tmp/dmc-c$i.bin bs=$B count=1 2>/dev/null
	dmc_put /tmp/dmc-c$i.bin $B 1 0 /tmp/dmc-exp.img $((9 * 16 + i * 2))
done
inflight_writes() { awk '{ print $2 }' "$(dm_queue dmc-io)/../inflight"; }
eight() {
	for i in 0 1 2 3 4 5 6 7; do
		dd if=/tmp/dmc-c$i.bin of=$C bs=$B seek=$((9 * 16 + i * 2)) oflag=direct 2>/dev/null &
	done
	dmc_wait_for 2 '[ "$(inflight_writes)" = 8 ]'
	together=$?
	wait
}
dmc_swap dmc-zsrc "0 $(dm_sectors "$DMC_SRC") delay $DMC_SRC 0 2000" ||
	ktap_exit_fail_msg "cannot delay the source"
source_reads eight
dmc_swap dmc-zsrc "0 $(dm_sectors "$DMC_SRC") linear $DMC_SRC 0"
dm_test "8 concurrent partial writes wait for the region's copy together" [ "$together" = 0 ]
dm_test "concurrent partial writes copy their region once" [ "$got" = 128 ]
dm_test "all concurrent writes land" dmc_same "$DMC_DEST" $R 1 9 /tmp/dmc-exp.img 9
dm_test "three regions copied" [ "$(dmc_copied dmc-io)" = 3 ]

# 5. A write to a copied region goes to the destination without a source read.
dd if=/dev/urandom of=/tmp/dmc-q.bin bs=$B count=1 2>/dev/null
source_reads dd if=/tmp/dmc-q.bin of=$C bs=$B seek=$((7 * 16 + 9)) oflag=direct 2>/dev/null
dmc_put /tmp/dmc-q.bin $B 1 0 /tmp/dmc-exp.img $((7 * 16 + 9))
dm_test "write to a copied region reads nothing from the source" [ "$got" = 0 ]

dm_cmp_direct $C /tmp/dmc-exp.img
dm_test "the whole device reads as the source plus every write" [ $? = 0 ]

dmsetup remove dmc-io
ktap_finished

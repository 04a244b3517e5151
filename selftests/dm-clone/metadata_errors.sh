#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Metadata failures (behaviour 7). Metadata writes failing: the commit fails,
# the transaction is aborted (the metadata reopened as last committed) and the
# clone goes read-only, with a dm event: the bio that needed the commit fails.
# Nothing can be recorded any more, so the regions marked since the last commit
# read as not copied again (from the source, as after a reload), and every
# write that would need a mark fails: to regions not copied, to regions whose
# mark was not committed, and writes waiting for a copy that completes after the
# failure. Writes to regions committed as copied work. After a clean remove and
# a reload on healthy metadata, everything reads back as it did before the
# remove (C loses the write to the uncommitted region there). All metadata I/O
# failing: the abort fails too and the clone goes to Fail, with an event: all
# I/O fails, and it stays in Fail when the metadata device is healthy again.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_setup
dm_require_modules dm_flakey dm_delay
ktap_set_plan 22

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
msect=$(dm_sectors "$DMC_META")
dmc_linear dmc-zmeta "$DMC_META" || ktap_exit_fail_msg "cannot make the metadata device"
healthy="0 $msect linear $DMC_META 0"
flakey="0 $msect flakey $DMC_META 0 0 1 1 error_writes"
# 8 KiB regions: a 4 KiB direct write is a partial one. (busybox dd's writes below
# 4 KiB are not direct: it reads and writes back the whole 4 KiB page.)
table="0 $len clone /dev/mapper/dmc-zmeta $DMC_DEST $DMC_SRC 16 1 no_background_copy"
C=/dev/mapper/dmc-me
cp /tmp/dmc-src.img /tmp/dmc-exp.img
dd if=/dev/urandom of=/tmp/dmc-w.bin bs=4096 count=1 2>/dev/null

dm_test "create" dmsetup create dmc-me --table "$table"
# Region 1 copied and committed while the metadata is healthy.
dd if=/tmp/dmc-w.bin of=$C bs=4096 count=1 seek=2 oflag=direct conv=fsync 2>/dev/null
dm_test "a partial write with fsync while the metadata is healthy" [ $? = 0 ]
dmc_put /tmp/dmc-w.bin 4096 1 0 /tmp/dmc-exp.img 2
ev=$(dmc_event_nr dmc-me)
# Writes to the metadata fail from now on; reads work.
dmc_swap dmc-zmeta "$flakey"
# A partial write: region 3 is copied, then fsync needs a commit, which fails. (The
# write is not in the expected image: its region's mark never reaches the disk.)
dd if=/tmp/dmc-w.bin of=$C bs=4096 count=1 seek=6 oflag=direct conv=fsync 2>/dev/null
dm_test "fsync fails when the commit it needs fails" [ $? != 0 ]
dm_test "status shows metadata mode ro" [ "$(dmc_mode dmc-me)" = ro ]
dm_test "a dm event was raised" [ "$(dmc_event_nr dmc-me)" -gt "$ev" ]
dm_test "region 3, whose mark was not committed, reads as the source again (as after a reload)" \
	dmc_same $C 8192 1 3 /tmp/dmc-src.img 3
dm_test "1 region copied: the committed one" [ "$(dmc_copied dmc-me)" = 1 ]
dm_cmp_direct $C /tmp/dmc-exp.img
dm_test "reads are served: the source, and the write committed before the failure" [ $? = 0 ]
dd if=/tmp/dmc-w.bin of=$C bs=4096 count=1 seek=100 oflag=direct 2>/dev/null
dm_test "a write to a region not copied fails" [ $? != 0 ]
dd if=/tmp/dmc-w.bin of=$C bs=4096 count=1 seek=7 oflag=direct 2>/dev/null
dm_test "a write to region 3 (its mark cannot be recorded) fails" [ $? != 0 ]
copied_write() {
	dd if=/tmp/dmc-w.bin of=$C bs=4096 count=1 seek=3 oflag=direct 2>/dev/null &&
		dmc_same $C 4096 1 3 /tmp/dmc-w.bin 0
}
dm_test "a write to a region committed as copied works and reads back" copied_write
dmc_put /tmp/dmc-w.bin 4096 1 0 /tmp/dmc-exp.img 3
dd if=$C of=/tmp/dmc-before.img bs=1M iflag=direct 2>/dev/null
dmsetup remove dmc-me

# Healthy again: the on-disk metadata is the last committed (region 1).
dmc_swap dmc-zmeta "$healthy"
recreate() { dmsetup create dmc-me --table "$table" && [ "$(dmc_mode dmc-me)" = rw ]; }
dm_test "recreate on the same metadata, mode rw" recreate
dm_test "it holds what was committed: 1 region copied" [ "$(dmc_copied dmc-me)" = 1 ]
same_as_before() {
	dm_cmp_direct $C /tmp/dmc-before.img || { echo "# differs from what it read before the remove"; return 1; }
	dm_cmp_direct $C /tmp/dmc-exp.img
}
dm_test "after the reload, everything reads back as before the remove (and as expected)" same_as_before
dmsetup remove dmc-me

# A write waiting for a copy when the metadata fails: the source reads take 1.5 s,
# the metadata fails 0.3 s into the copy (a discard marks region 8, and a flush
# needs its commit); the copy completes afterwards, unrecorded, so the write fails.
dmc_slow_source 1500
slow_table="0 $len clone /dev/mapper/dmc-zmeta $DMC_DEST /dev/mapper/dmc-zslow 16 1 no_background_copy"
dmsetup create dmc-me --table "$slow_table" || ktap_exit_fail_msg "cannot create the clone over the slow source"
dmc_swap dmc-zmeta "$flakey"
dd if=/tmp/dmc-w.bin of=$C bs=4096 count=1 seek=12 oflag=direct 2>/dev/null &
waiter=$!
sleep 0.3
blkdiscard -o $((8 * 8192)) -l 8192 $C
dd if=/dev/zero of=$C bs=4096 count=0 conv=fsync 2>/dev/null
dm_test "the flush that needs the discard's commit fails, mode ro" [ "$(dmc_mode dmc-me)" = ro ]
wait $waiter
dm_test "the write waiting for the copy in flight fails (the copy cannot be recorded)" [ $? != 0 ]
dm_test "and region 6 reads as the source" dmc_same $C 8192 1 6 /tmp/dmc-src.img 6
dmsetup remove dmc-me
dmsetup remove dmc-zslow
dmc_swap dmc-zmeta "$healthy"
dmsetup create dmc-me --table "$table" || ktap_exit_fail_msg "cannot recreate the clone"

ev=$(dmc_event_nr dmc-me)
dmc_swap dmc-zmeta "0 $msect error"
dd if=/tmp/dmc-w.bin of=$C bs=4096 count=1 seek=8 oflag=direct conv=fsync 2>/dev/null
dm_test "status shows Fail when the abort fails too" [ "$(dmsetup status dmc-me | awk '{ print $4 }')" = Fail ]
dm_test "a dm event was raised" [ "$(dmc_event_nr dmc-me)" -gt "$ev" ]
dd if=$C of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null
dm_test "reads fail in Fail mode" [ $? != 0 ]
dmc_swap dmc-zmeta "$healthy"
dmsetup message dmc-me 0 enable_background_copy
sleep 1.5
dm_test "Fail is never left, even with healthy metadata" [ "$(dmsetup status dmc-me | awk '{ print $4 }')" = Fail ]
dm_test "remove in Fail mode" dmsetup remove dmc-me
ktap_finished

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
# remove (so does C here; ro_window.sh shows where C differs). All metadata I/O
# failing: the abort fails too and the clone goes to Fail, with an event: all
# I/O fails (reads, writes, flushes and discards, on a copied region too), and it
# stays in Fail when the metadata device is healthy again.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_setup
dm_require_modules dm_flakey dm_delay
ktap_set_plan 28

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
msect=$(dm_sectors "$DMC_META")
dmc_linear dmc-zmeta "$DMC_META" || ktap_exit_fail_msg "cannot make the metadata device"
healthy="0 $msect linear $DMC_META 0"
flakey="0 $msect flakey $DMC_META 0 0 1 1 error_writes"
# 8 KiB regions: a 4 KiB direct write is a partial one. (busybox dd's writes below
# 4 KiB are not direct: it reads and writes back the whole 4 KiB page.)
# The source through dm-linear, whose reads /proc/diskstats counts (brd's are not).
dmc_linear dmc-zsrc "$DMC_SRC" || ktap_exit_fail_msg "cannot make the source device"
table="0 $len clone /dev/mapper/dmc-zmeta $DMC_DEST /dev/mapper/dmc-zsrc 16 1 no_background_copy"
C=/dev/mapper/dmc-me
cp /tmp/dmc-src.img /tmp/dmc-exp.img
dd if=/dev/urandom of=/tmp/dmc-w.bin bs=4096 count=1 2>/dev/null

dm_test "create" dmsetup create dmc-me --table "$table"
# Region 1 copied and committed while the metadata is healthy.
dd if=/tmp/dmc-w.bin of=$C bs=4096 count=1 seek=2 oflag=direct conv=fsync 2>/dev/null
dm_test "a partial write with fsync while the metadata is healthy" [ $? = 0 ]
dmc_put /tmp/dmc-w.bin 4096 1 0 /tmp/dmc-exp.img 2
ev=$(dmc_event_nr dmc-me)
dm_dmesg_mark me-ro
# Writes to the metadata fail from now on; reads work.
dmc_swap dmc-zmeta "$flakey"
# A partial write: region 3 is copied, then fsync needs a commit, which fails. (The
# write is not in the expected image: its region's mark never reaches the disk.)
# (dd's status does not tell its write from its fsync: the write is seen to have
# landed on the destination, so what failed is the fsync.)
fsync_fails() {
	if dd if=/tmp/dmc-w.bin of=$C bs=4096 count=1 seek=6 oflag=direct conv=fsync 2>/dev/null; then
		echo "# the write and its fsync succeeded"
		return 1
	fi
	dmc_same "$DMC_DEST" 4096 1 6 /tmp/dmc-w.bin 0 || { echo "# the write did not land"; return 1; }
}
dm_test "fsync fails when the commit it needs fails (the write itself landed)" fsync_fails
dm_test "status shows metadata mode ro" [ "$(dmc_mode dmc-me)" = ro ]
dm_test "a dm event was raised" [ "$(dmc_event_nr dmc-me)" -gt "$ev" ]
dm_test "region 3, whose mark was not committed, reads as the source again (as after a reload)" \
	dmc_same $C 8192 1 3 /tmp/dmc-src.img 3
dm_test "1 region copied: the committed one" [ "$(dmc_copied dmc-me)" = 1 ]
# The log counts what was taken back (region 3, the one mark not committed) and
# says that flushes fail from now on.
logged() {
	dm_dmesg_since me-ro | grep -q ": 1 regions copied since the last commit read as not copied again" &&
		dm_dmesg_since me-ro | grep -q ": writes acknowledged to them since are lost: every flush and FUA write fails"
}
dm_test "the log says 1 region reads as not copied again, and that every flush fails from now on" logged
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
# ro stops the background copy and is never left: with the copy turned on and
# the metadata healthy again, after two periodic commits' time, the source has
# not been read (a copy reads it even where its mark would be refused: the
# copied count alone would not show a copy running) and the mode is still ro
# (removing and reloading the table is the way back).
dmc_swap dmc-zmeta "$healthy"
S=$(command dmsetup info -c --noheadings -o blkdevname dmc-zsrc)
ro_r0=$(dmc_reads_done "$S")
dmsetup message dmc-me 0 enable_background_copy
sleep 2.5
ro_stays() {
	r1=$(dmc_reads_done "$S")
	echo "# in ro with the copy on and healthy metadata: source reads $ro_r0 -> $r1, mode $(dmc_mode dmc-me)"
	[ "$(dmc_mode dmc-me)" = ro ] && [ "$r1" = "$ro_r0" ]
}
dm_test "ro stops the background copy and is never left, even with healthy metadata" ro_stays
dmsetup message dmc-me 0 disable_background_copy
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

# A write waiting for a copy when the metadata fails: the source reads take 5 s
# (the checks below must all fall within one copy, on the debug kernel too);
# a partial write to region 6 waits for its copy, seen in flight (the status's
# count, the only copy: the background copy is off) while the write is pending;
# then the metadata fails (a discard marks region 8, and a flush needs its
# commit, which fails: the flush fails, mode ro) while the copy is still in flight
# and the write still pending; the copy completes afterwards, unrecorded, so the
# write fails. (A write issued in ro mode fails at once, without a copy: the
# order of events is what shows this one waited.) The status is read with
# --noflush (no commit); the write's subshell writes dd's exit status to
# /tmp/dmc-waiter.rc when dd ends.
dmc_slow_source 5000
slow_table="0 $len clone /dev/mapper/dmc-zmeta $DMC_DEST /dev/mapper/dmc-zslow 16 1 no_background_copy"
dmsetup create dmc-me --table "$slow_table" || ktap_exit_fail_msg "cannot create the clone over the slow source"
dmc_swap dmc-zmeta "$flakey"
# now: "<regions in flight> <mode> <write pending: 1, or 0>".
now() {
	dmsetup status --noflush dmc-me | awk -v p="$([ -e /tmp/dmc-waiter.rc ] && echo 0 || echo 1)" \
		'{ print $8, $NF, p }'
}
rm -f /tmp/dmc-waiter.rc
(
	dd if=/tmp/dmc-w.bin of=$C bs=4096 count=1 seek=12 oflag=direct 2>/dev/null
	echo $? >/tmp/dmc-waiter.rc
) &
waiter=$!
dmc_wait_for 2 '[ "$(now)" = "1 rw 1" ]'
at_write=$(now)
echo "# the write issued: in flight, mode, write pending: $at_write"
dm_test "the partial write to region 6 waits for its copy: 1 region in flight, mode rw" \
	[ "$at_write" = "1 rw 1" ]
blkdiscard -o $((8 * 8192)) -l 8192 $C || echo "# the discard of region 8 failed"
dd if=/dev/zero of=$C bs=4096 count=0 conv=fsync 2>/dev/null
flush_rc=$?
at_flush=$(now)
echo "# the flush returned $flush_rc; then in flight, mode, write pending: $at_flush"
flush_fails() { [ $flush_rc != 0 ] && [ "${at_flush#* }" = "ro 1" ]; }
dm_test "the flush that needs the discard's commit fails, mode ro" flush_fails
wait $waiter
waiter_rc=$(cat /tmp/dmc-waiter.rc 2>/dev/null)
echo "# the write returned $waiter_rc"
waited_and_failed() {
	[ "$at_flush" = "1 ro 1" ] || { echo "# the copy or the write was no longer in flight when the mode went ro"; return 1; }
	dmc_between "$waiter_rc" 1 255
}
dm_test "the write waiting for the copy in flight fails (the copy cannot be recorded)" waited_and_failed
dm_test "and region 6 reads as the source" dmc_same $C 8192 1 6 /tmp/dmc-src.img 6
dmsetup remove dmc-me
dmsetup remove dmc-zslow
dmc_swap dmc-zmeta "$healthy"
dmsetup create dmc-me --table "$table" || ktap_exit_fail_msg "cannot recreate the clone"

# What Fail must stop, shown to work first: reads (region 0 from the source, region
# 1, committed as copied, from the destination), and on region 1 a discard, a
# write and a flush, none of which needs a mark.
rd() { dd if=$C of=/dev/null bs=4096 count=1 skip="$1" iflag=direct 2>/dev/null; }
wr() { dd if=/tmp/dmc-w.bin of=$C bs=4096 count=1 seek="$1" oflag=direct 2>/dev/null; }
fl() { dd if=/dev/zero of=$C bs=4096 count=0 conv=fsync 2>/dev/null; }
dsc() { blkdiscard -o 8192 -l 8192 $C; }
works_before() { [ "$(dmc_copied dmc-me)" = 1 ] && rd 0 && rd 2 && dsc && wr 3 && fl; }
dm_test "before Fail: region 1 copied; reads, and a discard, a write and a flush of region 1 work" works_before
ev=$(dmc_event_nr dmc-me)
dmc_swap dmc-zmeta "0 $msect error"
dd if=/tmp/dmc-w.bin of=$C bs=4096 count=1 seek=8 oflag=direct conv=fsync 2>/dev/null
dm_test "status shows Fail when the abort fails too" [ "$(dmsetup status dmc-me | awk '{ print $4 }')" = Fail ]
dm_test "a dm event was raised" [ "$(dmc_event_nr dmc-me)" -gt "$ev" ]
# fails <what> <command...>: the command fails; says so if not.
fails() {
	w=$1
	shift
	if "$@"; then echo "# in Fail mode, $w succeeded"; return 1; fi
}
reads_fail() { fails "a read of region 0" rd 0 && fails "a read of region 1" rd 2; }
dm_test "reads fail in Fail mode (region 0 from the source, region 1 from the destination)" reads_fail
dm_test "writes fail in Fail mode (to region 1, copied: no mark needed)" fails "a write to region 1" wr 3
flush_discard_fail() { fails "a flush" fl && fails "a discard of region 1" dsc; }
dm_test "flushes and discards fail in Fail mode" flush_discard_fail
dmc_swap dmc-zmeta "$healthy"
dmsetup message dmc-me 0 enable_background_copy
sleep 1.5
in_fail() { [ "$(dmsetup status dmc-me | awk '{ print $4 }')" = Fail ] && fails "a read of region 1" rd 2; }
dm_test "Fail is never left, even with healthy metadata (reads still fail)" in_fail
dm_test "remove in Fail mode" dmsetup remove dmc-me
ktap_finished

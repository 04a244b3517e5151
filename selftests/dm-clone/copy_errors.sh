#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Copy errors (behaviour 8): with a source block that cannot be read, a write
# waiting for its region's copy fails with an I/O error, the failure is logged
# and raises a dm event; everything else keeps working (other writes, the
# background copy of every other region, metadata stays rw); a FUA write that
# covers a region holding a bad block reads nothing from the source, so it
# succeeds (as in C: it goes straight down, completing after the commit that
# records its region; it took the copy path and failed before); the region is tried
# 3 times in all, then given up (listed by copy_failures, logged, not tried
# again), and once the source reads again, retry_failed copies it.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_setup
dm_require_modules dm_dust
ktap_set_plan 18

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
total=$((len / 16))
# The source through dm-dust, 4 KiB blocks; block 41 (in region 20 of 8 KiB) is bad.
dmsetup create dmc-zdust --table "0 $len dust $DMC_SRC 0 4096" ||
	ktap_exit_fail_msg "cannot make the dust device"
dmsetup message dmc-zdust 0 addbadblock 41 >/dev/null 2>&1
dmsetup message dmc-zdust 0 enable >/dev/null 2>&1
C=/dev/mapper/dmc-ce
cp /tmp/dmc-src.img /tmp/dmc-exp.img
dm_test "create, 8 KiB regions, no background copy" dmsetup create dmc-ce --table \
	"0 $len clone $DMC_META $DMC_DEST /dev/mapper/dmc-zdust 16 1 no_background_copy"

ev=$(dmc_event_nr dmc-ce)
dm_dmesg_mark copyerr
dd if=/dev/urandom of=/tmp/dmc-w.bin bs=4096 count=1 2>/dev/null
dd if=/tmp/dmc-w.bin of=$C bs=4096 count=1 seek=40 oflag=direct 2>/dev/null
dm_test "a write waiting for a failed copy fails" [ $? != 0 ]
dm_dmesg_since copyerr | grep -q "copying regions 20..21 failed (read"
dm_test "the failure is logged with the region and the device" [ $? = 0 ]
dmc_wait_for 3 '[ "$(dmc_event_nr dmc-ce)" -gt "$ev" ]'
dm_test "a dm event is raised" [ $? = 0 ]
# The expected image takes the write whatever dd says: a write that fails (or
# lands elsewhere) shows as a difference here and at the end.
dmc_put /tmp/dmc-w.bin 4096 1 0 /tmp/dmc-exp.img 61
other_write() {
	dd if=/tmp/dmc-w.bin of=$C bs=4096 count=1 seek=61 oflag=direct 2>/dev/null ||
		{ echo "# the write to region 30 failed"; return 1; }
	dmc_same $C 8192 1 30 /tmp/dmc-exp.img 30
}
dm_test "a write to another region succeeds and reads back" other_write
dm_test "metadata stays rw" [ "$(dmc_mode dmc-ce)" = rw ]

# A FUA write (fio: O_DIRECT + O_DSYNC) of region 50 whole, whose block 101 is bad.
dmsetup message dmc-zdust 0 addbadblock 101 >/dev/null 2>&1
S=$(command dmsetup info -c --noheadings -o blkdevname dmc-zdust)
before=$(dmc_sectors_read "$S")
copied=$(dmc_copied dmc-ce)
fua_write() {
	(cd /tmp && fio --name=fua --filename=$C --rw=write --bs=8k --size=8k \
		--offset=$((50 * 8192)) --direct=1 --sync=dsync --ioengine=libaio --iodepth=1 \
		--verify=crc32c --do_verify=1 >/tmp/dmc-fio.txt 2>&1) ||
		{ sed 's/^/# /' /tmp/dmc-fio.txt | tail -n 5; return 1; }
}
dm_test "a FUA whole-region write over a bad source block succeeds and reads back" fua_write
after=$(dmc_sectors_read "$S")
echo "# source sectors read by the FUA write: $before -> $after"
read_nothing() { [ -n "$before" ] && [ "$before" = "$after" ]; }
dm_test "it read nothing from the source" read_nothing
dm_test "and marked its region copied" [ "$(dmc_copied dmc-ce)" = $((copied + 1)) ]
dd if=$C of=/tmp/dmc-f.bin bs=8192 skip=50 count=1 iflag=direct 2>/dev/null
dmc_put /tmp/dmc-f.bin 8192 1 0 /tmp/dmc-exp.img 50

dmsetup message dmc-ce 0 copy_threshold 32
dmsetup message dmc-ce 0 copy_batch_size 4
dmsetup message dmc-ce 0 enable_background_copy
dm_test "the background copy copies every other region" \
	dmc_wait_for 60 '[ "$(dmc_copied dmc-ce)" = $((total - 1)) ]'
# Bounded retries: after 3 failed copies (with a pause of 1 s, then 2 s, between
# passes) the region is given up, listed, and no longer tried.
failures() { dmsetup message dmc-ce 0 copy_failures; }
dm_test "after 3 failed copies the region is given up: copy_failures lists it" \
	dmc_wait_for 20 '[ "$(failures)" = "given_up=1 first=20" ]'
echo "# copy_failures: $(failures)"
gave_up_logged() { dm_dmesg_since copyerr | grep -q "region 20 given up after 3 failed copies"; }
dm_test "giving up is logged with the region" gave_up_logged
tries() { dm_dmesg_since copyerr | grep -c "copying regions 20..21 failed"; }
t0=$(tries)
sleep 3
t1=$(tries)
echo "# failed copies of region 20 logged: $t0, 3 s later $t1"
three_tries() { [ "$t0" = 3 ] && [ "$t1" = 3 ]; }
dm_test "a given-up region is not tried again (3 tries in all)" three_tries
dm_test "the bad region stays uncopied" [ "$(dmc_copied dmc-ce)" = $((total - 1)) ]
dmsetup message dmc-zdust 0 clearbadblocks >/dev/null 2>&1
sleep 2
dm_test "given up, it stays uncopied when the source reads again" [ "$(dmc_copied dmc-ce)" = $((total - 1)) ]
dmsetup message dmc-ce 0 retry_failed
dm_test "retry_failed tries it again: it is copied" dmc_wait_copied dmc-ce 10
dm_test "and copy_failures lists none" [ "$(failures)" = "given_up=0 first=-" ]
dmsetup remove dmc-ce
cmp -s "$DMC_DEST" /tmp/dmc-exp.img
dm_test "destination equals the source plus the write to region 30" [ $? = 0 ]
ktap_finished

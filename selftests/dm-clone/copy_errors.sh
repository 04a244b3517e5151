#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Copy errors (behaviour 8): with a source block that cannot be read, a write
# waiting for its region's copy fails with an I/O error, the failure is logged
# and raises a dm event; everything else keeps working (other writes, the
# background copy of every other region, metadata stays rw); once the source
# reads again, the region is copied.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_setup
dm_require_modules dm_dust
ktap_set_plan 10

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

dmsetup message dmc-ce 0 copy_threshold 32
dmsetup message dmc-ce 0 copy_batch_size 4
dmsetup message dmc-ce 0 enable_background_copy
dm_test "the background copy copies every other region" \
	dmc_wait_for 60 '[ "$(dmc_copied dmc-ce)" = $((total - 1)) ]'
sleep 1.5
dm_test "the bad region stays uncopied while the source fails" [ "$(dmc_copied dmc-ce)" = $((total - 1)) ]
dmsetup message dmc-zdust 0 clearbadblocks >/dev/null 2>&1
dm_test "once the source reads again, it is copied" dmc_wait_copied dmc-ce 10
dmsetup remove dmc-ce
cmp -s "$DMC_DEST" /tmp/dmc-exp.img
dm_test "destination equals the source plus the write to region 30" [ $? = 0 ]
ktap_finished

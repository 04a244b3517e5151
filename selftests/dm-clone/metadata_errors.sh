#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Metadata failures (behaviour 7). Metadata writes failing: the commit fails,
# the transaction is aborted (the metadata reopened as last committed) and the
# clone goes read-only, with a dm event: the bio that needed the commit fails,
# reads are still served (including data copied before the failure), writes to
# regions not copied fail, writes to copied regions work. All metadata I/O
# failing: the abort fails too and the clone goes to Fail, with an event: all
# I/O fails, and it stays in Fail when the metadata device is healthy again.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_setup
dm_require_modules dm_flakey
ktap_set_plan 14

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
msect=$(dm_sectors "$DMC_META")
dmc_linear dmc-zmeta "$DMC_META" || ktap_exit_fail_msg "cannot make the metadata device"
healthy="0 $msect linear $DMC_META 0"
table="0 $len clone /dev/mapper/dmc-zmeta $DMC_DEST $DMC_SRC 8 1 no_background_copy"
C=/dev/mapper/dmc-me
cp /tmp/dmc-src.img /tmp/dmc-exp.img

dm_test "create" dmsetup create dmc-me --table "$table"
ev=$(dmc_event_nr dmc-me)
# Writes to the metadata fail from now on; reads work.
dmc_swap dmc-zmeta "0 $msect flakey $DMC_META 0 0 1 1 error_writes"
dd if=/dev/urandom of=/tmp/dmc-w.bin bs=4096 count=1 2>/dev/null
# A partial write: region 3 is copied, then fsync needs a commit, which fails.
dd if=/tmp/dmc-w.bin of=$C bs=512 count=1 seek=$((3 * 8 + 2)) oflag=direct conv=fsync 2>/dev/null
dm_test "fsync fails when the commit it needs fails" [ $? != 0 ]
dmc_put /tmp/dmc-w.bin 512 1 0 /tmp/dmc-exp.img $((3 * 8 + 2))
dm_test "status shows metadata mode ro" [ "$(dmc_mode dmc-me)" = ro ]
dm_test "a dm event was raised" [ "$(dmc_event_nr dmc-me)" -gt "$ev" ]
dm_cmp_direct $C /tmp/dmc-exp.img
dm_test "reads are served, including the region copied before the failure" [ $? = 0 ]
dd if=/tmp/dmc-w.bin of=$C bs=4096 count=1 seek=50 oflag=direct 2>/dev/null
dm_test "a write to a region not copied fails" [ $? != 0 ]
copied_write() {
	dd if=/tmp/dmc-w.bin of=$C bs=512 count=1 seek=$((3 * 8 + 5)) oflag=direct 2>/dev/null &&
		dmc_same $C 512 1 $((3 * 8 + 5)) /tmp/dmc-w.bin 0
}
dm_test "a write to a copied region works and reads back" copied_write
dmsetup remove dmc-me

# Healthy again: the on-disk metadata is the last committed (nothing copied).
dmc_swap dmc-zmeta "$healthy"
recreate() { dmsetup create dmc-me --table "$table" && [ "$(dmc_mode dmc-me)" = rw ]; }
dm_test "recreate on the same metadata, mode rw" recreate
dm_test "it holds what was committed: 0 regions copied" [ "$(dmc_copied dmc-me)" = 0 ]

ev=$(dmc_event_nr dmc-me)
dmc_swap dmc-zmeta "0 $msect error"
dd if=/tmp/dmc-w.bin of=$C bs=512 count=1 seek=$((4 * 8 + 2)) oflag=direct conv=fsync 2>/dev/null
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

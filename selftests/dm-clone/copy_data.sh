#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A full background copy makes the destination equal to the source, and the
# status counts every region as copied; writes made during the copy land on
# the destination and survive it.
. "$(dirname "$0")/lib.sh"

ktap_print_header
dmc_setup
ktap_set_plan 4

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
regions=$(($(dm_sectors "$DMC_SRC") / 8))

dm_test "create with hydration_threshold 64" \
	dmsetup create dmc-c --table "$(dmc_table 8 0 2 hydration_threshold 64)"

# Write 1 MiB of new data at 4 MiB while the copy runs; expect it on top of the source.
dd if=/dev/urandom of=/tmp/dmc-write.img bs=1M count=1 2>/dev/null
cp /tmp/dmc-src.img /tmp/dmc-expect.img
dd if=/tmp/dmc-write.img of=/tmp/dmc-expect.img bs=1M seek=4 conv=notrunc 2>/dev/null
dm_test "write during the copy" dm_dd /tmp/dmc-write.img /dev/mapper/dmc-c 4

dm_test "every region copied ($regions)" dmc_wait_copied dmc-c 120

dmsetup remove dmc-c
cmp "$DMC_DEST" /tmp/dmc-expect.img
dm_test "destination equals the source plus the write" [ $? = 0 ]
ktap_finished

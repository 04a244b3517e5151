#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A full background copy (from a source behind dm-delay) makes the destination
# equal to the source, and the status counts every region as copied; a write
# made while the copy runs lands on the destination and survives it.
. "$(dirname "$0")/lib.sh"

ktap_print_header
dmc_setup
dm_require_modules dm_delay
ktap_set_plan 5

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
regions=$(($(dm_sectors "$DMC_SRC") / 8))

# The source behind a 2 ms delay: the copy takes long enough that the write
# below lands while it runs.
dmc_slow_source 2
dm_test "create with hydration_threshold 64" dmsetup create dmc-c --table \
	"0 $(dm_sectors "$DMC_SRC") clone $DMC_META $DMC_DEST /dev/mapper/dmc-zslow 8 0 2 hydration_threshold 64"

# Write 1 MiB of new data at 4 MiB while the copy runs; expect it on top of the source.
dd if=/dev/urandom of=/tmp/dmc-write.img bs=1M count=1 2>/dev/null
cp /tmp/dmc-src.img /tmp/dmc-expect.img
dd if=/tmp/dmc-write.img of=/tmp/dmc-expect.img bs=1M seek=4 conv=notrunc 2>/dev/null
dm_test "write during the copy" dm_dd /tmp/dmc-write.img /dev/mapper/dmc-c 4
n=$(dmc_copied dmc-c)
echo "# regions copied right after the write: $n of $regions"
dm_test "the copy was still running after the write" dmc_between "$n" 0 $((regions - 1))

dm_test "every region copied ($regions)" dmc_wait_copied dmc-c 120

dmsetup remove dmc-c
cmp "$DMC_DEST" /tmp/dmc-expect.img
dm_test "destination equals the source plus the write" [ $? = 0 ]
ktap_finished

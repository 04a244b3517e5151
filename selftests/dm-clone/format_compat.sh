#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The Rust target and the C dm-clone share the on-disk format, both ways, in one
# run: a clone started by one module (which formats the metadata), stopped
# midway and removed, is picked up by the other on the same three devices with
# the same copied-region count, and finished; with a write in each phase, the
# result equals the source plus the writes.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
# Both modules register `clone`: only one can be loaded at a time.
dm_require_modules dm_delay dm_clone_rs
rmmod dm_clone_rs
dm_require_modules dm_clone
rmmod dm_clone
dm_brd_setup dmc- 3 "$DMC_DEV_MB"
ktap_set_plan 18

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
# A slow source (5 ms per I/O), so that a copy can be stopped midway.
dmc_slow_source 5
# Same table for both modules: the C target's option names, which ours accepts.
table_off="0 $len clone $DMC_META $DMC_DEST /dev/mapper/dmc-zslow 8 1 no_hydration 2 hydration_threshold 4"
table_on="0 $len clone $DMC_META $DMC_DEST /dev/mapper/dmc-zslow 8 0 2 hydration_threshold 4"

use() {
	command dmsetup info dmc-k >/dev/null 2>&1 && dmsetup remove dmc-k
	dmc_use_target "$1"
}
# created <table> <module>: dmc-k is made with the table and served by the module.
created() { dmsetup create dmc-k --table "$1" && dmc_serves "$2"; }

# write <MiB offset>: 64 KiB of new data through the clone, also into the expected image.
write() {
	dd if=/dev/urandom of=/tmp/dmc-w.bin bs=64k count=1 2>/dev/null
	dd if=/tmp/dmc-w.bin of=/dev/mapper/dmc-k bs=64k seek=$(($1 * 16)) oflag=direct 2>/dev/null &&
		dmc_put /tmp/dmc-w.bin 65536 1 0 /tmp/dmc-exp.img $(($1 * 16))
}

# stop_midway: let the clone copy some regions, then suspend it (which commits) and
# print the copied count; fails if it finished or copied nothing.
stop_midway() {
	dmc_wait_for 60 '[ "$(dmc_copied dmc-k)" -ge 200 ]' || return 1
	dmsetup suspend dmc-k || return 1
	n=$(dmc_copied dmc-k)
	dmsetup remove dmc-k || return 1
	echo "# stopped at $n of $((len / 8)) regions"
	[ "$n" -gt 0 ] && [ "$n" -lt $((len / 8)) ]
}

write_and_finish() {
	write 9 && dmsetup message dmc-k 0 enable_hydration && dmc_wait_copied dmc-k 120
}

# handover <from> <to>: run the clone under module <from> until midway, then
# under module <to> check the count and finish.
handover() {
	from=$1 to=$2
	dd if=/dev/zero of="$DMC_META" bs=1M count=$DMC_DEV_MB oflag=direct 2>/dev/null
	dd if=/dev/zero of="$DMC_DEST" bs=1M count=$DMC_DEV_MB oflag=direct 2>/dev/null
	cp /tmp/dmc-src.img /tmp/dmc-exp.img
	dm_test "load $from alone" use "$from"
	dm_test "$from: create on blank metadata, copy running, served by $from" \
		created "$table_on" "$from"
	dm_test "$from: write during the copy" write 3
	stop_midway >/tmp/dmc-stop.txt
	dm_test "$from: stopped midway" [ $? = 0 ]
	cat /tmp/dmc-stop.txt
	n1=$(sed -n 's/# stopped at \([0-9]*\) .*/\1/p' /tmp/dmc-stop.txt)
	dm_test "load $to alone" use "$to"
	dm_test "$to: opens the metadata $from wrote, served by $to" created "$table_off" "$to"
	dm_test "$to: same copied-region count ($n1)" [ "$(dmc_copied dmc-k)" = "$n1" ]
	dm_test "$to: write, then finish the copy" write_and_finish
	dmsetup remove dmc-k
	cmp -s "$DMC_DEST" /tmp/dmc-exp.img
	dm_test "$from -> $to: destination equals the source plus both writes" [ $? = 0 ]
}

handover dm_clone dm_clone_rs
handover dm_clone_rs dm_clone
rmmod dm_clone 2>/dev/null
ktap_finished

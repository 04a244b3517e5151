#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Suspend and resume (behaviour 6): suspending waits for the copies in flight and
# stops the copy; nothing is copied while suspended; resume restarts it;
# resuming refuses a source that became smaller than the target, and works once
# it is back; create/remove cycles while copying, and unloading the module, are
# clean (the kernel log check runs after every test).
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_setup
dm_require_modules dm_delay
ktap_set_plan 11

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
slow="0 $len delay $DMC_SRC 0 5"
dmc_slow_source 5
table="0 $len clone $DMC_META $DMC_DEST /dev/mapper/dmc-zslow 8 0 2 copy_threshold 8"
total=$((len / 8))
dmsetup create dmc-sr --table "$table" || ktap_exit_fail_msg "cannot create the clone"
dmc_wait_for 30 '[ "$(dmc_copied dmc-sr)" -ge 100 ]'

dm_test "suspend while copying" dmsetup suspend dmc-sr
dm_test "no copies in flight once suspended" [ "$(dmc_status_field dmc-sr 5)" = 0 ]
c1=$(dmc_copied dmc-sr)
sleep 1.5
c2=$(dmc_copied dmc-sr)
echo "# copied at suspend: $c1, 1.5 s later: $c2 (of $total)"
# (The count is a number between 1 and total - 1: suspended in the middle of the copy.)
still() { dmc_between "$c1" 1 $((total - 1)) && [ "$c1" = "$c2" ]; }
dm_test "nothing is copied while suspended" still
dm_test "resume" dmsetup resume dmc-sr
dm_test "the copy goes on after resume" dmc_wait_for 5 '[ "$(dmc_copied dmc-sr)" -gt "$c2" ]'

# Shrink the source while the clone is suspended.
dmsetup suspend dmc-sr
dmc_swap dmc-zslow "0 $((len - 8)) delay $DMC_SRC 0 5"
dm_dmesg_mark shrink
if dmsetup resume dmc-sr 2>/dev/null; then r=resumed; else r=refused; fi
echo "# resume with a short source: $r"
dm_dmesg_since shrink | grep -q "source device .* fewer than the target"
dm_test "resume is refused while the source is smaller than the target, with a log line" \
	[ "$r" = refused -a $? = 0 ]
dmc_swap dmc-zslow "$slow"
dm_test "resume works once the source is back" dmsetup resume dmc-sr
dm_test "and the copy finishes" dmc_wait_copied dmc-sr 120
dmsetup remove dmc-sr
cmp -s "$DMC_DEST" /tmp/dmc-src.img
dm_test "destination equals the source after the suspends and the refused resume" [ $? = 0 ]

# Each cycle removes the clone with copies in flight, after 0, 0.1 or 0.2 s; at
# least the later ones must really have had copies in flight when removed.
cycles() {
	busy=0
	for i in $(seq 10); do
		dd if=/dev/zero of="$DMC_META" bs=4096 count=1 oflag=direct 2>/dev/null
		dmsetup create dmc-sr --table "$table" || return 1
		sleep 0.$((i % 3))
		[ "$(dmc_status_field dmc-sr 5)" -gt 0 ] 2>/dev/null && busy=$((busy + 1))
		dmsetup remove dmc-sr || return 1
	done
	echo "# cycles removed with copies in flight: $busy of 10"
	[ "$busy" -ge 3 ]
}
dm_test "10 create/remove cycles while copying" cycles
dm_test "the module unloads" rmmod "$(dmc_target_module)"
ktap_finished

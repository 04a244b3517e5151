#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A clone can be created, reports the status fields the C target defines
# (Documentation/admin-guide/device-mapper/dm-clone.rst), round-trips its table
# through `dmsetup table`, serves the source's bytes at once, and is removed.
. "$(dirname "$0")/lib.sh"

ktap_print_header
dmc_setup
ktap_set_plan 7

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
regions=$(($(dm_sectors "$DMC_SRC") / 8))
table=$(dmc_table 8 1 no_hydration)

dm_test "create with no_hydration" dmsetup create dmc-a --table "$table"

# 8 <used>/<total> 8 0/<regions> 0 1 no_hydration 4 hydration_threshold 1 hydration_batch_size 1 rw
# (the Rust target prints the same fields under its names: no_background_copy,
# copy_threshold, copy_batch_size; with no core arguments their values are what
# its copy controller uses: a window of 1 MiB at the start, 512 KiB jobs, in
# 4 KiB regions)
if [ "$(dmc_target_module)" = dm_clone_rs ]; then
	feature=no_background_copy threshold="copy_threshold 256" batch="copy_batch_size 128"
else
	feature=no_hydration threshold="hydration_threshold 1" batch="hydration_batch_size 1"
fi
status=$(dmsetup status dmc-a | cut -d' ' -f4-)
echo "# status: $status"
set -- $status
used=${2%/*}
total=${2#*/}
[ "$1" = 8 ] && [ "$used" -gt 0 ] && [ "$used" -lt "$total" ] && [ "$3" = 8 ] &&
	[ "$4" = "0/$regions" ] && [ "$5" = 0 ] &&
	[ "$6 $7" = "1 $feature" ] &&
	[ "$8 $9 ${10} ${11} ${12}" = "4 $threshold $batch" ] &&
	[ "${13}" = rw ]
dm_test "status fields: 8 used/total 8 0/$regions 0 features core-args rw" [ $? = 0 ]

# The table shows device numbers and the original arguments; feeding it back
# to `dmsetup create` gives the same table (after removing the first clone:
# two clones must never share a metadata device).
devs="$(cat /sys/block/ram0/dev) $(cat /sys/block/ram1/dev) $(cat /sys/block/ram2/dev)"
want="0 $(dm_sectors "$DMC_SRC") clone $devs 8 1 no_hydration"
t1=$(dmsetup table dmc-a)
echo "# table: $t1"
dm_test "table: device numbers and the original arguments" [ "$t1" = "$want" ]
round_trip() {
	dmsetup remove dmc-a || return 1
	dmsetup create dmc-a --table "$t1" || return 1
	t2=$(dmsetup table dmc-a) && [ "$t2" = "$t1" ]
}
dm_test "table round trip through dmsetup create" round_trip

cmp -s /dev/mapper/dmc-a /tmp/dmc-src.img
dm_test "reads return the source's bytes before any copy" [ $? = 0 ]

dm_test "status still shows 0 regions copied" [ "$(dmc_status_field dmc-a 4)" = "0/$regions" ]

dm_test "remove" dmsetup remove dmc-a
ktap_finished

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The module loads and unloads 20 times, with a device created, used and
# removed each time; the target type comes and goes with it.
. "$(dirname "$0")/lib.sh"

ktap_print_header
rl_setup
ktap_set_plan 3

ok=0
i=0
while [ $i -lt 20 ]; do
	modprobe dm_rlinear &&
		dmsetup create rl-cycle --table "0 2048 rlinear /dev/ram0 0" &&
		cmp -s -n 1048576 /dev/mapper/rl-cycle /tmp/rl-ram0.img &&
		dmsetup remove rl-cycle &&
		rmmod dm_rlinear && ok=$((ok + 1))
	i=$((i + 1))
done
echo "# $ok of 20 cycles"
dm_test "20 load / create / read / remove / unload cycles" [ $ok = 20 ]
dm_test "target type gone after unload" sh -c '! command dmsetup targets | grep -q "^rlinear"'
modprobe dm_rlinear
dmsetup create rl-busy --table "0 2048 rlinear /dev/ram0 0"
dm_test "module in use while a device exists (rmmod refused)" sh -c '! rmmod dm_rlinear 2>/dev/null'
ktap_finished

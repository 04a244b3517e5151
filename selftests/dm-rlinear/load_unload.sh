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
# has_target <yes|no>: `dmsetup targets` works and lists rlinear, or does not.
has_target() {
	t=$(command dmsetup targets) || return 1
	if echo "$t" | grep -q "^rlinear "; then [ "$1" = yes ]; else [ "$1" = no ]; fi
}
dm_test "target type gone after unload" has_target no
modprobe dm_rlinear
busy() {
	has_target yes && dmsetup create rl-busy --table "0 2048 rlinear /dev/ram0 0" &&
		! rmmod dm_rlinear 2>/dev/null && grep -q "^dm_rlinear " /proc/modules
}
dm_test "module in use while a device exists (rmmod refused)" busy
ktap_finished

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# rlinear and the C linear target over the same area read the same bytes, a
# write through rlinear lands at the right offset of the device, and the
# table shows like linear's and round-trips through `dmsetup create`.
. "$(dirname "$0")/lib.sh"

ktap_print_header
rl_setup
ktap_set_plan 7

off=2048 len=16384 # 1 MiB in, 8 MiB long
dm_test "create linear and rlinear over the same area" rl_pair $len /dev/ram0 $off

rl_extract /tmp/rl-ram0.img $off $len /tmp/rl-expect.img
cmp -s /dev/mapper/rl-rlin /tmp/rl-expect.img
dm_test "rlinear reads the device's bytes from the offset on" [ $? = 0 ]
cmp -s /dev/mapper/rl-rlin /dev/mapper/rl-lin
dm_test "rlinear and linear read the same bytes" [ $? = 0 ]

# 1 MiB at 3 MiB into the target must land at 4 MiB into the device.
dd if=/dev/urandom of=/tmp/rl-w.img bs=1M count=1 2>/dev/null
dm_dd /tmp/rl-w.img /dev/mapper/rl-rlin 3
dd if=/dev/ram0 of=/tmp/rl-got.img bs=1M skip=4 count=1 iflag=direct 2>/dev/null
cmp -s /tmp/rl-got.img /tmp/rl-w.img
dm_test "a write through rlinear lands at offset + sector on the device" [ $? = 0 ]
dd if=/tmp/rl-w.img of=/tmp/rl-ram0.img bs=1M seek=4 conv=notrunc 2>/dev/null
cmp -s /dev/ram0 /tmp/rl-ram0.img
dm_test "nothing else on the device changed" [ $? = 0 ]

lin=$(dmsetup table rl-lin | cut -d' ' -f4-)
rlin=$(dmsetup table rl-rlin | cut -d' ' -f4-)
echo "# linear: $lin; rlinear: $rlin"
dm_test "table output like linear's: <major:minor> <offset>" [ -n "$rlin" -a "$lin" = "$rlin" ]

t1=$(dmsetup table rl-rlin)
round_trip() {
	[ "$t1" = "0 $len rlinear $(cat /sys/block/ram0/dev) $off" ] || return 1
	dmsetup create rl-again --table "$t1" || return 1
	t2=$(dmsetup table rl-again) && [ "$t2" = "$t1" ]
}
dm_test "table round trip through dmsetup create" round_trip
ktap_finished

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# What the device-mapper target abstraction guarantees whatever a target's safe
# code does, shown with target_test, which misuses it on purpose:
# - a bio dropped or ended inside end_io completes once (an I/O error, or the
#   status it was ended with) and end_io is not called again for it (it was: a
#   drop re-entered end_io on the same stack without bound);
# - a device whose handle the target dropped stays open until the target is
#   destroyed, while a bio the target sent there is in flight (dropping the
#   handle closed the device: it could be removed under the bio).
. "$(dirname "$0")/../lib/dm.sh"

MB=8
ktap_print_header
dm_require_modules dm_target_test dm_delay
dm_brd_setup tt- 1 $MB
ktap_set_plan 10

dd if=/dev/urandom of=/tmp/tt-src.img bs=1M count=$MB 2>/dev/null
dd if=/tmp/tt-src.img of=/dev/ram0 bs=1M oflag=direct 2>/dev/null
n=$(dm_sectors /dev/ram0)

# read_block <device> <4 KiB block>: one 4 KiB O_DIRECT read (one bio), into
# /tmp/tt-out.img; its exit status.
read_block() { dd if="$1" of=/tmp/tt-out.img bs=4k count=1 skip="$2" iflag=direct 2>/dev/null; }
# the source's block, to compare with
src_block() { dd if=/tmp/tt-src.img bs=4k count=1 skip="$1" 2>/dev/null | cmp -s - /tmp/tt-out.img; }
# read_ok <exit status> <block>: the read succeeded and got the source's block.
read_ok() { [ "$1" = 0 ] && src_block "$2"; }
calls() { dmsetup status tt-e | awk '{ print $4 }'; }

dmsetup create tt-e --table "0 $n target_test /dev/ram0"
c0=$(calls)
read_block /dev/mapper/tt-e 1
rc=$?
c1=$(calls)
dm_test "end_io giving the bio back: the read completes with the source's bytes" \
	read_ok $rc 1
dm_test "and end_io ran once for its bio" [ $((c1 - c0)) = 1 ]

dmsetup message tt-e 0 end_io drop
rm -f /tmp/tt-out.img
read_block /dev/mapper/tt-e 2
rc=$?
c2=$(calls)
echo "# read with end_io dropping its bio: exit status $rc, end_io calls $((c2 - c1))"
dm_test "a bio dropped in end_io fails the read with an I/O error" [ $rc != 0 ]
dm_test "and end_io ran once for it (not again for the error its drop ends it with)" \
	[ $((c2 - c1)) = 1 ]

dmsetup message tt-e 0 end_io end
read_block /dev/mapper/tt-e 3
rc=$?
c3=$(calls)
echo "# read with end_io ending its bio: exit status $rc, end_io calls $((c3 - c2))"
dm_test "a bio ended in end_io completes with its status and the source's bytes" \
	read_ok $rc 3
dm_test "and end_io ran once for it" [ $((c3 - c2)) = 1 ]
dmsetup remove tt-e

# A read held 3 s in a dm-delay under the target: the target drops its handle
# of that device while the read is there.
dmsetup create tt-slow --table "0 $n delay /dev/ram0 0 3000"
dmsetup create tt-d --table "0 $n target_test /dev/mapper/tt-slow"
# dm-delay's status: <reads> <writes> <flushes> it holds now.
held() { dmsetup status tt-slow | awk '{ print $4 }'; }
read_block /dev/mapper/tt-d 4 &
reader=$!
i=0
while [ "$(held)" = 0 ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
inflight=$(held)
dmsetup message tt-d 0 put
if dmsetup remove tt-slow 2>/dev/null; then removed=yes; else removed=no; fi
wait $reader
rc=$?
echo "# reads in flight on the delayed device when the handle was dropped: $inflight;" \
	"removed under it: $removed; the read's exit status: $rc"
dm_test "a device whose handle was dropped stays open while a bio is on it" \
	[ "$inflight" != 0 -a $removed = no ]
dm_test "and the bio on it completes with the source's bytes" read_ok $rc 4
dm_test "bios after the handle is dropped are failed by the target" \
	sh -c '! dd if=/dev/mapper/tt-d of=/dev/null bs=4k count=1 skip=5 iflag=direct 2>/dev/null'
dmsetup remove tt-d
dm_test "the target's destructor closed the device: it can be removed now" \
	dmsetup remove tt-slow
ktap_finished

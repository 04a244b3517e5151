#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The background copy (behaviour 3): off with no_background_copy; at most
# copy_threshold regions in flight; copy_batch_size contiguous regions per
# kcopyd job (fewer source reads); disable/enable by message at any time; goes
# on while user I/O is in flight (it never starves: see copy_engine.sh for how it
# shares); regions read while not copied go first; a dm event when everything
# is copied; the result equals the source.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_setup
dm_require_modules dm_delay
ktap_set_plan 12

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
total=$((len / 8))
# The source behind a 5 ms delay: copies take long enough to be watched.
dmc_slow_source 5
S=$(command dmsetup info -c --noheadings -o blkdevname dmc-zslow)
# fresh <options after the region size>: a new clone dmc-bg on blank metadata and a
# zeroed destination (so that a region a part leaves uncopied cannot hold the
# source's bytes from an earlier part).
fresh() {
	command dmsetup info dmc-bg >/dev/null 2>&1 && dmsetup remove dmc-bg
	dd if=/dev/zero of="$DMC_META" bs=4096 count=1 oflag=direct 2>/dev/null
	dd if=/dev/zero of="$DMC_DEST" bs=1M count="$DMC_DEV_MB" oflag=direct 2>/dev/null
	dmsetup create dmc-bg --table "0 $len clone $DMC_META $DMC_DEST /dev/mapper/dmc-zslow 8 $*"
}
# Each part starts from a fresh clone: how fast the copy runs next to the test
# (debug kernels are much slower in user space) must not decide what is left.

dm_test "create with no_background_copy, copy_threshold 4" fresh 1 no_background_copy 2 copy_threshold 4
sleep 1.5
dm_test "no_background_copy: nothing copied in 1.5 s" [ "$(dmc_copied dmc-bg)" = 0 ]

# In flight: the 5th status field, sampled while copying.
dmsetup message dmc-bg 0 enable_background_copy
max=$(dmc_most_in_flight dmc-bg 20)
echo "# most regions in flight at once: $max (threshold 4)"
dm_test "at most copy_threshold regions in flight, and more than one" [ "$max" -le 4 -a "$max" -ge 2 ]

dmsetup message dmc-bg 0 disable_background_copy
dmc_wait_for 5 '[ "$(dmc_status_field dmc-bg 5)" = 0 ]'
c1=$(dmc_copied dmc-bg)
sleep 1.5
c2=$(dmc_copied dmc-bg)
echo "# copied $c1, 1.5 s after disabling $c2"
dm_test "disable_background_copy stops the copy" [ "$c1" = "$c2" -a "$c1" -gt 0 -a "$c1" -lt "$total" ]

# rate <batch>: regions copied per source read request, over at least 128 regions.
rate() {
	fresh 1 no_background_copy 4 copy_threshold 8 copy_batch_size "$1" >/dev/null &&
		dmc_per_read dmc-bg "$S" 128
}
one=$(rate 1)
eight=$(rate 8)
echo "# regions per source read (x10): batch 1: $one, batch 8: $eight"
# (An empty ratio: the copy did not get to 128 regions or read nothing; it fails.)
batch_ok() { dmc_between "$one" 1 999999 && dmc_between "$eight" $((one * 4)) 999999; }
dm_test "copy_batch_size 8 copies 8 contiguous regions per job (4x fewer reads at least)" batch_ok

# User I/O: reads of uncopied regions go to the slow source and keep user I/O in
# flight; the copy is turned on during them, and goes on (the C target, and this
# one before its copy controller, copied nothing while user bios were in flight).
fresh 1 no_background_copy 2 copy_threshold 4
fio --name=busy --filename=/dev/mapper/dmc-bg --rw=randread --bs=4k --direct=1 \
	--ioengine=psync --numjobs=4 --time_based --runtime=5 --group_reporting >/dev/null 2>&1 &
fio=$!
# fio takes a while to start under emulation: measure in the middle of its run.
sleep 2
dmsetup message dmc-bg 0 enable_background_copy
c0=$(dmc_copied dmc-bg)
sleep 2
c1=$(dmc_copied dmc-bg)
wait $fio
c1b=$(dmc_copied dmc-bg)
sleep 2
c2=$(dmc_copied dmc-bg)
echo "# copied in 2 s of user I/O: $((c1 - c0)); in the 2 s after it: $((c2 - c1b))"
dm_test "goes on while user I/O is in flight" [ "$c1" -gt "$c0" ]
dm_test "and after it stops" [ "$c2" -gt "$c1b" ]

# A region read while not copied is copied first: read region 4000 with the copy
# off, then turn it on (threshold 1): the scan starts at region 0, but region
# 4000 is on the destination long before the scan could reach it.
fresh 1 no_background_copy 2 copy_threshold 1
dmc_same "$DMC_DEST" 4096 1 4000 /tmp/dmc-src.img 4000 && echo "# region 4000 already on the destination"
dd if=/dev/mapper/dmc-bg of=/dev/null bs=4096 count=1 skip=4000 iflag=direct 2>/dev/null
dmsetup message dmc-bg 0 enable_background_copy
dmc_wait_for 10 'dmc_same "$DMC_DEST" 4096 1 4000 /tmp/dmc-src.img 4000'
r=$?
dmsetup message dmc-bg 0 disable_background_copy
n=$(dmc_copied dmc-bg)
echo "# region 4000 copied: $([ $r = 0 ] && echo yes || echo no), with $n regions copied in all"
dm_test "a region read while not copied is copied before the scan reaches it" [ $r = 0 -a "$n" -lt 4000 ]

# The event when everything is copied (the event number is read while the copy is
# off, so the event cannot come before it).
fresh 1 no_background_copy 4 copy_threshold 64 copy_batch_size 16
ev=$(dmc_event_nr dmc-bg)
dmsetup message dmc-bg 0 enable_background_copy
timeout 120 dmsetup wait dmc-bg "$ev" >/dev/null
dm_test "a dm event is raised" [ $? = 0 ]
dm_test "when the event comes, every region is copied" [ "$(dmc_copied dmc-bg)" = "$total" ]
dm_test "nothing left in flight" [ "$(dmc_status_field dmc-bg 5)" = 0 ]

dmsetup remove dmc-bg
cmp -s "$DMC_DEST" /tmp/dmc-src.img
dm_test "destination equals the source" [ $? = 0 ]
ktap_finished

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Allocation failures (point 6 of issue 11), with the debug kernel's failslab:
# a writer's slab allocations fail (task-filter on its pid, sleeping
# allocations included) while it writes 4 KiB parts of uncopied 16 KiB regions:
# the first write to each region needs a record, allocated in `map` in the
# writer's context. No write may fail (C waits on a mempool; ours hands the write
# to its worker, which tries again 10 ms later), the clone counts the writes that
# waited (`memory` message, alloc_waits), nothing hangs (the clone is removed at
# once after) or leaks (the debug kernel's kmemleak scan at the end of the run),
# and the clone reads back as the source plus the writes.
# Skipped where failslab is missing (the fast kernel).
. "$(dirname "$0")/lib.sh"

ktap_print_header
FS=/sys/kernel/debug/failslab
[ -w $FS/probability ] || dmc_skip "no failslab (the debug kernel has it)"
DMC_DEV_MB=16
dmc_setup
ktap_set_plan 5
dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
dmc_slow_source 2
len=$(dm_sectors "$DMC_SRC")
dmsetup create dmc-a --table "0 $len clone $DMC_META $DMC_DEST /dev/mapper/dmc-zslow 32 1 no_background_copy" ||
	ktap_exit_fail_msg "cannot create the clone"

fs_off() { echo 0 >$FS/probability; }
trap 'fs_off; dm_brd_cleanup' EXIT
echo 1 >$FS/task-filter
echo N >$FS/ignore-gfp-wait
echo 1 >$FS/interval
echo 2000 >$FS/times
echo 0 >$FS/verbose
echo 100 >$FS/probability

# One writer, dd: 4 KiB direct writes of 2 MiB from 512 KiB on, in 16 KiB
# regions (every fourth write is the first to its uncopied region: a record).
# Its data comes through a pipe: the first block at once (so it has opened the
# clone and touched its buffer: a page fault needs allocations too), the rest
# 2 s later, after it got make-it-fail; only its own allocations fail, at most
# 2000 of them.
dd if=/dev/urandom of=/tmp/dmc-w.img bs=4096 count=512 2>/dev/null
(head -c 4096 /tmp/dmc-w.img; sleep 2; tail -c +4097 /tmp/dmc-w.img) |
	dd of=/dev/mapper/dmc-a bs=4096 seek=128 iflag=fullblock oflag=direct 2>/tmp/dmc-dd.err &
wr=$!
sleep 1
# $! names the pipeline's last command, dd (or the shell that runs it).
set_on=
for p in $wr $(cat /proc/$wr/task/$wr/children 2>/dev/null); do
	if [ "$(cat /proc/$p/comm 2>/dev/null)" = dd ] && echo 1 >/proc/$p/make-it-fail; then
		set_on=$p
	fi
done
echo "# make-it-fail set on dd: pid ${set_on:-none}"
wait $wr
rc=$?
left=$(cat $FS/times)
fs_off
waits=$(dmsetup message dmc-a 0 memory | sed -n 's/.*alloc_waits=\([0-9]*\).*/\1/p')
echo "# $((2000 - left)) of dd's allocations failed, $waits writes waited for a region record;" \
	"dd exited with $rc: $(head -n1 /tmp/dmc-dd.err)"
injected() { [ -n "$set_on" ] && dmc_between "$left" 0 1999; }
dm_test "failslab failed dd's allocations" injected
dm_test "writes whose region record could not be allocated waited for memory (alloc_waits > 0)" \
	dmc_between "${waits:-0}" 1 100000
dm_test "no write failed" [ "$rc" = 0 ]
cp /tmp/dmc-src.img /tmp/dmc-exp.img
dmc_put /tmp/dmc-w.img 4096 512 0 /tmp/dmc-exp.img 128
dm_test "the clone reads back as the source plus the writes" \
	dm_cmp_direct /dev/mapper/dmc-a /tmp/dmc-exp.img
dm_test "and it is removed at once (nothing waits for memory any more)" timeout 30 dmsetup remove dmc-a
ktap_finished

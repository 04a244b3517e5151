#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# ro mode: a write acknowledged while the in-core map still holds a mark the
# failed commit did not record, on both targets (the guide's "Compatibility with
# the C dm-clone" names this sequence). 8 KiB regions. Region 3 is copied for a 4 KiB write
# (block 6) whose fsync needs a commit; the metadata device then fails every
# write and takes 1.5 s per read (dm-delay: reads to the RAM disk, writes to a
# dm-flakey error_writes). The commit fails; C aborts (reopens, reading), logs
# "Switching to read-only mode", then reloads its in-core bitmap from disk
# (dm-clone-target.c:225-239), reading 1.5 s per block. A second 4 KiB write to
# the region's other half (block 7) sent right after that message finds the
# region's bit still set (dm-clone-target.c:1359) and is sent to the destination
# and acknowledged; the reload then clears the bit: block 7 reads as the source,
# before and after a clean reload. Ours must refuse that write or keep it.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_require_both dm_flakey dm_delay
dm_brd_setup dmc- 3 "$DMC_DEV_MB"
trap 'dm_brd_cleanup; dmc_unload_targets' EXIT
ktap_set_plan 13

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
msect=$(dm_sectors "$DMC_META")
dmsetup create dmc-zflk --table "0 $msect flakey $DMC_META 0 0 1 1 error_writes" ||
	ktap_exit_fail_msg "cannot make the failing metadata writes"
healthy="0 $msect linear $DMC_META 0"
slowfail="0 $msect delay $DMC_META 0 1500 /dev/mapper/dmc-zflk 0 0"
table="0 $len clone /dev/mapper/dmc-zmeta $DMC_DEST $DMC_SRC 16 1 no_hydration"
C=/dev/mapper/dmc-pr
dd if=/dev/urandom of=/tmp/dmc-w1.bin bs=4096 count=1 2>/dev/null
dd if=/dev/urandom of=/tmp/dmc-w2.bin bs=4096 count=1 2>/dev/null

# block7 <label>: what block 7 holds: "write", "source" or "other".
block7() {
	if dmc_same $C 4096 1 7 /tmp/dmc-w2.bin 0; then echo write
	elif dmc_same $C 4096 1 7 /tmp/dmc-src.img 7; then echo source
	else echo other; fi
}

# trial <module>: sets rc1 (fsync'd write 1), rc2 (write 2 in the window), ro
# (the mode after it), at_ro and at_reload (block 7 then). Returns 1 if the
# trial could not run.
trial() {
	rc1=x rc2=x ro=x at_ro=x at_reload=x rc_flush=x
	dmc_use_target "$1" || return 1
	dd if=/dev/zero of=$DMC_META bs=4096 count=1 oflag=direct 2>/dev/null
	dd if=/dev/zero of=$DMC_DEST bs=1M count=$DMC_DEV_MB oflag=direct 2>/dev/null
	if dmsetup info dmc-zmeta >/dev/null 2>&1; then dmc_swap dmc-zmeta "$healthy"
	else dmsetup create dmc-zmeta --table "$healthy"; fi || return 1
	dmsetup create dmc-pr --table "$table" || return 1
	dmc_serves "$1" || return 1
	# Nothing to commit now: the swap does not race a commit. No status from
	# here to the end of the failure: C's status commits (dm-clone-target.c:1443).
	dmc_swap dmc-zmeta "$slowfail" || return 1
	dm_dmesg_mark "ro-$1"
	dd if=/tmp/dmc-w1.bin of=$C bs=4096 count=1 seek=6 oflag=direct conv=fsync 2>/dev/null &
	w1=$!
	dmc_wait_for 120 "dm_dmesg_since ro-$1 | grep -qi 'to read-only mode'" ||
		{ echo "# $1: no switch to read-only mode logged"; wait $w1; return 1; }
	dd if=/tmp/dmc-w2.bin of=$C bs=4096 count=1 seek=7 oflag=direct 2>/dev/null
	rc2=$?
	wait $w1
	rc1=$?
	ro=$(dmc_mode dmc-pr)
	at_ro=$(block7)
	# A flush in ro mode (fsync of the device, no data: an empty PREFLUSH bio).
	dd if=/dev/null of=$C conv=fsync 2>/dev/null
	rc_flush=$?
	dmsetup remove dmc-pr || return 1
	dmc_swap dmc-zmeta "$healthy" || return 1
	dmsetup create dmc-pr --table "$table" || return 1
	at_reload=$(block7)
	dmsetup remove dmc-pr
	echo "# $1: fsync'd write rc=$rc1, write in the window rc=$rc2, mode $ro," \
		"block 7 reads as the $at_ro, after a clean reload as the $at_reload;" \
		"a flush in ro mode rc=$rc_flush"
	dm_dmesg_since "ro-$1" | grep -i 'clone' | sed 's/^/# /'
}

# kept: write 2 refused, or acknowledged and still there at ro and after the reload.
kept() { [ "$rc2" != 0 ] || { [ "$at_ro" = write ] && [ "$at_reload" = write ]; }; }

trial dm_clone_rs || ktap_exit_fail_msg "the trial on ours could not run"
dm_test "ours: the fsync whose commit fails fails" [ "$rc1" != 0 ]
dm_test "ours: the metadata mode is ro" [ "$ro" = ro ]
dm_test "ours: the write in the window is refused, or kept (at ro and after a reload)" kept
refused_is_source() { [ "$rc2" = 0 ] || [ "$at_reload" = source ]; }
dm_test "ours: after a clean reload, a refused write's block reads as the source" refused_is_source
dm_test "ours: a flush in ro mode fails (writes acknowledged to region 3 before are lost)" \
	[ "$rc_flush" != 0 ]

trial dm_clone || ktap_exit_fail_msg "the trial on C could not run"
dm_test "C: the metadata mode is ro" [ "$ro" = ro ]
seen_at_ro() { [ "$rc2" != 0 ] || [ "$at_ro" = write ]; }
dmc_c_result "the write acknowledged in ro mode reads back after the map reload (rc=$rc2, $at_ro)" seen_at_ro
dmc_c_result "the write acknowledged in ro mode survives a clean reload (rc=$rc2, $at_reload)" kept
dmc_c_result "a flush in ro mode fails (rc=$rc_flush)" [ "$rc_flush" != 0 ]

# A periodic commit that fails between a write and its fsync: the metadata fails
# its writes; a 4 KiB write to block 20 (half of region 10, copied for it) is
# acknowledged; the next periodic commit (within a second) fails and the
# mode goes ro, taking back region 10's mark: the write now reads as the source.
# The fsync that follows must fail: it would otherwise say a lost write is
# durable. (Status with --noflush: C's status commits otherwise.)
failing="0 $msect linear /dev/mapper/dmc-zflk 0"
lost_write() {
	rc_w=x rc_f=x mode=x b20=x
	dmc_use_target "$1" || return 1
	dd if=/dev/zero of=$DMC_META bs=4096 count=1 oflag=direct 2>/dev/null
	dmc_swap dmc-zmeta "$healthy" || return 1
	dmsetup create dmc-pr --table "$table" || return 1
	dmc_serves "$1" || return 1
	# The metadata fails its writes before the write: a periodic commit cannot
	# record the write's mark between the two (nothing else is pending: the clone
	# was just made, with the copy off).
	dmc_swap dmc-zmeta "$failing" || return 1
	dd if=/tmp/dmc-w1.bin of=$C bs=4096 count=1 seek=20 oflag=direct 2>/dev/null
	rc_w=$?
	dmc_wait_for 30 '[ "$(dmsetup status --noflush dmc-pr | awk "{ print \$NF }")" = ro ]' ||
		echo "# $1: the mode did not go ro in 30 s"
	mode=$(dmsetup status --noflush dmc-pr | awk '{ print $NF }')
	dd if=/dev/null of=$C conv=fsync 2>/dev/null
	rc_f=$?
	if dmc_same $C 4096 1 20 /tmp/dmc-w1.bin 0; then b20=write
	elif dmc_same $C 4096 1 20 /tmp/dmc-src.img 20; then b20=source
	else b20=other; fi
	dmsetup remove dmc-pr
	dmc_swap dmc-zmeta "$healthy"
	echo "# $1: write rc=$rc_w, then a failed periodic commit: mode $mode, block 20 reads as" \
		"the $b20, the fsync after rc=$rc_f"
}
lost_write dm_clone_rs || ktap_exit_fail_msg "the lost-write trial on ours could not run"
lost_write_seen() { [ "$rc_w" = 0 ] && [ "$mode" = ro ] && [ "$b20" = source ]; }
dm_test "ours: a write acknowledged, then a periodic commit fails: mode ro, the write taken back" \
	lost_write_seen
dm_test "ours: the fsync after it fails (a lost write is never reported durable)" [ "$rc_f" != 0 ]
lost_write dm_clone || ktap_exit_fail_msg "the lost-write trial on C could not run"
dmc_c_result "a write acknowledged, then a periodic commit fails: mode ro ($mode), the write taken back ($b20)" \
	lost_write_seen
dmc_c_result "the fsync after it fails (rc=$rc_f)" [ "$rc_f" != 0 ]
dmc_unload_targets
ktap_finished

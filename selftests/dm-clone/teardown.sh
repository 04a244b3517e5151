#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Teardown while busy: clones are removed, suspended and removed, or reloaded
# (suspend, load, resume: the old table is destroyed) at random moments while
# the background copy runs rate-limited (ours: its pacer is armed between
# bursts, so a teardown finds a timer pending or firing) and a writer writes.
# Every suspend, load, resume and remove must finish (30 s each, far above what
# they take: a hang fails here, and the kernel log check fails a warning, e.g.
# work queued on a draining workqueue), the module must unload after each
# target's cycles, and the clone's data must be what was written. The C target
# gets the same cycles.
#   (The destructor used to cancel the pacer only after draining the worker's
#   queue: a pacer armed by a pass that had not seen the suspension could fire
#   during the drain; its kick was dropped by the draining queue, leaking a
#   reference, and the remove waited for ever. Now both timers are disabled for
#   good before the drain.)
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_require_both dm_delay
dm_brd_setup dmc- 3 "$DMC_DEV_MB"
trap "command dmsetup remove dmc-td 2>/dev/null; command dmsetup remove dmc-zslow 2>/dev/null; dm_brd_cleanup; dmc_unload_targets" EXIT
CYCLES=${DMC_TEARDOWN_CYCLES:-$(dmc_form 200 8 24)}
ktap_set_plan 6

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
total=$((len / 16))
dmc_slow_source 2

# tdo <what> <command...>: a dmsetup step that must finish within 30 s.
tdo() {
	local what=$1
	shift
	timeout 30 "$@" >/dev/null || { echo "# $what failed or hung (status $?)" >&2; return 1; }
}

# cycles <module> <core args>: CYCLES teardowns of a busy clone; prints
# "<cycles done> <with the copy under way> <data ok>".
cycles() {
	local i done=0 busy=0 ok=1 how table
	dmc_use_target "$1" || return 1
	table="0 $len clone $DMC_META $DMC_DEST /dev/mapper/dmc-zslow 16 $2"
	for i in $(seq "$CYCLES"); do
		dd if=/dev/zero of="$DMC_META" bs=4096 count=1 oflag=direct 2>/dev/null
		tdo create dmsetup create dmc-td --table "$table" >&2 || break
		dmc_serves "$1" >&2 || break
		# A writer: 4 KiB writes (half regions: each waits for its region's copy) of
		# known data at 16 places, then read back.
		(
			j=0
			while [ $j -lt 16 ]; do
				dd if=/tmp/dmc-w.bin of=/dev/mapper/dmc-td bs=4096 seek=$((j * 97 + i)) \
					count=1 oflag=direct 2>/dev/null || exit 1
				j=$((j + 1))
			done
		) &
		w=$!
		# 0 to 0.3 s into the copy.
		sleep "$(awk -v r="$(od -An -N1 -tu1 /dev/urandom)" 'BEGIN { printf "%.2f", r / 850 }')"
		# Under way: some regions copied, not all (rate-limited, ours is mostly waiting for
		# its pacer then, with nothing in flight: the moment the fix is about).
		dmc_between "$(dmc_copied dmc-td)" 1 $((total - 1)) && busy=$((busy + 1))
		wait $w || { echo "# $1, cycle $i: a write failed" >&2; ok=0; }
		# Every write reads back (the clone serves them while the copy runs).
		j=0
		while [ $j -lt 16 ]; do
			dmc_same /dev/mapper/dmc-td 4096 1 $((j * 97 + i)) /tmp/dmc-w.bin 0 ||
				{ echo "# $1, cycle $i: write $j does not read back" >&2; ok=0; }
			j=$((j + 1))
		done
		case $((i % 3)) in
		0) how=remove ;;
		1) tdo suspend dmsetup suspend dmc-td >&2 || break; how="suspend, remove" ;;
		2)
			tdo suspend dmsetup suspend dmc-td >&2 &&
				tdo load dmsetup load dmc-td --table "$table" >&2 &&
				tdo resume dmsetup resume dmc-td >&2 || break
			how="reload, remove"
			;;
		esac
		tdo "$how" dmsetup remove dmc-td >&2 || break
		done=$((done + 1))
	done
	echo "$done $busy $ok"
}

dd if=/dev/urandom of=/tmp/dmc-w.bin bs=4096 count=1 2>/dev/null
set -- $(cycles dm_clone_rs "0 4 copy_rate_limit 1 copy_threshold 16")
echo "# ours: $1 of $CYCLES teardowns done, $2 with the copy under way"
dm_test "ours: $CYCLES busy teardowns (remove, suspend and remove, reload and remove) finish" \
	[ "${1:-0}" = "$CYCLES" ]
# busy_ok <under way> <data ok>: the copy was under way at every teardown (its count
# between 1 and all but one), and every write read back.
busy_ok() { [ "${1:-0}" = "$CYCLES" ] && [ "${2:-0}" = 1 ]; }
dm_test "ours: the copy was under way at every teardown, and every write read back" \
	busy_ok "${2:-0}" "${3:-0}"
dm_test "ours: the module unloads after them" rmmod dm_clone_rs

set -- $(cycles dm_clone "0 2 hydration_threshold 1")
echo "# C: $1 of $CYCLES teardowns done, $2 with the copy under way"
dm_test "C: $CYCLES busy teardowns finish" [ "${1:-0}" = "$CYCLES" ]
dm_test "C: the copy was under way at every teardown, and every write read back" \
	busy_ok "${2:-0}" "${3:-0}"
dm_test "C: the module unloads after them" rmmod dm_clone
ktap_finished

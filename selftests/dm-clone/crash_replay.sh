#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Crash consistency by replay: every state a power cut could leave, checked.
#
# The clone's metadata and destination are two linear slices of one log-writes
# device, so one log holds every write to both, in the order they became
# durable (log-writes logs a write when a later flush completes, a FUA write at
# once). A workload of whole- and partial-region direct writes of unique data,
# some followed by fsync (then a log mark), and whole-region discards runs while
# the background copy runs. The log is then replayed onto a fresh device up to
# FLUSH and FUA entries (a sample; every one with DMC_LONG=1), and at each the
# clone is loaded there with the copy off and checked:
#   - it loads;
#   - every write acknowledged before the last completed fsync is there, whole;
#   - every later write is there whole or not at all;
#   - a discarded region reads as the source or as zeros, 4 KiB at a time;
#   - every other byte equals the source.
# Then the wider model: a disk with a volatile cache may lose any subset of the
# writes completed since the last flush, so at a sample of flush points (every
# one with DMC_LONG=1) states made of the log up to the point plus a subset of
# the writes before the next flush (every subset of a small window, random ones
# of a large one; dmc-replay-log states) are checked the same way.
# The same run against the C dm-clone (upstream option names) is reported
# beside ours; its failures are diagnostics, not ours.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=64
dmc_require_both dm_log_writes dm_delay
for tool in dmc-replay-log dmc-write; do
	command -v $tool >/dev/null || ktap_exit_fail_msg "$tool is not in the guest"
done
dm_brd_setup dmc- 5 "$DMC_DEV_MB"
trap "dm_brd_cleanup; dmc_unload_targets" EXIT
DATA=/dev/ram0 LOG=/dev/ram1 SRC=/dev/ram2 REPLAY=/dev/ram3 SCRATCH=/dev/ram4
META_SECTORS=8192   # 4 MiB
DEST_SECTORS=32768  # 16 MiB: the clone's size
REGION=16           # 8 KiB regions: 2048 of them
NOPS=${DMC_CRASH_OPS:-$(dmc_form 48 24 48)}
# Quick form: 48 operations, 6 points (24 and 3 on the debug kernel, 4 times
# slower); long: every point.
POINTS=${DMC_CRASH_POINTS:-$(dmc_form all 3 6)}
# The wider model (any subset of the writes after a flush point): quick form 2
# windows, every subset of up to 3 writes, else 4 random ones, the empty one
# and the whole (the debug kernel, where a state takes about 12 s: 1 window, 1
# and 1); long: 24 windows, every subset of up to 4 writes, else 6 random ones
# (about 25 minutes on the fast kernel, a state taking about 2 s; DMC_CRASH_*
# set more, e.g. every window: DMC_CRASH_WINDOWS=all).
WINDOWS=${DMC_CRASH_WINDOWS:-$(dmc_form 24 1 2)}
SUB_K=${DMC_CRASH_K:-$(dmc_form 4 1 3)}
SUB_N=${DMC_CRASH_N:-$(dmc_form 6 1 4)}
# The concurrent workload: 24 writes (12 on the debug kernel, 48 long), 4
# points (2; every one long) and the windows above; on the debug kernel ours
# only (C's result is a report; the debug kernel is there for ours).
NCONC=${DMC_CRASH_CONC:-$(dmc_form 48 12 24)}
CPOINTS=${DMC_CRASH_CPOINTS:-$(dmc_form all 2 4)}
C_CONC=$(dmc_form 1 0 1)
ktap_set_plan 16

dd if=/dev/urandom of=/tmp/dmc-src.img bs=1M count=16 2>/dev/null
dd if=/tmp/dmc-src.img of=$SRC bs=1M oflag=direct 2>/dev/null
dmsetup create dmc-src --table "0 $DEST_SECTORS delay $SRC 0 1" ||
	ktap_exit_fail_msg "cannot make the source"

# slices <name prefix> <device>: <prefix>-meta and <prefix>-dest on <device>.
slices() {
	dmsetup create "$1-meta" --table "0 $META_SECTORS linear $2 0" &&
		dmsetup create "$1-dest" --table "0 $DEST_SECTORS linear $2 $META_SECTORS"
}

# The region of operation i: distinct for i < 2048 (37 is prime to 2048).
op_region() { echo $((($1 * 37 + 5) % 2048)); }

# workload <clone>: operation i by i % 6: 0 whole-region write + fsync, 1 second
# half (4 KiB), 2 discard, 3 first half + fsync, 4 whole region, 5 second half
# + fsync. After each fsync, mark "f<n>": operations 0..n-1 are durable. Writes
# /tmp/dmc-ops: "<i> <w|d> <first 4 KiB block> <blocks> a" (acknowledged).
workload() {
	: >/tmp/dmc-ops
	i=0
	while [ $i -lt "$NOPS" ]; do
		dmc_pick_op $i "$(op_region $i)" 6
		if [ $k = w ]; then
			dd if=/dev/urandom of=/tmp/dmc-op$i bs=4096 count=$n 2>/dev/null
			# One bio per operation: a whole-region write is one 8 KiB write.
			dd if=/tmp/dmc-op$i of="/dev/mapper/$1" bs=$((n * 4096)) seek=$((b / n)) count=1 \
				oflag=direct $sync 2>/dev/null || { echo "# write $i failed"; return 1; }
		else
			blkdiscard -o $((b * 4096)) -l $((n * 4096)) "/dev/mapper/$1" ||
				{ echo "# discard $i failed"; return 1; }
		fi
		echo "$i $k $b $n a" >>/tmp/dmc-ops
		i=$((i + 1))
		if [ -n "$sync" ]; then
			dmsetup message dmc-lw 0 mark "f$i" || return 1
		fi
	done
}

# conc_workload <clone>: 3 writers at once (3 writes in flight), writer w doing
# operations w, w+3, ... below NCONC, each on its own region: a whole-region
# write (i even) or the second half (i odd: it races the copy of its region),
# O_DIRECT|O_DSYNC by dmc-write (a FUA write, or a write and a flush: durable
# once acknowledged), then a log mark "d<i>". Writes /tmp/dmc-ops.
conc_workload() {
	: >/tmp/dmc-ops
	rm -f /tmp/dmc-conc-bad
	for w in 0 1 2; do
		: >/tmp/dmc-ops.$w
		(
			i=$w
			while [ $i -lt "$NCONC" ]; do
				r=$(op_region $i)
				if [ $((i % 2)) = 0 ]; then b=$((r * 2)) n=2; else b=$((r * 2 + 1)) n=1; fi
				dd if=/dev/urandom of=/tmp/dmc-op$i bs=4096 count=$n 2>/dev/null
				dmc-write /tmp/dmc-op$i "/dev/mapper/$1" --offset $((b * 4096)) ||
					{ echo "# write $i failed" >>/tmp/dmc-conc-bad; break; }
				echo "$i w $b $n a" >>/tmp/dmc-ops.$w
				dmsetup message dmc-lw 0 mark "d$i" || { echo "# mark $i" >>/tmp/dmc-conc-bad; break; }
				i=$((i + 3))
			done
		) &
	done
	wait
	[ ! -e /tmp/dmc-conc-bad ] || { cat /tmp/dmc-conc-bad; return 1; }
	cat /tmp/dmc-ops.0 /tmp/dmc-ops.1 /tmp/dmc-ops.2 | sort -n >/tmp/dmc-ops
	[ "$(wc -l </tmp/dmc-ops)" = "$NCONC" ]
}

# record <module> <copy args>: run the workload ($WORKLOAD) on a clone of that
# module over a log-writes device; leaves the log in /tmp/dmc-log.txt.
WORKLOAD=workload
record() {
	dmc_use_target "$1" || return 1
	dd if=/dev/zero of=$DATA bs=1M count=20 oflag=direct 2>/dev/null
	dd if=/dev/zero of=$LOG bs=1M count=1 oflag=direct 2>/dev/null
	dmsetup create dmc-lw --table "0 $(dm_sectors $DATA) log-writes $DATA $LOG" || return 1
	slices dmc-l /dev/mapper/dmc-lw || return 1
	dmsetup create dmc-c --table "0 $DEST_SECTORS clone /dev/mapper/dmc-l-meta \
		/dev/mapper/dmc-l-dest /dev/mapper/dmc-src $REGION $2" || return 1
	dmc_serves "$1" || return 1
	$WORKLOAD dmc-c || return 1
	dmc_copied dmc-c >/tmp/dmc-copied-at-end
	echo "# $1: $(cat /tmp/dmc-copied-at-end) of 2048 regions copied when the workload ended"
	dmsetup remove dmc-c && dmsetup remove dmc-l-dest && dmsetup remove dmc-l-meta &&
		dmsetup remove dmc-lw || return 1
	dmc-replay-log list $LOG >/tmp/dmc-log.txt || return 1
	echo "# $1: $(wc -l </tmp/dmc-log.txt) log entries, $(grep -c -E ' (flush|write,fua)' \
		/tmp/dmc-log.txt) flush or FUA points, $(awk '$2 == "mark"' /tmp/dmc-log.txt | wc -l) marks"
}

# check_on <module> <device> <label> <durable ops>: the clone loaded with the copy
# off on the state on <device>, read whole, against the operations (dmc_check_ops).
check_on() {
	slices dmc-s "$2" || return 1
	if ! dmsetup create dmc-k --table "0 $DEST_SECTORS clone /dev/mapper/dmc-s-meta \
		/dev/mapper/dmc-s-dest /dev/mapper/dmc-src $REGION 1 no_hydration"; then
		echo "# $1, $3: the clone does not load"
		dmsetup remove dmc-s-dest; dmsetup remove dmc-s-meta
		return 1
	fi
	dmc_serves "$1" || { dm_remove_all dmc-k; dm_remove_all dmc-s; return 1; }
	dd if=/dev/mapper/dmc-k of=/tmp/dmc-got.img bs=1M iflag=direct 2>/dev/null
	dmsetup remove dmc-k && dmsetup remove dmc-s-dest && dmsetup remove dmc-s-meta
	cp /tmp/dmc-src.img /tmp/dmc-base.img
	dmc_check_ops "$1, $3" /tmp/dmc-got.img /tmp/dmc-base.img /tmp/dmc-ops "${4:-0}" whole
}
# check_state <module> <entry> <durable ops>: the state replayed up to <entry>.
check_state() {
	dd if=$REPLAY of=$SCRATCH bs=1M count=20 oflag=direct 2>/dev/null
	check_on "$1" $SCRATCH "entry $2" "$3"
}
# check_subset <module> <device> <point> <state id> <durable ops>: a state of the
# wider model, built on <device>.
check_subset() { check_on "$1" "$2" "point $3 state $4" "$5"; }

# The concurrent workload's checks: a write is durable at a state if its mark
# "d<i>" is in the log at or before the state's entry (it was acknowledged, so
# durable, before the mark was logged).
conc_durable() { # conc_durable <entry, or - or end>: the durable ones to /tmp/dmc-dset
	awk -v e="$1" 'e != "end" && (e == "-" || $1 > e) { exit }
		$2 == "mark" && $5 ~ /^d[0-9]+$/ { print substr($5, 2) }' /tmp/dmc-log.txt >/tmp/dmc-dset
}
conc_state() { # conc_state <module> <entry> <unused mark>
	dd if=$REPLAY of=$SCRATCH bs=1M count=20 oflag=direct 2>/dev/null
	conc_durable "$2"
	check_on "$1" $SCRATCH "entry $2" @/tmp/dmc-dset
}
conc_subset() { # conc_subset <module> <device> <point> <state id> <unused mark>
	conc_durable "$3"
	check_on "$1" "$2" "point $3 state $4" @/tmp/dmc-dset
}
# conc_all <module>: the points, the end and subsets of windows: "<checked> <failed>
# <durable writes seen at the end>".
conc_all() {
	dmc_replay_points $LOG $REPLAY 20 d "$CPOINTS" conc_state "$1" || return 1
	checked=$DMC_CHECKED failed=$DMC_FAILED
	last=$(tail -n1 /tmp/dmc-log.txt | cut -d' ' -f1)
	if [ "$DMC_FROM" -le "$last" ]; then
		dmc-replay-log replay $LOG $REPLAY --from $DMC_FROM --to "$last" >&2 || return 1
	fi
	conc_durable end
	dd if=$REPLAY of=$SCRATCH bs=1M count=20 oflag=direct 2>/dev/null
	check_on "$1" $SCRATCH "end" @/tmp/dmc-dset >&2 || failed=$((failed + 1))
	ends=$(wc -l </tmp/dmc-dset)
	dmc_replay_states $LOG $REPLAY $SCRATCH 20 d "$WINDOWS" "$SUB_K" "$SUB_N" conc_subset "$1" ||
		return 1
	echo "$((checked + 1 + DMC_CHECKED)) $((failed + DMC_FAILED)) $ends"
}

# subsets <module>: states of the wider model (dmc_replay_states); prints
# "<windows> <states> <failed>".
subsets() {
	dmc_replay_states $LOG $REPLAY $SCRATCH 20 f "$WINDOWS" "$SUB_K" "$SUB_N" check_subset "$1" ||
		return 1
	echo "$DMC_WINDOWS $DMC_CHECKED $DMC_FAILED"
}

# replay_all <module>: replay up to the chosen points, then to the end; prints
# "<checked> <failed>".
replay_all() {
	dmc_replay_points $LOG $REPLAY 20 f "$POINTS" check_state "$1" || return 1
	# Everything: after a clean remove, every operation is there.
	last=$(tail -n1 /tmp/dmc-log.txt | cut -d' ' -f1)
	if [ "$DMC_FROM" -le "$last" ]; then
		dmc-replay-log replay $LOG $REPLAY --from $DMC_FROM --to "$last" >&2 || return 1
	fi
	check_state "$1" "end" "$NOPS" >&2 || DMC_FAILED=$((DMC_FAILED + 1))
	echo "$((DMC_CHECKED + 1)) $DMC_FAILED"
}

# Ours: the copy runs through the workload (a 1 ms source, one region at a time).
dm_test "ours: the workload runs on a clone over log-writes" record dm_clone_rs \
	"0 6 hydration_threshold 1 hydration_batch_size 1 copy_rate_limit 2"
set -- $(replay_all dm_clone_rs)
echo "# ours: $1 crash points checked, $2 failed"
dm_test "ours: the log has a mark after every fsync" \
	[ "$(awk '$2 == "mark" && $5 ~ /^f[0-9]+$/' /tmp/dmc-log.txt | wc -l)" -ge $((NOPS / 2)) ]
dm_test "ours: crash points checked" dmc_between "${1:-0}" 2 100000
dm_test "ours: every crash point loads and holds every acknowledged write" [ "${2:-1}" = 0 ]
dm_test "ours: the background copy was under way when the workload ended" \
	dmc_between "$(cat /tmp/dmc-copied-at-end)" 1 2047
set -- $(subsets dm_clone_rs)
echo "# ours: $2 states of $1 windows (any subset of the writes after a flush), $3 failed"
dm_test "ours: states with a subset of the writes after a flush point checked" \
	sh -c "[ ${1:-0} -ge 1 ] && [ ${2:-0} -gt ${1:-0} ]"
dm_test "ours: every such state loads and holds every acknowledged write" [ "${3:-1}" = 0 ]

WORKLOAD=conc_workload
dm_test "ours: 3 writers at once, O_DSYNC writes racing the copy, on a clone over log-writes" \
	record dm_clone_rs "0 6 hydration_threshold 4 hydration_batch_size 1 copy_rate_limit 2"
set -- $(conc_all dm_clone_rs)
echo "# ours, concurrent: $1 states checked (points, the end, subsets), $2 failed; $3 writes durable at the end"
dm_test "ours: every state of the concurrent workload holds every write acknowledged before it" \
	sh -c "[ ${1:-0} -ge 3 ] && [ ${2:-1} = 0 ] && [ ${3:-0} = $NCONC ]"
WORKLOAD=workload

# C, same script, upstream option names (its results are reported, not required).
dm_test "C: the workload runs on a clone over log-writes" record dm_clone \
	"0 4 hydration_threshold 1 hydration_batch_size 1"
set -- $(replay_all dm_clone)
echo "# C: $1 crash points checked, $2 failed"
dm_test "C: crash points checked" dmc_between "${1:-0}" 2 100000
dmc_c_result "every crash point holds every acknowledged write ($2 failed)" [ "${2:-1}" = 0 ]
set -- $(subsets dm_clone)
echo "# C: $2 states of $1 windows (any subset of the writes after a flush), $3 failed"
dm_test "C: states with a subset of the writes after a flush point checked" \
	sh -c "[ ${1:-0} -ge 1 ] && [ ${2:-0} -gt ${1:-0} ]"
dmc_c_result "every such state holds every acknowledged write ($3 failed)" [ "${3:-1}" = 0 ]
if [ "$C_CONC" = 1 ]; then
	WORKLOAD=conc_workload
	dm_test "C: 3 writers at once, O_DSYNC writes racing the copy, on a clone over log-writes" \
		record dm_clone "0 4 hydration_threshold 4 hydration_batch_size 1"
	set -- $(conc_all dm_clone)
	echo "# C, concurrent: $1 states checked (points, the end, subsets), $2 failed;" \
		"$3 writes durable at the end"
	dmc_c_result "every state of the concurrent workload holds every write acknowledged before it" \
		sh -c "[ ${1:-0} -ge 3 ] && [ ${2:-1} = 0 ] && [ ${3:-0} = $NCONC ]"
else
	ktap_test_skip "C: the concurrent workload (not on the debug kernel: DMC_LONG=1 runs it)"
	ktap_test_skip "C: every state of the concurrent workload holds every write acknowledged before it"
fi
ktap_finished

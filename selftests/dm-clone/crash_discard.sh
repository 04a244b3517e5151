#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Crash consistency of a big commit (issue 23): the commit of a whole-device
# discard of 2^20 regions (2^18 on the debug kernel, 2^24 in the long form),
# replayed at every flush point and in the wider model (any subset of the writes
# after a flush point), must leave the old state or a new one, nothing between.
#
# The metadata device sits on log-writes; source and destination are error
# targets, the copy is off and discards are not passed down, so the only change
# is the discard: the whole device, in steps of S regions (the clone's discard
# limit, UINT_MAX bytes rounded down to a region: 1048575 regions of 4 KiB), one
# bio each (device-mapper splits a discard only at that limit), one after the
# other. Each commit records the bios marked before it, so every state a power
# cut can leave is "regions 0..K copied, nothing else" with K = 0 (before the
# discard's commit), a multiple of S (a commit between two bios) or N (the end): the dump must be
# exactly that, and the target loading it must count K. A torn commit (some of
# the bitset's blocks new, others old) would show another K or a set that is not
# a prefix, or not load. States without a superblock yet (before the format's
# commit) must load as a fresh clone (K = 0). At least one state after the format
# must be the old state and one the new, or the test proves nothing.
# The same for the C dm-clone, whose result is reported beside ours.
. "$(dirname "$0")/lib.sh"

ktap_print_header
command -v clone_dump >/dev/null || ktap_exit_fail_msg "clone_dump is not in the guest"
command -v dmc-replay-log >/dev/null || ktap_exit_fail_msg "dmc-replay-log is not in the guest"
dmc_require_both dm_log_writes
LOG2=$(dmc_form 24 18 20)
N=$((1 << LOG2))
LEN=$((N * 8))
# Metadata: the guide's rule (N/4 bytes, plus a few MiB). The log holds the
# format's and the commits' blocks (each commit of the discard rewrites every
# array block of the bitset) and a sector per entry.
META_MB=$((N / 4 / 1048576 + 8))
LOG_MB=$((META_MB * 6))
# The wider model: windows, every subset of up to K writes, else N random ones.
WINDOWS=${DMC_CRASH_WINDOWS:-$(dmc_form all 2 all)}
SUB_K=${DMC_CRASH_K:-$(dmc_form 4 1 3)}
SUB_N=${DMC_CRASH_N:-$(dmc_form 64 2 12)}
dm_brd_setup dmc- 4 "$LOG_MB"
trap 'dm_brd_cleanup; dmc_unload_targets' EXIT
META=/dev/ram0 LOG=/dev/ram1 REPLAY=/dev/ram2 SCRATCH=/dev/ram3
ktap_set_plan 5
dmsetup create dmc-esrc --table "0 $LEN error" && dmsetup create dmc-edst --table "0 $LEN error" ||
	ktap_exit_fail_msg "cannot make the error devices"
features="no_hydration no_discard_passdown"

# record <module>: the clone on a log-writes metadata device, a whole-device
# discard, the commit of a suspend, the remove. Leaves /tmp/dmc-log.txt and
# sets S (regions per discard bio, from the clone's discard limit). On failure
# its devices go (the modules must unload after).
record() {
	record_on "$1" && return 0
	for d in dmc-c dmc-lw; do
		dmsetup info "$d" >/dev/null 2>&1 && dmsetup remove --retry "$d"
	done
	return 1
}
record_on() {
	dmc_use_target "$1" || return 1
	dd if=/dev/zero of=$META bs=1M count=$META_MB oflag=direct 2>/dev/null
	dd if=/dev/zero of=$LOG bs=1M count=1 oflag=direct 2>/dev/null
	dmsetup create dmc-lw --table "0 $((META_MB * 2048)) log-writes $META $LOG" || return 1
	dmsetup create dmc-c --table "0 $LEN clone /dev/mapper/dmc-lw /dev/mapper/dmc-edst \
		/dev/mapper/dmc-esrc 8 2 $features" || return 1
	dmc_serves "$1" || return 1
	dmsetup message dmc-lw 0 mark created || return 1
	max=$(cat "$(dm_queue dmc-c)/discard_max_bytes")
	S=$((max / 4096))
	[ "$S" -gt 0 ] || { echo "# $1: no discard limit ($max)"; return 1; }
	# (BusyBox's blkdiscard has no --step: one call per step.)
	o=0
	while [ $o -lt "$N" ]; do
		l=$((N - o < S ? N - o : S))
		blkdiscard -o $((o * 4096)) -l $((l * 4096)) /dev/mapper/dmc-c || return 1
		o=$((o + l))
	done
	a=$(dmc_copied dmc-c)
	dmsetup suspend dmc-c || return 1
	dmsetup message dmc-lw 0 mark committed || return 1
	b=$(dmc_copied dmc-c)
	dmsetup remove dmc-c && dmsetup remove dmc-lw || return 1
	dmc-replay-log list $LOG >/tmp/dmc-log.txt || return 1
	echo "# $1: $a regions copied after the discard, $b after the commit; $(wc -l \
		</tmp/dmc-log.txt) log entries, $(grep -c -E ' (flush|write,fua)' /tmp/dmc-log.txt)" \
		"flush or FUA points; discard bios of $S regions"
	[ "$a" = "$N" ] && [ "$b" = "$N" ]
}

# expect <K>: the dump of a metadata with regions 0..K-1 copied.
expect() {
	echo "<superblock version=\"1\" region_size=\"8\" target_size=\"$LEN\" nr_regions=\"$N\" nr_copied=\"$1\">"
	[ "$1" = 0 ] || echo "  <copied first=\"0\" count=\"$1\"/>"
	echo "</superblock>"
}

# check_dev <module> <device> <label>: the state on <device>: its dump (if it has
# a superblock) is regions 0..K-1 copied with K allowed, and <module> loads it
# counting K. Appends "<K> <formatted>" to /tmp/dmc-ks.
check_dev() {
	# (local: dmc_replay_states, which calls this, has a k of its own.)
	local k formatted got
	if [ -z "$(dd if="$2" bs=4096 count=1 2>/dev/null | tr -d '\0')" ]; then
		k=0 formatted=0
	else
		formatted=1
		clone_dump "$2" >/tmp/dmc-state.xml 2>/tmp/dmc-state.err ||
			{ echo "# $1, $3: clone_dump fails: $(cat /tmp/dmc-state.err)"; return 1; }
		k=$(sed -n 's/.* nr_copied="\([0-9]*\)".*/\1/p' /tmp/dmc-state.xml | head -n1)
		[ -n "$k" ] || { echo "# $1, $3: no copied count in the dump"; return 1; }
		expect "$k" | cmp -s - /tmp/dmc-state.xml ||
			{ echo "# $1, $3: not a prefix:"; head -n4 /tmp/dmc-state.xml; return 1; }
		if [ "$k" != "$N" ] && [ $((k % S)) != 0 ]; then
			echo "# $1, $3: the first $k regions copied: not a commit's state (bios of $S regions)"
			return 1
		fi
	fi
	if ! dmsetup create dmc-k --table "0 $LEN clone $2 /dev/mapper/dmc-edst \
		/dev/mapper/dmc-esrc 8 2 $features"; then
		echo "# $1, $3: does not load"
		return 1
	fi
	got=$(dmc_copied dmc-k)
	dmc_serves "$1" || { dmsetup remove dmc-k; return 1; }
	dmsetup remove dmc-k || return 1
	[ "$got" = "$k" ] || { echo "# $1, $3: loads with $got regions copied, the dump says $k"; return 1; }
	echo "$k $formatted" >>/tmp/dmc-ks
}
check_state() { # check_state <module> <entry> <unused mark>
	dd if=$REPLAY of=$SCRATCH bs=1M count=$META_MB iflag=direct oflag=direct 2>/dev/null
	check_dev "$1" $SCRATCH "entry $2"
}
check_subset() { # check_subset <module> <device> <point> <state id> <unused mark>
	check_dev "$1" "$2" "point $3 state $4"
}

# suite <module>: every flush point and the subsets; prints "<states> <failed>
# <old> <between> <new>" (old and new among the formatted states).
suite() {
	: >/tmp/dmc-ks
	dmc_replay_points $LOG $REPLAY $META_MB c all check_state "$1" || return 1
	checked=$DMC_CHECKED failed=$DMC_FAILED
	dmc_replay_states $LOG $REPLAY $SCRATCH $META_MB c "$WINDOWS" "$SUB_K" "$SUB_N" \
		check_subset "$1" || return 1
	awk -v n=$N -v c=$((checked + DMC_CHECKED)) -v f=$((failed + DMC_FAILED)) '
		$2 == 1 { if ($1 == 0) o++; else if ($1 == n) w++; else b++ }
		END { print c, f, o + 0, b + 0, w + 0 }' /tmp/dmc-ks
}

# states <module>: the states of the log record left; "ok" if none failed and
# both the old and the new state were seen.
states() {
	# shellcheck disable=SC2046 # five numbers
	set -- "$1" $(suite "$1")
	echo "# $1: $2 states (every flush point, subsets of $WINDOWS windows), $3 failed;" \
		"$4 old, $5 between (a commit between bios), $6 new"
	[ $# = 6 ] && [ "$3" = 0 ] && [ "$4" -gt 0 ] && [ "$6" -gt 0 ]
}

if record dm_clone_rs; then
	ktap_test_pass "ours: a whole-device discard of 2^$LOG2 regions recorded"
	dm_test "ours: every state of the discard's commit is the old or a new one" states dm_clone_rs
else
	ktap_test_fail "ours: a whole-device discard of 2^$LOG2 regions recorded"
	ktap_test_fail "ours: every state of the discard's commit is the old or a new one (no log)"
fi
if record dm_clone; then
	ktap_test_pass "C: a whole-device discard of 2^$LOG2 regions recorded"
	dmc_c_result "every state of the discard's commit is the old or a new one" states dm_clone
else
	ktap_test_skip "C: a whole-device discard of 2^$LOG2 regions recorded: C fails this (reported, not ours)"
	ktap_test_skip "C: every state of the discard's commit: no log"
fi
dm_test "the targets unload" dmc_unload_targets
ktap_finished

# SPDX-License-Identifier: GPL-2.0
# Helpers for the clone selftests: KTAP output (the kernel's ktap_helpers.sh),
# module and device set-up with clean-up on exit, status parsing.
#
# Devices: brd RAM disks, /dev/ram0 = metadata, /dev/ram1 = destination,
# /dev/ram2 = source, each $DMC_DEV_MB MiB. The target under test is the Rust
# module, dm_clone_rs; a test that means the kernel's C dm-clone asks for it with
# DMC_TARGET_MODULE=dm_clone. A missing Rust module fails the test (it must not
# quietly test C instead).

. "$(dirname "$0")/../lib/dm.sh"

DMC_DEV_MB=${DMC_DEV_MB:-32}
DMC_META=/dev/ram0
DMC_DEST=/dev/ram1
DMC_SRC=/dev/ram2

# The module providing the `clone` target.
dmc_target_module() { echo "${DMC_TARGET_MODULE:-dm_clone_rs}"; }

# Set up three RAM disks of $DMC_DEV_MB MiB and load the target's module.
# (The metadata's checksums, crc32c, are built in: CRYPTO_CRC32C on 6.12, the
# crc library on 7.3.)
dmc_setup() {
	modprobe "$(dmc_target_module)" ||
		ktap_exit_fail_msg "cannot load $(dmc_target_module), the module under test"
	dm_brd_setup dmc- 3 "$DMC_DEV_MB"
}

# Fill the source with random bytes and keep a copy in /tmp/dmc-src.img.
dmc_fill_source() {
	dd if=/dev/urandom of=/tmp/dmc-src.img bs=1M count="$DMC_DEV_MB" 2>/dev/null &&
		dd if=/tmp/dmc-src.img of="$DMC_SRC" bs=1M oflag=direct 2>/dev/null
}

# The table of a clone over the whole source: dmc_table <region sectors> [args...]
dmc_table() {
	local region=$1
	shift
	echo "0 $(dm_sectors "$DMC_SRC") clone $DMC_META $DMC_DEST $DMC_SRC $region $*"
}

# Field N (1-based, counted after "<start> <len> clone") of the status line.
dmc_status_field() {
	dmsetup status "$1" | awk -v n="$2" '{ print $(n + 3) }'
}

# Wait until every region is copied; fail after $2 seconds (default 120).
dmc_wait_copied() {
	local name=$1 limit=${2:-120} i=0 f
	while [ "$i" -lt "$((limit * 10))" ]; do
		f=$(dmc_status_field "$name" 4)
		case "$f" in
		*/*) [ "${f%/*}" = "${f#*/}" ] && return 0 ;;
		*) echo "# no copy count in the status of $name: '$f'"; return 1 ;;
		esac
		sleep 0.1
		i=$((i + 1))
	done
	echo "# not fully copied after ${limit}s: $f"
	return 1
}

# --- helpers for the behaviour tests of the clone target ---

# Replace the table of device-mapper device $1 with $2 (suspend, load, resume).
dmc_swap() {
	dmsetup suspend "$1" && dmsetup load "$1" --table "$2" && dmsetup resume "$1"
}

# A linear device $1 over the whole of device $2.
dmc_linear() {
	dmsetup create "$1" --table "0 $(dm_sectors "$2") linear $2 0"
}

# dmc_slow_source <ms>: /dev/mapper/dmc-zslow, the source behind a dm-delay of <ms> per
# I/O, so that copies take long enough to be watched (the test ends if it cannot be made).
dmc_slow_source() {
	dmsetup create dmc-zslow --table "0 $(dm_sectors "$DMC_SRC") delay $DMC_SRC 0 $1" ||
		ktap_exit_fail_msg "cannot make the slow source"
}

# Sectors read from block device $1 (a name in /proc/diskstats, e.g. ram2).
dmc_sectors_read() { awk -v d="$1" '$3 == d { print $6 }' /proc/diskstats; }

# Read requests completed by block device $1.
dmc_reads_done() { awk -v d="$1" '$3 == d { print $4 }' /proc/diskstats; }

# The event number of device-mapper device $1.
dmc_event_nr() { dmsetup info "$1" | awk '/Event number/ { print $3 }'; }

# The number of copied regions of clone $1 (the count before the slash).
dmc_copied() { f=$(dmc_status_field "$1" 4); echo "${f%/*}"; }

# The last status field of clone $1: the metadata mode.
dmc_mode() { dmsetup status "$1" | awk '{ print $NF }'; }

# dmc_most_in_flight <clone> <samples>: the most regions in flight seen in its status.
dmc_most_in_flight() {
	local max=0 n i
	for i in $(seq "$2"); do
		n=$(dmc_status_field "$1" 5)
		[ "$n" -gt "$max" ] && max=$n
	done
	echo "$max"
}

# dmc_per_read <clone> <source blkdev name> <regions>: on a clone made with the
# copy off, turn it on until that many regions are copied, off again, and print
# the regions copied per read request of the source, times 10. Prints nothing
# (so that a numeric check fails) if fewer regions were copied or no read of the
# source was counted.
dmc_per_read() {
	local r0 r1 c1
	r0=$(dmc_reads_done "$2")
	dmsetup message "$1" 0 enable_background_copy
	dmc_wait_for 60 "[ \"\$(dmc_copied $1)\" -ge $3 ]" ||
		echo "# $1: $(dmc_copied "$1") regions copied in 60 s, not $3" >&2
	dmsetup message "$1" 0 disable_background_copy
	dmc_wait_for 5 "[ \"\$(dmc_status_field $1 5)\" = 0 ]"
	r1=$(dmc_reads_done "$2") c1=$(dmc_copied "$1")
	if dmc_between "$c1" "$3" 999999999 >&2 && dmc_between "$r1" $((r0 + 1)) 999999999 >&2; then
		echo "$((c1 * 10 / (r1 - r0)))"
	else
		echo "# $1: $c1 regions copied, source reads $r0 -> $r1" >&2
	fi
}

# dmc_between <value> <low> <high>: the value is a number from low to high (an empty
# or non-numeric value, e.g. from a status that could not be read, is not).
dmc_between() {
	case "$1" in '' | *[!0-9]*) echo "# not a count: '$1'"; return 1 ;; esac
	[ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

# dmc_wait_for <seconds> <shell condition>: wait until the condition holds.
dmc_wait_for() {
	local limit=$(($1 * 10)) i=0
	shift
	while [ "$i" -lt "$limit" ]; do
		eval "$@" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# Little-endian unsigned number of $3 bytes at byte offset $2 of device or file $1.
dmc_le() {
	od -An -v -t u1 -j "$2" -N "$3" "$1" |
		awk '{ for (i = 1; i <= NF; i++) b[n++] = $i }
		     END { v = 0; for (i = n - 1; i >= 0; i--) v = v * 256 + b[i]; printf "%.0f\n", v }'
}

# Copy $3 blocks of $2 bytes from file $1 at block $4 into file $5 at block $6 (for building
# the expected image).
dmc_put() { dd if="$1" of="$5" bs="$2" count="$3" skip="$4" seek="$6" conv=notrunc 2>/dev/null; }

# Compare $3 blocks of $2 bytes of device $1 (read with O_DIRECT) from block $4 with file $5
# from block $6.
dmc_same() {
	dd if="$1" bs="$2" count="$3" skip="$4" iflag=direct 2>/dev/null >/tmp/dmc-a.bin &&
		dd if="$5" bs="$2" count="$3" skip="$6" 2>/dev/null >/tmp/dmc-b.bin &&
		cmp -s /tmp/dmc-a.bin /tmp/dmc-b.bin
}

# --- the crash-consistency suites' checker ---

# dmc_same_blocks <file a> <block a> <file b> <block b> <blocks>: equal 4 KiB blocks.
dmc_same_blocks() {
	dd if="$1" bs=4096 skip="$2" count="$5" 2>/dev/null >/tmp/dmc-x.bin
	dd if="$3" bs=4096 skip="$4" count="$5" 2>/dev/null >/tmp/dmc-y.bin
	cmp -s /tmp/dmc-x.bin /tmp/dmc-y.bin
}

# dmc_durable_op <i> <durable>: operation i is durable (see dmc_check_ops).
dmc_durable_op() {
	case $2 in
	@*) grep -qx "$1" "${2#@}" ;;
	*) [ "$1" -lt "$2" ] ;;
	esac
}

# dmc_check_ops <label> <got> <base> <ops> <durable> <unit>: what a clone read back
# after a crash (<got>, an image of the whole clone) against what was done to it.
# <base> is the image before the operations; <ops> has one line per operation,
# "<i> <w|d> <first 4 KiB block> <blocks> <a|i>" (a: acknowledged, i: issued,
# never acknowledged), each on its own blocks; operation data is in /tmp/dmc-op<i>.
# <durable> is a number n (operations 0..n-1 are durable: a workload whose
# operations are made durable in order) or @<file>, the operations made durable,
# one number per line (concurrent writers).
#   - an acknowledged write with i < <durable> (an fsync completed after it), or
#     listed in the file, is there, whole;
#   - any other write is there or not: as a whole with <unit> "whole", 4 KiB
#     block by block with "block" (what a disk cache losing unflushed pages does);
#   - a discarded block reads as before or as zeros;
#   - every other byte equals <base>.
# On success <base> becomes what was read (the next crash starts from there).
dmc_check_ops() {
	local label=$1 got=$2 base=$3 ops=$4 durable=$5 unit=$6 bad=0 i k b n s j
	cp "$base" /tmp/dmc-exp.img
	while read -r i k b n s; do
		if [ "$k" = w ] && [ "$s" = a ] && dmc_durable_op "$i" "$durable"; then
			dmc_same_blocks "$got" "$b" /tmp/dmc-op"$i" 0 "$n" || {
				echo "# $label: write $i (blocks $b+$n), fsynced, is not there whole"
				bad=1
			}
		elif [ "$k" = w ] && [ "$unit" = whole ]; then
			dmc_same_blocks "$got" "$b" /tmp/dmc-op"$i" 0 "$n" ||
				dmc_same_blocks "$got" "$b" "$base" "$b" "$n" || {
				echo "# $label: write $i (blocks $b+$n) is torn or wrong"
				bad=1
			}
		else
			j=0
			while [ $j -lt "$n" ]; do
				if [ "$k" = w ]; then
					dmc_same_blocks "$got" $((b + j)) /tmp/dmc-op"$i" "$j" 1
				else
					dmc_same_blocks "$got" $((b + j)) /dev/zero 0 1
				fi || dmc_same_blocks "$got" $((b + j)) "$base" $((b + j)) 1 || {
					echo "# $label: block $((b + j)) of operation $i ($k) is neither old nor new"
					bad=1
				}
				j=$((j + 1))
			done
		fi
		dmc_put "$got" 4096 "$n" "$b" /tmp/dmc-exp.img "$b"
	done <"$ops"
	if ! cmp -s "$got" /tmp/dmc-exp.img; then
		echo "# $label: outside the operations, not as before:" \
			"$(cmp "$got" /tmp/dmc-exp.img 2>&1 | head -n1)"
		bad=1
	fi
	[ $bad = 0 ] && cp "$got" "$base"
	return $bad
}

# Unload whichever clone module is loaded (a test that loads C must not leave it:
# the next test's modprobe of ours would fail). Fails, saying which, if one stays.
dmc_unload_targets() {
	local m rc=0
	for m in dm_clone_rs dm_clone; do
		if grep -q "^$m " /proc/modules && ! rmmod "$m"; then
			echo "# cannot unload $m: $(grep "^$m " /proc/modules)"
			rc=1
		fi
	done
	return $rc
}

# The other clone module than $1.
dmc_other_module() {
	case $1 in
	dm_clone_rs) echo dm_clone ;;
	*) echo dm_clone_rs ;;
	esac
}

# dmc_use_target <module>: make <module> the one clone module loaded. Fails if the
# other cannot be unloaded or this one loaded: a trial must not run on the wrong
# target (with neither loaded, `dmsetup create` would load C by itself).
dmc_use_target() {
	local other
	other=$(dmc_other_module "$1")
	if grep -q "^$other " /proc/modules && ! rmmod "$other"; then
		echo "# cannot unload $other: $(grep "^$other " /proc/modules)"
		return 1
	fi
	modprobe "$1" || { echo "# cannot load $1"; return 1; }
	grep -q "^$1 " /proc/modules && ! grep -q "^$other " /proc/modules
}

# dmc_serves <module>: the clone devices now loaded are served by <module>: it is
# loaded and in use (a table holds a reference to its target's module), and the
# other clone module is not loaded. Both register a target named `clone` of the
# same version, so /proc/modules is what tells them apart.
dmc_serves() {
	local other
	other=$(dmc_other_module "$1")
	if grep -q "^$other " /proc/modules; then
		echo "# $other is loaded: $(grep "^$other " /proc/modules)"
		return 1
	fi
	awk -v m="$1" '$1 == m && $3 > 0 { ok = 1 } END { exit !ok }' /proc/modules || {
		echo "# $1 does not serve the clone: $(grep "^$1 " /proc/modules || echo not loaded)"
		return 1
	}
}

# Skip unless the kernel has what the test needs (the modules given) and C's
# dm_clone; fail if our module does not load (a missing dm_clone_rs is a failure,
# not a missing kernel feature). Neither clone module is left loaded.
dmc_require_both() {
	dmc_unload_targets || ktap_exit_fail_msg "cannot unload the clone modules"
	dm_require_modules "$@" dm_clone
	rmmod dm_clone || ktap_exit_fail_msg "cannot unload dm_clone"
	modprobe dm_clone_rs || ktap_exit_fail_msg "cannot load dm_clone_rs, the module under test"
	rmmod dm_clone_rs || ktap_exit_fail_msg "cannot unload dm_clone_rs"
}

# dmc_pick_evenly <n|all> <file>: n of the file's lines, evenly spread, the first
# and the last among them (1: the last); all of them if it has no more, or "all".
dmc_pick_evenly() {
	awk -v n="$1" '{ l[NR] = $0 }
		END {
			for (i = 1; i <= NR; i++)
				if (n == "all" || NR <= n + 0 || i == NR || (n > 1 && (i == 1 ||
				    int(i * (n - 1) / NR) != int((i - 1) * (n - 1) / NR))))
					print l[i]
		}' "$2"
}

# dmc_replay_points <log dev> <replay dev> <MiB> <mark prefix> <points> <check...>:
# the log listed in /tmp/dmc-log.txt (dmc-replay-log list) is replayed onto the
# first <MiB> of <replay dev>, zeroed first, up to FLUSH and FUA entries: <points>
# of them evenly spread with the first and the last, or "all". At each it runs
# <check...> <entry> <n>, n from the last mark "<prefix><n>" before the entry
# (empty if none). Sets DMC_CHECKED, DMC_FAILED and DMC_FROM (the first entry
# not replayed); fails if the replay does.
dmc_replay_points() {
	local log=$1 dev=$2 mib=$3 prefix=$4 points=$5 line entry mark
	shift 5
	grep -n -E ' (flush|write,fua)' /tmp/dmc-log.txt | cut -d: -f1 >/tmp/dmc-lines
	dmc_pick_evenly "$points" /tmp/dmc-lines >/tmp/dmc-pick
	dd if=/dev/zero of="$dev" bs=1M count="$mib" oflag=direct 2>/dev/null
	DMC_FROM=0 DMC_CHECKED=0 DMC_FAILED=0
	for line in $(cat /tmp/dmc-pick); do
		entry=$(sed -n "${line}p" /tmp/dmc-log.txt | cut -d' ' -f1)
		dmc-replay-log replay "$log" "$dev" --from $DMC_FROM --to "$entry" >&2 || return 1
		DMC_FROM=$((entry + 1))
		mark=$(head -n "$line" /tmp/dmc-log.txt | awk -v p="$prefix" '
			$2 == "mark" && $5 ~ ("^" p "[0-9]+$") { m = substr($5, length(p) + 1) }
			END { print m }')
		DMC_CHECKED=$((DMC_CHECKED + 1))
		"$@" "$entry" "$mark" >&2 || DMC_FAILED=$((DMC_FAILED + 1))
	done
}

# dmc_replay_states <log> <replay dev> <scratch dev> <MiB> <mark prefix> <windows>
# <K> <N> <check...>: the wider crash model. A disk with a volatile cache may
# lose any subset of the writes completed since the last flush; dm-log-writes
# logs them between that flush and the next (a "window", listed by
# `dmc-replay-log windows`). For <windows> non-empty windows, evenly spread
# with the first and the last (1: the last; or "all"), the log up to the window's flush
# point is replayed onto <replay dev> (its first <MiB>, zeroed first), and for
# each chosen subset of the window (`dmc-replay-log states`: every subset if it
# has at most <K> writes, else the empty one, <N> random ones and the whole)
# that state is built on <scratch dev> (the prefix copied, then the subset
# applied) and <check...> <scratch dev> <point> <state id> <n> runs, n from the
# last mark "<prefix><n>" at or before the point (empty if none). The random
# subsets are seeded by DMC_SEED (default 0). With DMC_WINDOWS_IN="<a> <b>",
# only windows whose point is an entry from a to b are chosen from. Sets
# DMC_CHECKED, DMC_FAILED and DMC_WINDOWS (windows checked); fails if a replay
# does.
dmc_replay_states() {
	local log=$1 dev=$2 scr=$3 mib=$4 prefix=$5 pick=$6 k=$7 n=$8 p id with mark range
	shift 8
	dmc-replay-log windows "$log" >/tmp/dmc-windows.all || return 1
	awk -v r="${DMC_WINDOWS_IN:-}" 'BEGIN { split(r, b, " ") }
		$4 > 0 && (r == "" || ($1 != "-" && $1 + 0 >= b[1] + 0 && $1 + 0 <= b[2] + 0)) {
			print $1 }' /tmp/dmc-windows.all >/tmp/dmc-windows
	dmc_pick_evenly "$pick" /tmp/dmc-windows >/tmp/dmc-wpick
	dd if=/dev/zero of="$dev" bs=1M count="$mib" oflag=direct 2>/dev/null
	DMC_FROM=0 DMC_CHECKED=0 DMC_FAILED=0 DMC_WINDOWS=0
	for p in $(cat /tmp/dmc-wpick); do
		range=""
		mark=""
		if [ "$p" != - ]; then
			if [ "$DMC_FROM" -le "$p" ]; then
				dmc-replay-log replay "$log" "$dev" --from "$DMC_FROM" --to "$p" >&2 || return 1
			fi
			DMC_FROM=$((p + 1))
			range="--from $DMC_FROM --to $p"
			mark=$(awk -v e="$p" -v p="$prefix" '$1 > e { exit }
				$2 == "mark" && $5 ~ ("^" p "[0-9]+$") { m = substr($5, length(p) + 1) }
				END { print m }' /tmp/dmc-log.txt)
		fi
		dmc-replay-log states "$log" --point "$p" --max-exhaustive "$k" --random "$n" \
			--seed "${DMC_SEED:-0}" >/tmp/dmc-states || return 1
		DMC_WINDOWS=$((DMC_WINDOWS + 1))
		while read -r id with; do
			dd if="$dev" of="$scr" bs=1M count="$mib" iflag=direct oflag=direct 2>/dev/null
			# shellcheck disable=SC2086 # $range is two options or none
			dmc-replay-log replay "$log" "$scr" $range --with "$with" >&2 || return 1
			DMC_CHECKED=$((DMC_CHECKED + 1))
			"$@" "$scr" "$p" "$id" "$mark" >&2 || DMC_FAILED=$((DMC_FAILED + 1))
		done </tmp/dmc-states
	done
}

# dmc_form <long> <debug> <fast>: a suite's size: the long form's (DMC_LONG=1),
# the debug kernel's quick form's (it runs about 4 times slower), or the quick
# form's on the fast kernel.
# dmc_pick_op <i> <region> <kinds>: operation i of a crash workload (8 KiB
# regions, 4 KiB blocks), the (i mod kinds)-th of: whole-region write + fsync,
# second-half write, whole-region discard, first-half write + fsync,
# whole-region write, second-half write + fsync. Sets k (w or d), b (first
# block), n (blocks) and sync (dd's conv=fsync, or empty).
dmc_pick_op() {
	sync=""
	case $(($1 % $3)) in
	0) k=w b=$(($2 * 2)) n=2 sync=conv=fsync ;;
	1) k=w b=$(($2 * 2 + 1)) n=1 ;;
	2) k=d b=$(($2 * 2)) n=2 ;;
	3) k=w b=$(($2 * 2)) n=1 sync=conv=fsync ;;
	4) k=w b=$(($2 * 2)) n=2 ;;
	5) k=w b=$(($2 * 2 + 1)) n=1 sync=conv=fsync ;;
	esac
}

dmc_form() {
	if [ "${DMC_LONG:-0}" = 1 ]; then
		echo "$1"
	elif [ "${DMC_KERNEL:-fast}" = debug ]; then
		echo "$2"
	else
		echo "$3"
	fi
}

# dmc_c_result <description> <command...>: a result of the C target, reported
# but not required (where C fails we say so in the user guide): pass if the
# command succeeds, else skip, saying so.
dmc_c_result() {
	local desc=$1
	shift
	if "$@"; then
		ktap_test_pass "C: $desc"
	else
		ktap_test_skip "C: $desc: C fails this (reported, not ours)"
	fi
}

# dmc_skip <reason>: skip the whole test (ktap_skip_all only prints the plan).
dmc_skip() {
	ktap_skip_all "$1"
	exit "$KSFT_SKIP"
}

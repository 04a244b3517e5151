#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A real filesystem on the clone. The source holds an ext4 filesystem with files
# of known checksums. The clone (metadata and destination on one log-writes
# device, as in crash_replay.sh) is mounted while the copy runs; a file
# workload creates, appends with fsync, renames and deletes files, each step made
# durable (fsync, or sync for a rename or delete) and marked in the log;
# fstrim discards the free space, which marks its regions copied; the
# filesystem is unmounted and the copy finishes. Then:
#   - e2fsck -fn is clean on the destination alone, and every file there has
#     its checksum;
#   - the log is replayed up to FLUSH and FUA points (a sample; every one with
#     DMC_LONG=1), as xfstests generic/482 does: at each, the clone loaded with
#     the copy off mounts (journal recovery), every file as of the last mark
#     reads back with its checksum (a file the next step changes may be in
#     either state), and after unmounting e2fsck -fn is clean;
#   - the wider crash model (dmc_replay_states): after a flush point, any
#     subset of the writes completed before the next one (a disk's volatile
#     cache may lose any of them), checked the same way against the last
#     step made durable before the window's end.
# The C dm-clone gets the same run; its result is reported, not required.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=64
dmc_require_both dm_log_writes dm_delay
grep -qw ext4 /proc/filesystems || dmc_skip "no ext4 in this kernel"
command -v mkfs.ext4 >/dev/null && command -v e2fsck >/dev/null ||
	dmc_skip "no e2fsprogs in the guest"
dm_brd_setup dmc- 5 "$DMC_DEV_MB"
DATA=/dev/ram0 LOG=/dev/ram1 SRC=/dev/ram2 REPLAY=/dev/ram3 SCRATCH=/dev/ram4
META_SECTORS=8192   # 4 MiB
SECTORS=65536       # 32 MiB filesystem
REGION=32           # 16 KiB regions
# Quick form: 6 points (3 on the debug kernel); long: every one.
POINTS=${DMC_CRASH_POINTS:-$(dmc_form all 3 6)}
# The wider model: windows after a flush point (quick: 2, debug: 1, long: 24),
# every subset of a window of at most K writes, else the empty one, N random
# ones and the whole.
WINDOWS=${DMC_CRASH_WINDOWS:-$(dmc_form 24 1 2)}
SUB_K=${DMC_CRASH_K:-$(dmc_form 4 1 3)}
SUB_N=${DMC_CRASH_N:-$(dmc_form 6 1 3)}
MNT=/tmp/dmc-mnt
mkdir -p $MNT
fs_cleanup() {
	umount $MNT 2>/dev/null
	dm_brd_cleanup
	dmc_unload_targets
}
trap fs_cleanup EXIT
ktap_set_plan 18

# The source: ext4 with 24 files of 4 to 100 KiB, their checksums in
# /tmp/dmc-fs-src.sum; then it is put behind a 5 ms dm-delay, so that the copy
# is still running through the workload.
make_source() {
	dmsetup create dmc-src --table "0 $SECTORS linear $SRC 0" &&
		mkfs.ext4 -q -F -b 4096 -E nodiscard,lazy_itable_init=0 /dev/mapper/dmc-src &&
		mount -t ext4 /dev/mapper/dmc-src $MNT || return 1
	mkdir $MNT/src
	for i in $(seq 24); do
		dd if=/dev/urandom of=$MNT/src/f$i bs=4096 count=$((i * 4 % 25 + 1)) 2>/dev/null
	done
	(cd $MNT && sha256sum src/*) >/tmp/dmc-fs-src.sum
	umount $MNT &&
		dmsetup load dmc-src --table "0 $SECTORS delay $SRC 0 5" &&
		dmsetup suspend dmc-src && dmsetup resume dmc-src
}
dm_test "an ext4 source with 24 files, behind a 5 ms delay" make_source

slices() {
	dmsetup create "$1-meta" --table "0 $META_SECTORS linear $2 0" &&
		dmsetup create "$1-dest" --table "0 $SECTORS linear $2 $META_SECTORS"
}

# step <n>: make the workload so far durable and record the files' checksums
# as of mark n in /tmp/dmc-fs-exp.<n> (every file on the clone).
step() {
	(cd $MNT && find . -type f | sort | xargs sha256sum) >/tmp/dmc-fs-exp."$1"
	dmsetup message dmc-lw 0 mark "s$1"
}

# workload: 8 rounds of: create with fsync, append with fsync, rename + sync,
# delete + sync; each followed by a mark. The background copy runs through the
# first two rounds and is then paused, so that fstrim finds uncopied free space
# however slow the kernel is (at 1 MiB/s the debug kernel's workload outlasted
# the whole copy); the live part resumes it after unmounting.
workload() {
	n=0
	mkdir $MNT/w && sync && step $n
	for r in $(seq 8); do
		if [ "$r" = 3 ]; then
			dmsetup message dmc-c 0 disable_hydration || return 1
		fi
		dd if=/dev/urandom of=$MNT/w/new$r bs=4096 count=$((r + 2)) conv=fsync 2>/dev/null &&
			n=$((n + 1)) && step $n || return 1
		dd if=/dev/urandom of=$MNT/src/f$r bs=1000 count=3 oflag=append conv=notrunc,fsync \
			2>/dev/null && n=$((n + 1)) && step $n || return 1
		mv $MNT/src/f$((r + 8)) $MNT/w/moved$r && sync && n=$((n + 1)) && step $n || return 1
		rm $MNT/src/f$((r + 16)) && sync && n=$((n + 1)) && step $n || return 1
	done
	echo $n >/tmp/dmc-fs-steps
}

# check_files <n> <label>: the mounted filesystem holds the files of step n.
# The step under way at the crash (n+1) may have done part of its work: a file
# it changes exists with any contents, one it removes or renames may be gone,
# one it creates may be there with any contents. Every other file is exact.
check_files() {
	(cd $MNT && find . -type f | sort | xargs sha256sum) >/tmp/dmc-fs-got 2>/dev/null
	# After the last step nothing was under way: the next state is this one. (A
	# copy, not the same file: awk tells its inputs apart by name.)
	next=/tmp/dmc-fs-exp.$(($1 + 1))
	[ -e "$next" ] || { cp /tmp/dmc-fs-exp."$1" /tmp/dmc-fs-nxt && next=/tmp/dmc-fs-nxt; }
	awk -v label="$2" '
		FILENAME == ARGV[1] { now[$2] = $1; next }
		FILENAME == ARGV[2] { nxt[$2] = $1; next }
		{ got[$2] = $1 }
		END {
			bad = 0
			for (f in now) {
				if ((f in nxt) && nxt[f] == now[f]) {
					if (!(f in got)) { print "# " label ": " f " is missing"; bad = 1 }
					else if (got[f] != now[f]) {
						print "# " label ": " f " has the wrong contents"; bad = 1
					}
				} else if ((f in nxt) && !(f in got)) {
					print "# " label ": " f " (being changed) is missing"; bad = 1
				} else if (!(f in nxt) && (f in got) && got[f] != now[f]) {
					print "# " label ": " f " (being removed) has the wrong contents"; bad = 1
				}
			}
			for (f in got)
				if (!(f in now) && !(f in nxt)) {
					print "# " label ": " f " should not be there"; bad = 1
				}
			exit bad
		}' /tmp/dmc-fs-exp."$1" "$next" /tmp/dmc-fs-got
}

# live <module> <copy args>: the live part; the regions fstrim marked copied go
# to /tmp/dmc-fs-trimmed.
live() {
	dmc_use_target "$1" || return 1
	dd if=/dev/zero of=$DATA bs=1M count=36 oflag=direct 2>/dev/null
	dd if=/dev/zero of=$LOG bs=1M count=1 oflag=direct 2>/dev/null
	dmsetup create dmc-lw --table "0 $(dm_sectors $DATA) log-writes $DATA $LOG" &&
		slices dmc-l /dev/mapper/dmc-lw &&
		dmsetup create dmc-c --table "0 $SECTORS clone /dev/mapper/dmc-l-meta \
			/dev/mapper/dmc-l-dest /dev/mapper/dmc-src $REGION $2" || return 1
	dmc_serves "$1" || return 1
	mount -t ext4 /dev/mapper/dmc-c $MNT || { echo "# $1: cannot mount the clone"; return 1; }
	workload || { echo "# $1: the workload failed"; umount $MNT; return 1; }
	before=$(dmc_copied dmc-c)
	fstrim $MNT || { echo "# $1: fstrim failed"; umount $MNT; return 1; }
	after=$(dmc_copied dmc-c)
	echo "# $1: fstrim: $before -> $after of $((SECTORS / REGION)) regions copied" >&2
	echo $((after - before)) >/tmp/dmc-fs-trimmed
	umount $MNT && dmsetup message dmc-c 0 enable_hydration || return 1
	dmc_wait_copied dmc-c 300 || return 1
	dmsetup remove dmc-c && dmsetup remove dmc-l-dest && dmsetup remove dmc-l-meta &&
		dmsetup remove dmc-lw || return 1
	dmc-replay-log list $LOG >/tmp/dmc-log.txt
}

# alone: the destination without the clone: e2fsck clean, files as at the end.
alone() {
	dmsetup create dmc-alone --table "0 $SECTORS linear $DATA $META_SECTORS" || return 1
	e2fsck -fn /dev/mapper/dmc-alone >/tmp/dmc-fsck.txt 2>&1 ||
		{ sed 's/^/# /' /tmp/dmc-fsck.txt | head -n 20; dmsetup remove dmc-alone; return 1; }
	mount -t ext4 -o ro /dev/mapper/dmc-alone $MNT || { dmsetup remove dmc-alone; return 1; }
	check_files "$(cat /tmp/dmc-fs-steps)" "$1, the destination alone"
	rc=$?
	umount $MNT
	dmsetup remove dmc-alone
	return $rc
}

# replays <module>: replay to the chosen points; prints "<checked> <failed>".
replays() {
	dmc_replay_points $LOG $REPLAY 36 s "$POINTS" replay_check "$1" || return 1
	echo "$DMC_CHECKED $DMC_FAILED"
}

# replay_check <module> <entry> <last mark>: the state replayed up to <entry>.
replay_check() {
	dd if=$REPLAY of=$SCRATCH bs=1M count=36 oflag=direct 2>/dev/null
	check_at "$1" $SCRATCH "$1, entry $2" "$3"
}

# window_mark <point>: the last step made durable before the end of the
# window after <point> (a flush or FUA entry, or - for the start of the log).
# A step's mark follows its fsync's durability point, so with no durability
# point between <point> and a mark, that step was durable at <point>: every
# state of the window must hold it (stronger than the last mark at <point>).
window_mark() {
	awk -v e="$1" 'BEGIN { if (e == "-") e = -1 }
		$1 > e + 0 && $2 ~ /flush|fua/ { exit }
		$2 == "mark" && $5 ~ /^s[0-9]+$/ { m = substr($5, 2) }
		END { print m }' /tmp/dmc-log.txt
}

# subset_check <module> <device> <point> <state id> <unused mark>: a state of
# the wider model, built on <device>.
subset_check() { check_at "$1" "$2" "$1, point $3 state $4" "$(window_mark "$3")"; }

# subsets <module>: windows of the file workload (from the mark of its first
# step to that of its last); prints "<windows> <states> <failed>".
subsets() {
	DMC_WINDOWS_IN=$(awk '$2 == "mark" && $5 ~ /^s[0-9]+$/ { if (a == "") a = $1; b = $1 }
		END { print a, b }' /tmp/dmc-log.txt)
	echo "# $1: windows from entry ${DMC_WINDOWS_IN% *} to ${DMC_WINDOWS_IN#* }" >&2
	dmc_replay_states $LOG $REPLAY $SCRATCH 36 s "$WINDOWS" "$SUB_K" "$SUB_N" subset_check "$1" ||
		return 1
	echo "$DMC_WINDOWS $DMC_CHECKED $DMC_FAILED"
}

# check_at <module> <device> <label> <last mark>: the clone loaded with the
# copy off on the state on <device> mounts, holds the files of the mark (none
# checked without one), unmounts, and passes e2fsck -fn.
check_at() {
	label=$3
	slices dmc-s "$2" &&
		dmsetup create dmc-k --table "0 $SECTORS clone /dev/mapper/dmc-s-meta \
			/dev/mapper/dmc-s-dest /dev/mapper/dmc-src $REGION 1 no_hydration" ||
		{ echo "# $label: the clone does not load"; dm_remove_all dmc-s; return 1; }
	rc=0
	if mount -t ext4 /dev/mapper/dmc-k $MNT; then
		if [ -n "$4" ]; then
			check_files "$4" "$label" || rc=1
		fi
		umount $MNT || rc=1
	else
		echo "# $label: does not mount"
		rc=1
	fi
	e2fsck -fn /dev/mapper/dmc-k >/tmp/dmc-fsck.txt 2>&1 ||
		{ echo "# $label: e2fsck:"; sed 's/^/# /' /tmp/dmc-fsck.txt | head -n 10; rc=1; }
	dmsetup remove dmc-k; dmsetup remove dmc-s-dest; dmsetup remove dmc-s-meta
	return $rc
}

dm_test "ours: mount the clone during the copy, file workload, fstrim, finish the copy" \
	live dm_clone_rs "0 4 hydration_threshold 1 copy_rate_limit 1"
dm_test "ours: fstrim marked the free space's regions copied (at least 256)" \
	dmc_between "$(cat /tmp/dmc-fs-trimmed)" 256 100000
dm_test "ours: the destination alone passes e2fsck -fn, every file has its checksum" alone ours
set -- $(replays ours)
echo "# ours: $1 crash points replayed, $2 failed"
dm_test "ours: crash points replayed" dmc_between "${1:-0}" 2 100000
dm_test "ours: every crash point mounts, has its fsynced files, passes e2fsck" [ "${2:-1}" = 0 ]
# marks_ok: one log mark per workload step (the replay checked the right states).
marks_ok() {
	m=$(awk '$2 == "mark" && $5 ~ /^s[0-9]+$/ { printf "%s ", $5 }' /tmp/dmc-log.txt)
	want=$(for i in $(seq 0 "$(cat /tmp/dmc-fs-steps)"); do printf "s%s " "$i"; done)
	[ "$m" = "$want" ] || { echo "# marks in the log: $m"; echo "# steps: $want"; return 1; }
}
dm_test "ours: the log has a mark per workload step" marks_ok
set -- $(subsets ours)
echo "# ours: $2 states of $1 windows (any subset of the writes after a flush), $3 failed"
dm_test "ours: states with a subset of the writes after a flush point checked" \
	sh -c "[ ${1:-0} -ge 1 ] && [ ${2:-0} -gt ${1:-0} ]"
dm_test "ours: every such state mounts, has its fsynced files, passes e2fsck" [ "${3:-1}" = 0 ]
dm_test "ours: the source is unchanged" \
	sh -c "mount -t ext4 -o ro /dev/mapper/dmc-src $MNT && cd $MNT && sha256sum -c -s /tmp/dmc-fs-src.sum; r=\$?; cd /; umount $MNT; exit \$r"

dm_test "C: mount the clone during the copy, file workload, fstrim, finish the copy" \
	live dm_clone "0 4 hydration_threshold 1 hydration_batch_size 1"
dm_test "C: fstrim marked the free space's regions copied (at least 256)" \
	dmc_between "$(cat /tmp/dmc-fs-trimmed)" 256 100000
dmc_c_result "the destination alone passes e2fsck -fn, every file has its checksum" alone C
set -- $(replays C)
echo "# C: $1 crash points replayed, $2 failed"
dm_test "C: crash points replayed" dmc_between "${1:-0}" 2 100000
dmc_c_result "every crash point mounts, has its fsynced files, passes e2fsck ($2 failed)" \
	[ "${2:-1}" = 0 ]
dm_test "C: the log has a mark per workload step" marks_ok
set -- $(subsets C)
echo "# C: $2 states of $1 windows (any subset of the writes after a flush), $3 failed"
dm_test "C: states with a subset of the writes after a flush point checked" \
	sh -c "[ ${1:-0} -ge 1 ] && [ ${2:-0} -gt ${1:-0} ]"
dmc_c_result "every such state mounts, has its fsynced files, passes e2fsck ($3 failed)" \
	[ "${3:-1}" = 0 ]
ktap_finished

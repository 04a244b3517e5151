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
#     either state), and after unmounting e2fsck -fn is clean.
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
MNT=/tmp/dmc-mnt
mkdir -p $MNT
fs_cleanup() {
	umount $MNT 2>/dev/null
	dm_brd_cleanup
	dmc_unload_targets
}
trap fs_cleanup EXIT
ktap_set_plan 14

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

# replay_check <module> <entry> <last mark>: mount, files, unmount, e2fsck.
replay_check() {
	label="$1, entry $2"
	dd if=$REPLAY of=$SCRATCH bs=1M count=36 oflag=direct 2>/dev/null
	slices dmc-s $SCRATCH &&
		dmsetup create dmc-k --table "0 $SECTORS clone /dev/mapper/dmc-s-meta \
			/dev/mapper/dmc-s-dest /dev/mapper/dmc-src $REGION 1 no_hydration" ||
		{ echo "# $label: the clone does not load"; dm_remove_all dmc-s; return 1; }
	rc=0
	if mount -t ext4 /dev/mapper/dmc-k $MNT; then
		if [ -n "$3" ]; then
			check_files "$3" "$label" || rc=1
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
ktap_finished

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Many regions (issue 23): 2^24 regions of 4 KiB (64 GiB; error targets as
# source and destination, the copy off, no discard passdown), for each target:
# discards covering nearly the whole device (all but the first region and the
# last two; then the last; then half a region, which marks nothing), the commit
# of the suspend, and the clone loaded again. The status count must be exact
# after the discards and after the reload; the metadata (clone_dump) must list
# exactly the discarded regions, the same for both targets (one on-disk format);
# and a commit that changed most of the map rewrites it whole.
# Ours writes the on-disk bitset a word (64 regions) at a time and loads it so;
# the kernel log checker fails the run on an RCU stall, soft lockup or hung task
# (a commit or load of millions of regions must yield the CPU). The debug form
# uses 2^22 regions; tools/bench/scale.sh times 2^28 and more, against C.
. "$(dirname "$0")/lib.sh"

ktap_print_header
command -v clone_dump >/dev/null || ktap_exit_fail_msg "clone_dump is not in the guest"
dmc_require_both
LOG=$(dmc_form 24 22 24)
N=$((1 << LOG))
LEN=$((N * 8))
# The user guide's rule of thumb: N/4 bytes (the whole-device discard touches
# every array block: the bitset twice until the commit) plus a few MiB.
DMC_DEV_MB=$((N / 4 / 1048576 + 8))
dm_brd_setup dmc- 1 "$DMC_DEV_MB"
trap 'dm_brd_cleanup; dmc_unload_targets' EXIT
ktap_set_plan 12
dmsetup create dmc-esrc --table "0 $LEN error" && dmsetup create dmc-edst --table "0 $LEN error" ||
	ktap_exit_fail_msg "cannot make the error devices"
table="0 $LEN clone /dev/ram0 /dev/mapper/dmc-edst /dev/mapper/dmc-esrc 8 2 no_hydration no_discard_passdown"
expect=/tmp/dmc-scale-expect.xml
cat >"$expect" <<XML
<superblock version="1" region_size="8" target_size="$LEN" nr_regions="$N" nr_copied="$((N - 2))">
  <copied first="1" count="$((N - 3))"/>
  <copied first="$((N - 1))" count="1"/>
</superblock>
XML

# run <module>: the discards, the commit, the reload; prints the copied counts
# after the discards and after the reload, and leaves the metadata's dump.
run() {
	dmc_use_target "$1" || return 1
	dd if=/dev/zero of=/dev/ram0 bs=1M count=1 oflag=direct 2>/dev/null
	dmsetup create dmc-s --table "$table" || return 1
	dmc_serves "$1" || return 1
	blkdiscard -o 4096 -l $(((N - 3) * 4096)) /dev/mapper/dmc-s &&
		blkdiscard -o $(((N - 1) * 4096)) -l 4096 /dev/mapper/dmc-s &&
		blkdiscard -o 0 -l 2048 /dev/mapper/dmc-s || return 1
	after=$(dmc_copied dmc-s)
	t0=$(awk '{ print $1 }' /proc/uptime)
	dmsetup suspend dmc-s && dmsetup load dmc-s --table "$table" && dmsetup resume dmc-s || return 1
	t1=$(awk '{ print $1 }' /proc/uptime)
	reloaded=$(dmc_copied dmc-s)
	dmsetup remove dmc-s
	clone_dump /dev/ram0 >/tmp/dmc-scale-$1.xml || return 1
	echo "# $1: $after regions copied after the discards, $reloaded after the commit and reload" \
		"($(echo "$t0 $t1" | awk '{ printf "%.1f", $2 - $1 }') s)"
	[ "$after" = $((N - 2)) ] && [ "$reloaded" = $((N - 2)) ]
}

for m in dm_clone_rs dm_clone; do
	dm_test "$m: 2^$LOG regions discarded, committed and loaded again, counts exact" run $m
	dm_test "$m: the metadata lists exactly the regions discarded" \
		cmp -s /tmp/dmc-scale-$m.xml "$expect"
done
dm_test "both targets' metadata dump the same" \
	cmp -s /tmp/dmc-scale-dm_clone_rs.xml /tmp/dmc-scale-dm_clone.xml

# A commit that rewrites the whole on-disk map (Marks::dense): 2^20 - 5 regions
# (16384 words, the last holding 59): region 3 discarded and committed (a
# suspend: one word written), then regions 100 to the end in one bio (the
# discard limit without passdown is about 4 GiB) and a suspend: that commit
# changed 16383 words, more than one in 64, so it rewrites the map an array
# block at a time. Both targets must dump exactly that; ours must have written
# one word one by one and rewritten 16384 (commit_stats), so the case checks
# the rewrite, not the word path. (A bio's marks land in one commit: the
# worker marks it in one pass; a periodic commit may take them instead of the
# suspend, which then has nothing to commit and does not count.)
T=$(((1 << 20) - 5))
ttable="0 $((T * 8)) clone /dev/ram0 /dev/mapper/dmc-edst /dev/mapper/dmc-esrc 8 2 no_hydration no_discard_passdown"
cat >/tmp/dmc-tail-expect.xml <<XML
<superblock version="1" region_size="8" target_size="$((T * 8))" nr_regions="$T" nr_copied="$((T - 99))">
  <copied first="3" count="1"/>
  <copied first="100" count="$((T - 100))"/>
</superblock>
XML
# dumped_as <module> <case> <commit_stats> <expected stats> <what they mean>:
# the metadata on /dev/ram0 dumps exactly as /tmp/dmc-<case>-expect.xml, and
# (ours) commit_stats holds the expected fields.
dumped_as() {
	clone_dump /dev/ram0 >/tmp/dmc-$2-$1.xml || return 1
	cmp -s /tmp/dmc-$2-$1.xml /tmp/dmc-$2-expect.xml ||
		{ echo "# $1: the dump differs:"; diff /tmp/dmc-$2-expect.xml /tmp/dmc-$2-$1.xml |
			head -n 8 | sed 's/^/# /'; return 1; }
	[ "$1" != dm_clone_rs ] || case " $3 " in
	*" $4 "*) ;;
	*) echo "# $1: expected $5"; return 1 ;;
	esac
}
tail_run() {
	dmc_use_target "$1" || return 1
	dd if=/dev/zero of=/dev/ram0 bs=1M count=1 oflag=direct 2>/dev/null
	dmsetup create dmc-t --table "$ttable" || return 1
	dmc_serves "$1" || { dmsetup remove dmc-t; return 1; }
	blkdiscard -o $((3 * 4096)) -l 4096 /dev/mapper/dmc-t &&
		dmsetup suspend dmc-t && dmsetup resume dmc-t &&
		blkdiscard -o $((100 * 4096)) -l $(((T - 100) * 4096)) /dev/mapper/dmc-t &&
		dmsetup suspend dmc-t && dmsetup resume dmc-t ||
		{ dmsetup remove dmc-t; return 1; }
	if [ "$1" = dm_clone_rs ]; then
		stats=$(dmsetup message dmc-t 0 commit_stats)
		echo "# $1: $stats"
	fi
	dmsetup remove dmc-t || return 1
	dumped_as "$1" tail "${stats:-}" "commits=2 words_written=1 words_rewritten=$((T / 64 + 1))" \
		"2 commits, 1 word written one by one, then $((T / 64 + 1)) rewritten"
}
dm_test "dm_clone_rs: a commit that changed most of the map rewrites it whole, the dump exact" \
	tail_run dm_clone_rs
dm_test "dm_clone: the same sequence dumps the same" tail_run dm_clone

# A dense commit on a metadata device with no room for a second copy of the map
# (smaller than clone_metadata_size's worst case, which the targets take):
# 2^20 regions (16384 words in 33 array blocks) on a metadata device 12 blocks
# larger than what the formatted metadata uses (read from the status of a clone
# on the whole ram disk); regions 6400 to 25599 (300 words, more than one in 64,
# in one bio, in one array block) discarded, then a suspend commits them. A
# rewrite would need 33 new array blocks (ENOSPC: the clone would go read-only);
# the 300 words written one by one need a few blocks. Both targets must stay
# read-write and dump exactly the discard; ours must have written the 300 words
# one by one (commit_stats: one commit), so the case checks the room rule, not
# a discard that happened to miss the rewrite's threshold.
R=$((1 << 20))
rtable() { echo "0 $((R * 8)) clone $1 /dev/mapper/dmc-edst /dev/mapper/dmc-esrc 8 2 no_hydration no_discard_passdown"; }
cat >/tmp/dmc-tight-expect.xml <<XML
<superblock version="1" region_size="8" target_size="$((R * 8))" nr_regions="$R" nr_copied="19200">
  <copied first="6400" count="19200"/>
</superblock>
XML
tight_run() {
	dmc_use_target "$1" || return 1
	dd if=/dev/zero of=/dev/ram0 bs=1M count=1 oflag=direct 2>/dev/null
	dmsetup create dmc-t --table "$(rtable /dev/ram0)" || return 1
	used=$(dmc_status_field dmc-t 2)
	used=${used%/*}
	dmsetup remove dmc-t || return 1
	dd if=/dev/zero of=/dev/ram0 bs=1M count=1 oflag=direct 2>/dev/null
	dmsetup create dmc-tm --table "0 $(((used + 12) * 8)) linear /dev/ram0 0" || return 1
	dmsetup create dmc-t --table "$(rtable /dev/mapper/dmc-tm)" ||
		{ dmsetup remove dmc-tm; return 1; }
	echo "# $1: metadata $(dmc_status_field dmc-t 2) blocks used"
	blkdiscard -o $((6400 * 4096)) -l $((19200 * 4096)) /dev/mapper/dmc-t &&
		dmsetup suspend dmc-t && dmsetup resume dmc-t
	ok=$?
	mode=$(dmc_mode dmc-t)
	echo "# $1: after the commit: mode $mode, metadata $(dmc_status_field dmc-t 2) blocks used"
	if [ "$1" = dm_clone_rs ]; then
		stats=$(dmsetup message dmc-t 0 commit_stats)
		echo "# $1: $stats"
	fi
	dmsetup remove dmc-t && dmsetup remove dmc-tm || return 1
	[ "$ok" = 0 ] && [ "$mode" = rw ] || return 1
	dumped_as "$1" tight "${stats:-}" "commits=1 words_written=300 words_rewritten=0" \
		"one commit writing 300 words one by one"
}
dm_test "dm_clone_rs: a dense commit with no room to rewrite the map writes its words one by one, read-write, the dump exact" \
	tight_run dm_clone_rs
dm_test "dm_clone: the same sequence on the same metadata size dumps the same" tight_run dm_clone

# A whole-device discard on a fresh clone: every region, then loaded again.
whole() {
	dmc_use_target dm_clone_rs || return 1
	dd if=/dev/zero of=/dev/ram0 bs=1M count=1 oflag=direct 2>/dev/null
	dmsetup create dmc-s --table "$table" || return 1
	blkdiscard /dev/mapper/dmc-s || return 1
	a=$(dmc_copied dmc-s)
	dmsetup suspend dmc-s && dmsetup load dmc-s --table "$table" && dmsetup resume dmc-s || return 1
	b=$(dmc_copied dmc-s)
	echo "# whole-device discard: $a regions copied, $b after the reload"
	[ "$a" = "$N" ] && [ "$b" = "$N" ]
}
dm_test "dm_clone_rs: a whole-device discard marks every region, and they load back" whole
# (Freed by the worker after a commit with nothing left to write: the waker's,
# every second.)
dm_test "and the maps are freed once all is copied and committed" \
	dmc_wait_for 30 "dmsetup message dmc-s 0 memory | grep -q ' map_bytes=0 '"
dmsetup remove dmc-s
dm_test "no stall, soft lockup or hung task while doing so" \
	sh -c '! dmesg | grep -qiE "rcu.*stall|soft lockup|blocked for more than"'
ktap_finished

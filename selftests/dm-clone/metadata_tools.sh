#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The metadata tools on metadata the kernel targets wrote, ours and C's:
# clone_check finds it clean; clone_dump lists exactly the regions written
# whole (and both targets' dumps agree); clone_restore of that dump onto blank
# metadata opens with both targets with the dumped regions copied (and reads as
# the clone did); a flipped bit in the bitset's array block is found by
# clone_check, and the kernel refuses that metadata too; metadata a live table
# holds is refused by every tool, untouched; clone_metadata_size's suggestion
# is what metadata_size.sh holds the targets to.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=4
for t in clone_check clone_dump clone_restore clone_repair clone_metadata_size; do
	command -v $t >/dev/null || ktap_exit_fail_msg "$t is not in the guest"
done
dmc_require_both
dm_brd_setup dmc- 3 "$DMC_DEV_MB"
ktap_set_plan 15

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
table="0 $len clone $DMC_META $DMC_DEST $DMC_SRC 8 1 no_hydration"
expect=/tmp/dmc-tools-expect.xml
# 1024 regions of 4 KiB; regions 0-9, 100-101 and the last written whole.
cat >"$expect" <<XML
<superblock version="1" region_size="8" target_size="$len" nr_regions="1024" nr_copied="13">
  <copied first="0" count="10"/>
  <copied first="100" count="2"/>
  <copied first="1023" count="1"/>
</superblock>
XML
use() { dmc_use_target "$1"; }
# make <module>: a clone with those regions written, removed; its metadata image in
# /tmp/dmc-meta-<module>.img.
make_clone() {
	mod=$1
	use "$mod" || return 1
	dd if=/dev/zero of="$DMC_META" bs=4096 count=1 oflag=direct 2>/dev/null
	dmsetup create dmc-t --table "$table" || return 1
	dmc_serves "$mod" || { dmsetup remove dmc-t; return 1; }
	dd if=/dev/urandom of=/dev/mapper/dmc-t bs=4096 seek=0 count=10 oflag=direct 2>/dev/null
	dd if=/dev/urandom of=/dev/mapper/dmc-t bs=4096 seek=100 count=2 oflag=direct 2>/dev/null
	dd if=/dev/urandom of=/dev/mapper/dmc-t bs=4096 seek=1023 count=1 oflag=direct 2>/dev/null
	dd if=/dev/mapper/dmc-t of=/tmp/dmc-clone-view.img bs=1M iflag=direct 2>/dev/null
	dmsetup remove dmc-t
	dd if="$DMC_META" of="/tmp/dmc-meta-$mod.img" bs=1M 2>/dev/null
}
for tm in dm_clone_rs dm_clone; do
	dm_test "$tm: a clone made by $tm (served by it), regions written" make_clone $tm
	dm_test "$tm: clone_check finds the metadata it wrote clean" clone_check -q "$DMC_META"
	clone_check "$DMC_META" | sed 's/^/# /'
	clone_dump "$DMC_META" >/tmp/dmc-dump-$tm.xml
	dm_test "$tm: clone_dump lists exactly the regions written" cmp -s /tmp/dmc-dump-$tm.xml "$expect"
done
dm_test "both targets' metadata dump the same" cmp -s /tmp/dmc-dump-dm_clone_rs.xml /tmp/dmc-dump-dm_clone.xml

# Restore onto blank metadata; open it with each target: the same copied count, the
# same data (the destination still holds the written regions).
copied_after_restore() { # <module>
	dd if=/dev/zero of="$DMC_META" bs=1M count="$DMC_DEV_MB" oflag=direct 2>/dev/null
	clone_restore -i "$expect" -o "$DMC_META" || return 1
	use "$1" || return 1
	dmsetup create dmc-t --table "$table" || return 1
	dmc_serves "$1" || { dmsetup remove dmc-t; return 1; }
	n=$(dmc_copied dmc-t)
	dd if=/dev/mapper/dmc-t of=/tmp/dmc-restored-view.img bs=1M iflag=direct 2>/dev/null
	dmsetup remove dmc-t
	echo "# $1 opened restored metadata: $n regions copied"
	[ "$n" = 13 ] && cmp -s /tmp/dmc-restored-view.img /tmp/dmc-clone-view.img
}
for tm in dm_clone_rs dm_clone; do
	dm_test "$tm opens clone_restore's metadata with the dumped regions copied, reading as before" \
		copied_after_restore $tm
done
restored_dump_equal() {
	clone_dump "$DMC_META" >/tmp/dmc-dump-restored.xml && cmp -s /tmp/dmc-dump-restored.xml "$expect"
}
dm_test "restored metadata, used by a target, dumps the same" restored_dump_equal

# Damage: a bit of the array block flipped (checksum now wrong).
damaged() {
	dd if=/tmp/dmc-meta-dm_clone_rs.img of="$DMC_META" bs=1M oflag=direct 2>/dev/null
	# Which block is the array block depends on the target's allocation: flip each of
	# the first used blocks until clone_check names a bad array block checksum.
	for blk in 1 2 3 4 5 6 7 8 9 10; do
		dd if=/tmp/dmc-meta-dm_clone_rs.img of="$DMC_META" bs=1M oflag=direct 2>/dev/null
		printf '\377' | dd of="$DMC_META" bs=1 seek=$((blk * 4096 + 100)) conv=notrunc 2>/dev/null
		out=$(clone_check "$DMC_META" 2>&1)
		if echo "$out" | grep -q "block $blk: bitset array block: bad checksum"; then
			echo "# flipped a byte of block $blk: $(echo "$out" | head -n 1)"
			clone_check -q "$DMC_META"
			[ $? = 1 ] || return 1
			use dm_clone_rs || return 1
			if dmsetup create dmc-t --table "$table" 2>/dev/null; then
				dmsetup remove dmc-t
				echo "# the kernel opened it"
				return 1
			fi
			return 0
		fi
	done
	echo "# no block gave an array block checksum error"
	return 1
}
dm_test "a damaged array block: clone_check exits 1 naming it, the kernel refuses it" damaged

# Live metadata: while a table holds the metadata device (running, then
# suspended), every tool refuses it (exit 2, "is in use": it opens block devices
# exclusively) and writes nothing to it; once the clone is removed they work.
# refused <label> <command...>
refused() {
	label=$1
	shift
	out=$("$@" 2>&1 </dev/null)
	st=$?
	[ $st = 2 ] && echo "$out" | grep -q "is in use" ||
		{ echo "# $label: $* exited $st: $(echo "$out" | head -n 2)"; return 1; }
}
live() { # <module>
	use "$1" || return 1
	dd if=/dev/zero of="$DMC_META" bs=4096 count=1 oflag=direct 2>/dev/null
	dmsetup create dmc-t --table "$table" || return 1
	dmc_serves "$1" || { dmsetup remove dmc-t; return 1; }
	# (Nothing written to the clone: it has nothing to commit, so the metadata
	# changes only if a tool writes it.)
	dd if="$DMC_META" of=/tmp/dmc-live-before.img bs=1M iflag=direct 2>/dev/null
	rc=0
	for state in running suspended; do
		if [ $state = suspended ]; then dmsetup suspend dmc-t || rc=1; fi
		refused "$state" clone_check "$DMC_META" || rc=1
		refused "$state" clone_dump "$DMC_META" || rc=1
		refused "$state" clone_restore -i "$expect" -o "$DMC_META" || rc=1
		refused "$state" clone_repair -i "$DMC_META" -o /tmp/dmc-live-repair.img || rc=1
		refused "$state" clone_repair -i "/tmp/dmc-meta-$1.img" -o "$DMC_META" || rc=1
	done
	dd if="$DMC_META" of=/tmp/dmc-live-after.img bs=1M iflag=direct 2>/dev/null
	cmp -s /tmp/dmc-live-before.img /tmp/dmc-live-after.img ||
		{ echo "# the metadata changed while the tools were refused"; rc=1; }
	dmsetup resume dmc-t && dmsetup remove dmc-t || rc=1
	clone_check -q "$DMC_META" || { echo "# clone_check after the remove: $?"; rc=1; }
	return $rc
}
for tm in dm_clone_rs dm_clone; do
	dm_test "$tm: the tools refuse metadata a table holds, running or suspended, and work after the remove" \
		live $tm
done
dd if=/dev/zero of="$DMC_META" bs=4096 count=1 oflag=direct 2>/dev/null
dm_test "clone_check exits 1 on never-formatted metadata" sh -c "clone_check -q $DMC_META; [ \$? = 1 ]"
dm_test "clone_metadata_size: 4504 KiB for 1 TiB in 1 MiB regions (metadata_size.sh's device)" \
	[ "$(clone_metadata_size --device-size 1t --region-size 1m -n)" = 9008 ]
dmc_unload_targets
ktap_finished

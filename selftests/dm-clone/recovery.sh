#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The user guide's recovery paths, end to end on real devices, each checked
# against the data (issue 24):
#   - a metadata device too small to grow on: clone_dump, clone_metadata_size,
#     clone_restore onto a device of the suggested size, then the clone loaded
#     there with the new length (ours grows it): the regions written before
#     read back, the rest reads as the source, and the copy finishes with the
#     destination equal to what the clone showed;
#   - a damaged bitset array block (clone_repair's first example): refused
#     without --unknown (exit 1, the regions named), then repaired with
#     --unknown copied and with --unknown uncopied; clone_check finds each
#     result clean; loaded by each target, every region reads as the answer
#     says (the destination's bytes, or the source's);
#   - a damaged superblock (its second example): refused without the sizes,
#     repaired with the table's sizes and --unknown uncopied (0 copied); each
#     target loads it and copies the whole source.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=8
for t in clone_check clone_dump clone_restore clone_repair clone_metadata_size; do
	command -v $t >/dev/null || ktap_exit_fail_msg "$t is not in the guest"
done
dmc_require_both
# ram0 metadata, ram1 destination, ram2 source, ram3 the new metadata device.
dm_brd_setup dmc- 4 "$DMC_DEV_MB"
trap 'dm_brd_cleanup; dmc_unload_targets' EXIT
NEW=/dev/ram3
ktap_set_plan 13
dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")   # 2048 regions of 4 KiB
half=$((len / 2))

# The written regions' data: regions 0-9, 500 and 1023 of the first half.
dd if=/dev/urandom of=/tmp/dmc-rec-w.img bs=4096 count=12 2>/dev/null
write_regions() { # <device> [<dd flag: oflag=direct for a device>]
	dd if=/tmp/dmc-rec-w.img of="$1" bs=4096 count=10 conv=notrunc $2 2>/dev/null &&
		dd if=/tmp/dmc-rec-w.img of="$1" bs=4096 skip=10 seek=500 count=1 conv=notrunc $2 2>/dev/null &&
		dd if=/tmp/dmc-rec-w.img of="$1" bs=4096 skip=11 seek=1023 count=1 conv=notrunc $2 2>/dev/null
}
# /tmp/dmc-rec-view.img: the source with those regions written (what the clone shows).
cp /tmp/dmc-src.img /tmp/dmc-rec-view.img
write_regions /tmp/dmc-rec-view.img || ktap_exit_fail_msg "cannot write the expected view"
cmp -s /tmp/dmc-src.img /tmp/dmc-rec-view.img && ktap_exit_fail_msg "the expected view is the source"

# A small metadata device (128 KiB) holding a clone of the source's first half
# with the regions written, the copy off.
small() {
	dmc_use_target dm_clone_rs || return 1
	dd if=/dev/zero of=$DMC_META bs=1M count=1 oflag=direct 2>/dev/null
	dd if=/dev/zero of=$DMC_DEST bs=1M oflag=direct 2>/dev/null
	dmsetup create dmc-m --table "0 256 linear $DMC_META 0" &&
		dmsetup create dmc-t --table "0 $half clone /dev/mapper/dmc-m $DMC_DEST $DMC_SRC 8 1 no_hydration" ||
		return 1
	dmc_serves dm_clone_rs || return 1
	write_regions /dev/mapper/dmc-t oflag=direct || return 1
	[ "$(dmc_copied dmc-t)" = 12 ] || { echo "# copied: $(dmc_copied dmc-t), expected 12"; return 1; }
	dmsetup remove dmc-t
}
dm_test "a clone on 128 KiB of metadata, 12 regions written" small

# The guide: dump, the suggested size for the new length, restore there.
move() {
	clone_dump /dev/mapper/dmc-m -o /tmp/dmc-rec.xml || return 1
	dmsetup remove dmc-m
	size=$(clone_metadata_size --device-size "$len" --region-size 4k -n) || return 1
	echo "# clone_metadata_size: $size sectors for $len sectors in 4 KiB regions"
	dd if=/dev/zero of=$NEW bs=1M count=1 oflag=direct 2>/dev/null
	[ "$size" -le "$(dm_sectors $NEW)" ] || { echo "# $size sectors do not fit on $NEW"; return 1; }
	dmsetup create dmc-mbig --table "0 $size linear $NEW 0" &&
		clone_restore -i /tmp/dmc-rec.xml -o /dev/mapper/dmc-mbig &&
		clone_check -q /dev/mapper/dmc-mbig
}
dm_test "clone_dump, clone_metadata_size, clone_restore onto a device of that size" move

# Loaded there at the whole source's length: grown; the view, then the copy.
grown() {
	dmsetup create dmc-t --table "0 $len clone /dev/mapper/dmc-mbig $DMC_DEST $DMC_SRC 8 1 no_hydration" ||
		return 1
	dmc_serves dm_clone_rs || return 1
	set -- "$(dmc_status_field dmc-t 4)"
	[ "$1" = "12/2048" ] || { echo "# copied/regions: $1, expected 12/2048"; return 1; }
	dm_cmp_direct /dev/mapper/dmc-t /tmp/dmc-rec-view.img ||
		{ echo "# the grown clone reads wrong"; dm_remove_all dmc-; return 1; }
	dmsetup message dmc-t 0 enable_hydration && dmc_wait_copied dmc-t 120 || return 1
	dmsetup remove dmc-t && dmsetup remove dmc-mbig || return 1
	dm_cmp_direct $DMC_DEST /tmp/dmc-rec-view.img || { echo "# the destination differs"; return 1; }
}
dm_test "loaded there with the new length: the written regions and the source, then copied" grown

# A clone of the whole source, the regions written, its metadata's bitset array
# block damaged (the block clone_check names as such).
damaged_array() {
	dm_remove_all dmc-
	dmc_use_target dm_clone_rs || return 1
	dd if=/dev/zero of=$DMC_META bs=1M count=1 oflag=direct 2>/dev/null
	dd if=/dev/zero of=$DMC_DEST bs=1M oflag=direct 2>/dev/null
	dmsetup create dmc-t --table "0 $len clone $DMC_META $DMC_DEST $DMC_SRC 8 1 no_hydration" ||
		return 1
	write_regions /dev/mapper/dmc-t oflag=direct || return 1
	dmsetup remove dmc-t || return 1
	dd if=$DMC_META of=/tmp/dmc-rec-meta.img bs=1M count=1 2>/dev/null
	for blk in 1 2 3 4 5 6 7 8 9 10; do
		dd if=/tmp/dmc-rec-meta.img of=$DMC_META bs=1M oflag=direct 2>/dev/null
		printf '\377' | dd of=$DMC_META bs=1 seek=$((blk * 4096 + 100)) conv=notrunc 2>/dev/null
		if clone_check $DMC_META 2>&1 | grep -q "block $blk: bitset array block: bad checksum"; then
			echo "# the array block is block $blk"
			return 0
		fi
	done
	echo "# no block is named the bitset's array block"
	return 1
}
dm_test "a clone's bitset array block damaged (clone_check names it)" damaged_array
refused_unknown() {
	out=$(clone_repair -i $DMC_META -o $NEW 2>&1)
	st=$?
	echo "$out" | sed 's/^/# /'
	[ $st = 1 ] && echo "$out" | grep -q "the state of 2048 regions cannot be read (0-2047)" &&
		echo "$out" | grep -q "Choose with --unknown copied or --unknown uncopied"
}
dm_test "clone_repair refuses without --unknown, naming the regions (exit 1)" refused_unknown

# repaired <answer> <expected view>: repair onto the new device with --unknown
# <answer>; clean; each target loads it and reads the view.
repaired() {
	dm_remove_all dmc-
	dd if=/dev/zero of=$NEW bs=1M count=1 oflag=direct 2>/dev/null
	clone_repair -i $DMC_META -o $NEW --unknown "$1" >/dev/null 2>&1 || return 1
	clone_check -q $NEW || { echo "# the repaired metadata does not check clean"; return 1; }
	for m in dm_clone_rs dm_clone; do
		dmc_use_target $m || return 1
		dmsetup create dmc-t --table "0 $len clone $NEW $DMC_DEST $DMC_SRC 8 1 no_hydration" ||
			return 1
		dmc_serves $m || { dmsetup remove dmc-t; return 1; }
		dm_cmp_direct /dev/mapper/dmc-t "$2" || { echo "# $m: reads wrong"; dmsetup remove dmc-t; return 1; }
		dmsetup remove dmc-t || return 1
	done
}
# The destination as the damaged clone left it (the written regions, zeros
# elsewhere), and the source: what each answer must read as.
dd if=$DMC_DEST of=/tmp/dmc-rec-dest.img bs=1M iflag=direct 2>/dev/null
dm_test "--unknown copied: clean, both targets read the destination's bytes" \
	repaired copied /tmp/dmc-rec-dest.img
dm_test "--unknown uncopied: clean, both targets read the source's bytes" \
	repaired uncopied /tmp/dmc-src.img
# kept: the first 10 regions of the destination as the damaged clone left it
# are the written ones (so --unknown copied kept the writes).
kept() {
	dd if=/tmp/dmc-rec-dest.img of=/tmp/dmc-rec-a bs=4096 count=10 2>/dev/null &&
		dd if=/tmp/dmc-rec-view.img of=/tmp/dmc-rec-b bs=4096 count=10 2>/dev/null &&
		cmp -s /tmp/dmc-rec-a /tmp/dmc-rec-b
}
dm_test "--unknown copied kept the written regions (the destination holds them)" kept

# A damaged superblock: refused without the sizes, repaired with the table's.
sb() {
	dm_remove_all dmc-
	dd if=/tmp/dmc-rec-meta.img of=$DMC_META bs=1M oflag=direct 2>/dev/null
	printf '\377' | dd of=$DMC_META bs=1 seek=100 conv=notrunc 2>/dev/null
	clone_check $DMC_META 2>&1 | grep -q "block 0: superblock: bad checksum"
}
dm_test "a damaged superblock (clone_check names it)" sb
needs_sizes() {
	out=$(clone_repair -i $DMC_META -o $NEW --unknown uncopied 2>&1)
	st=$?
	echo "$out" | sed 's/^/# /'
	[ $st = 1 ] && echo "$out" | grep -q "give --region-size and --target-size"
}
dm_test "clone_repair refuses without the sizes (exit 1), saying which to give" needs_sizes
with_sizes() {
	dd if=/dev/zero of=$NEW bs=1M count=1 oflag=direct 2>/dev/null
	out=$(clone_repair -i $DMC_META -o $NEW --region-size 8 --target-size "$len" --unknown uncopied 2>&1) ||
		return 1
	echo "$out" | sed 's/^/# /'
	echo "$out" | grep -q "2048 regions, 0 copied" && clone_check -q $NEW
}
dm_test "with the table's sizes and --unknown uncopied: 2048 regions, 0 copied, clean" with_sizes
# copied_whole <module>: the repaired metadata loaded, the copy run to the end:
# the destination equals the source.
copied_whole() {
	dm_remove_all dmc-
	dd if=/dev/zero of=$DMC_DEST bs=1M oflag=direct 2>/dev/null
	dd if=$NEW of=/tmp/dmc-rec-new.img bs=1M count=1 2>/dev/null
	dmc_use_target "$1" || return 1
	dmsetup create dmc-t --table "0 $len clone $NEW $DMC_DEST $DMC_SRC 8" || return 1
	dmc_serves "$1" && dmc_wait_copied dmc-t 120 || { dmsetup remove dmc-t; return 1; }
	dmsetup remove dmc-t || return 1
	dd if=/tmp/dmc-rec-new.img of=$NEW bs=1M oflag=direct 2>/dev/null
	dm_cmp_direct $DMC_DEST /tmp/dmc-src.img
}
dm_test "ours loads it and copies the whole source" copied_whole dm_clone_rs
dm_test "C loads it and copies the whole source" copied_whole dm_clone
ktap_finished

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# More wrong tables (after bad_table.sh, which both targets pass): each refusal
# of the Rust target has its own text in the kernel log, and no device is left.
. "$(dirname "$0")/lib.sh"

ktap_print_header
[ "$(dmc_target_module)" = dm_clone_rs ] || { ktap_skip_all "tests the Rust module"; exit "$KSFT_SKIP"; }
dmc_setup
ktap_set_plan 14

len=$(dm_sectors "$DMC_SRC")
m=$DMC_META d=$DMC_DEST s=$DMC_SRC
refused() { dm_refused "$1" "clone: $2" dmc-bad "$3"; }

refused "nonexistent metadata device" "Error opening metadata device" "0 $len clone /dev/nonexistent $d $s 8"
refused "nonexistent destination device" "Error opening destination device" "0 $len clone $m /dev/nonexistent $s 8"
dmsetup create dmc-zsmall --table "0 $((len - 8)) linear $d 0"
refused "target longer than the destination" "Device size larger than destination device" \
	"0 $len clone $m /dev/mapper/dmc-zsmall $s 8"
refused "too many feature arguments" "Invalid number of feature arguments" \
	"0 $len clone $m $d $s 8 3 no_background_copy no_discard_passdown no_hydration"
refused "unknown core argument" "Invalid core argument" "0 $len clone $m $d $s 8 0 2 copy_speed 4"
refused "bad copy_threshold value" "Invalid value for argument \`copy_threshold'" \
	"0 $len clone $m $d $s 8 0 2 copy_threshold -1"
refused "bad copy_batch_size value" "Invalid value for argument \`copy_batch_size'" \
	"0 $len clone $m $d $s 8 0 2 copy_batch_size 4k"
refused "an argument too many" "Too many arguments" "0 $len clone $m $d $s 8 0 0 extra"

# A metadata device of 16 KiB: smaller than the fixed blocks.
dmsetup create dmc-ztiny --table "0 32 linear $m 0"
refused "metadata device too small" "Metadata device too small" \
	"0 $len clone /dev/mapper/dmc-ztiny $d $s 8"
# 1 TiB (of an error device: only its size matters) in 4 KiB regions (2^28) needs ~32 MiB of metadata, not 64 KiB.
big=$((1 << 31))
dmsetup create dmc-zzero --table "0 $big error"
dmsetup create dmc-zmeta64k --table "0 128 linear $m 0"
refused "metadata too small for the regions" "Metadata device too small for this many regions" \
	"0 $big clone /dev/mapper/dmc-zmeta64k /dev/mapper/dmc-zzero /dev/mapper/dmc-zzero 8"
# 8 TiB + 4 KiB in 4 KiB regions: more than 2^31 regions.
huge=$(((1 << 34) + 8))
dmsetup create dmc-zhuge --table "0 $huge error"
refused "more than 2^31 regions" "Too many regions. Consider increasing the region size" \
	"0 $huge clone $m /dev/mapper/dmc-zhuge /dev/mapper/dmc-zhuge 8"

# Metadata of another clone (other region size), then metadata that is not a clone's.
dmsetup create dmc-ok --table "0 $len clone $m $d $s 8 1 no_background_copy" && dmsetup remove dmc-ok
refused "metadata with another region size" "Region and/or target size don't match the ones in metadata" \
	"0 $len clone $m $d $s 16"
# A shorter table is refused (a longer one grows the clone: grow.sh).
refused "metadata with a larger target size" "Target size smaller than the one in metadata: a clone cannot shrink" \
	"0 $((len - 8)) clone $m $d $s 8"
dd if=/dev/urandom of="$m" bs=4096 count=1 oflag=direct 2>/dev/null
refused "metadata that is not a clone's" "Metadata superblock is not a clone's or is damaged" \
	"0 $len clone $m $d $s 8"
ktap_finished

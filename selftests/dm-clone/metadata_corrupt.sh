#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Corrupted metadata. Real metadata is made by each target (a copy stopped
# part way: 4096 regions of 4 KiB, some copied), then damaged in one way per
# image: every superblock field, the checksums, block numbers, the space map's
# index and bitmap blocks, the bitset's btree and array blocks, random bit
# flips, truncation. A damaged field is given a valid checksum (dmc-meta-csum
# --seal) so that the field's own check is what is tested. Each image is loaded
# by our target with the copy off, and must be refused with an error in the
# kernel log, or load and read back every byte as the source (the destination
# holds the source's bytes only in regions really copied, zeros elsewhere: a
# region wrongly marked copied reads zeros) with a copied count no higher than
# the undamaged one; if it then takes a write (mode rw), the write and the rest
# read back after a remove and reload. Never an oops or a hang. The C target loads the same
# images; what it does is reported beside ours.
# Quick form: the damages on our metadata and one in three on C's (on the
# debug kernel, 4 times slower: one in three on ours and one in four on C's,
# and C loads only images of its own metadata); DMC_LONG=1: every damage on
# both, both loaders.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_require_both dm_delay
command -v dmc-meta-csum >/dev/null || ktap_exit_fail_msg "dmc-meta-csum is not in the guest"
dm_brd_setup dmc- 3 "$DMC_DEV_MB"
trap "dm_brd_cleanup; dmc_unload_targets" EXIT
LEN=32768 IMG_BLOCKS=256
ktap_set_plan 12

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
# The write a loaded image takes (the last region), and the source with it.
dd if=/dev/urandom of=/tmp/dmc-w.bin bs=4096 count=1 2>/dev/null
cp /tmp/dmc-src.img /tmp/dmc-src-w.img
dmc_put /tmp/dmc-w.bin 4096 1 0 /tmp/dmc-src-w.img 4095
dmsetup create dmc-zslow --table "0 $LEN delay $DMC_SRC 0 1" || ktap_exit_fail_msg "no delay"

use_module() { dmc_use_target "$1"; }

# make_meta <module> <copy args>: metadata with part of the copy done, in
# /tmp/dmc-meta-<module>.img (its first 256 blocks) with the destination in
# /tmp/dmc-dest-<module>.img; the copied count in /tmp/dmc-n0-<module>.
make_meta() {
	use_module "$1" || return 1
	dd if=/dev/zero of=$DMC_META bs=1M count=16 oflag=direct 2>/dev/null
	dd if=/dev/zero of=$DMC_DEST bs=1M count=16 oflag=direct 2>/dev/null
	dmsetup create dmc-m --table "0 $LEN clone $DMC_META $DMC_DEST /dev/mapper/dmc-zslow 8 $2" ||
		return 1
	dmc_serves "$1" || { dmsetup remove dmc-m; return 1; }
	dmc_wait_for 120 "[ \"\$(dmc_copied dmc-m)\" -ge 1200 ]" || { echo "# $1: copy too slow"; return 1; }
	dmsetup message dmc-m 0 disable_hydration
	dmc_wait_for 10 "[ \"\$(dmc_status_field dmc-m 5)\" = 0 ]"
	dmc_copied dmc-m >/tmp/dmc-n0-"$1"
	dmsetup remove dmc-m || return 1
	dd if=$DMC_META of=/tmp/dmc-meta-"$1".img bs=4096 count=$IMG_BLOCKS iflag=direct 2>/dev/null
	dd if=$DMC_DEST of=/tmp/dmc-dest-"$1".img bs=1M iflag=direct 2>/dev/null
	layout /tmp/dmc-meta-"$1".img
	echo "# $1: $(cat /tmp/dmc-n0-"$1") of 4096 regions copied; $ALLOC metadata blocks in use:" \
		"superblock 0, bitset leaf $B, array block $A, space map index $I, bitmap $M"
	# Every block the damages aim at is in the image.
	[ "$(cat /tmp/dmc-n0-"$1")" -lt 4096 ] && [ "$B" -lt $IMG_BLOCKS ] && [ "$A" -lt $IMG_BLOCKS ] &&
		[ "$I" -lt $IMG_BLOCKS ] && [ "$M" -lt $IMG_BLOCKS ] && [ "$A" != 0 ] && [ "$M" != 0 ]
}

# --- damaging an image: /tmp/dmc-bad.img ---

# poke <byte offset> <value> <bytes>: store a little-endian number.
poke() {
	v=$2 s=""
	i=0
	while [ $i -lt "$3" ]; do
		s="$s\\$(printf %o $((v & 255)))"
		v=$((v >> 8))
		i=$((i + 1))
	done
	printf "$s" | dd of=/tmp/dmc-bad.img bs=1 seek="$1" conv=notrunc 2>/dev/null
}
# flip <byte offset>: invert one bit of a byte.
flip() {
	b=$(dmc_le /tmp/dmc-bad.img "$1" 1)
	poke "$1" $((b ^ ${2:-16})) 1
}
seal() { dmc-meta-csum /tmp/dmc-bad.img "$1" "$2" --seal; }
# field <block> <kind> <offset in block> <value> <bytes>: a damaged field, sealed.
field() { poke $(($1 * 4096 + $3)) "$4" "$5" && seal "$1" "$2"; }

# The layout of an image: the superblock's roots, the bitset's leaf and array
# block, the space map's index and first bitmap block.
layout() {
	B=$(dmc_le "$1" 188 8)                   # bitset root: a btree leaf
	MAXE=$(dmc_le "$1" $((B * 4096 + 20)) 4)
	A=$(dmc_le "$1" $((B * 4096 + 32 + MAXE * 8)) 8) # its first value: the array block
	I=$(dmc_le "$1" 60 8)                    # space map index block
	M=$(dmc_le "$1" $((I * 4096 + 16)) 8)    # its first bitmap block
	NB=$(dmc_le "$1" 44 8) ALLOC=$(dmc_le "$1" 52 8)
}

# The last of the blocks the layout names.
max_block() {
	m=0
	for b in "$B" "$A" "$I" "$M"; do [ "$b" -gt $m ] && m=$b; done
	echo $m
}

# damage <n>: make damaged image n from /tmp/dmc-good.img; its description in
# $WHAT; the metadata device's length in blocks in $TRUNC (0: whole).
NDAMAGE=64
damage() {
	cp /tmp/dmc-good.img /tmp/dmc-bad.img
	TRUNC=0
	case $1 in
	1) WHAT="superblock: checksum"; flip 1 ;;
	2) WHAT="superblock: a byte past the fields (unsealed)"; flip 300 ;;
	3) WHAT="superblock: magic 0"; field 0 superblock 32 0 8 ;;
	4) WHAT="superblock: magic + 1"; field 0 superblock 32 $((0x8af27f65)) 8 ;;
	5) WHAT="superblock: version 0"; field 0 superblock 40 0 4 ;;
	6) WHAT="superblock: version 2"; field 0 superblock 40 2 4 ;;
	7) WHAT="superblock: version 2^32-1"; field 0 superblock 40 4294967295 4 ;;
	8) WHAT="superblock: blocknr 1"; field 0 superblock 8 1 8 ;;
	9) WHAT="superblock: flags 1"; field 0 superblock 4 1 4 ;;
	10) WHAT="superblock: uuid set"; field 0 superblock 16 12345 8 ;;
	11) WHAT="superblock: region size 16 (table says 8)"; field 0 superblock 172 16 8 ;;
	12) WHAT="superblock: region size 0"; field 0 superblock 172 0 8 ;;
	13) WHAT="superblock: target size + 8 sectors"; field 0 superblock 180 $((LEN + 8)) 8 ;;
	14) WHAT="superblock: target size 0"; field 0 superblock 180 0 8 ;;
	15) WHAT="superblock: bitset root 0 (the superblock)"; field 0 superblock 188 0 8 ;;
	16) WHAT="superblock: bitset root = space map index"; field 0 superblock 188 "$I" 8 ;;
	17) WHAT="superblock: bitset root past the device"; field 0 superblock 188 100000 8 ;;
	18) WHAT="superblock: bitset root = the array block"; field 0 superblock 188 "$A" 8 ;;
	19) WHAT="superblock: bitset root = a free block"; field 0 superblock 188 $((IMG_BLOCKS - 1)) 8 ;;
	20) WHAT="space map root: nr_blocks 0"; field 0 superblock 44 0 8 ;;
	21) WHAT="space map root: nr_blocks 2^40"; field 0 superblock 44 $((1 << 40)) 8 ;;
	22) WHAT="space map root: nr_allocated > nr_blocks"; field 0 superblock 52 $((NB + 1)) 8 ;;
	23) WHAT="space map root: index block 0"; field 0 superblock 60 0 8 ;;
	24) WHAT="space map root: index block past the device"; field 0 superblock 60 100000 8 ;;
	25) WHAT="space map root: ref count root past the device"; field 0 superblock 68 100000 8 ;;
	26) WHAT="space map root: all zero"
		for o in 44 52 60 68; do poke $o 0 8; done; seal 0 superblock ;;
	27) WHAT="bitset leaf: a value byte (unsealed)"; flip $((B * 4096 + 32 + MAXE * 8)) ;;
	28) WHAT="bitset leaf: nr_entries 0"; field "$B" btree 16 0 4 ;;
	29) WHAT="bitset leaf: nr_entries > max_entries"; field "$B" btree 16 $((MAXE + 1)) 4 ;;
	30) WHAT="bitset leaf: value_size 4"; field "$B" btree 24 4 4 ;;
	31) WHAT="bitset leaf: flags internal"; field "$B" btree 4 1 4 ;;
	32) WHAT="bitset leaf: blocknr wrong"; field "$B" btree 8 $((B + 1)) 8 ;;
	33) WHAT="bitset leaf: array block 0"; field "$B" btree $((32 + MAXE * 8)) 0 8 ;;
	34) WHAT="bitset leaf: array block past the device"; field "$B" btree $((32 + MAXE * 8)) 100000 8 ;;
	35) WHAT="bitset leaf: array block = the leaf itself"; field "$B" btree $((32 + MAXE * 8)) "$B" 8 ;;
	36) WHAT="bitset leaf: key 5"; field "$B" btree 32 5 8 ;;
	37) WHAT="array block: a bitset word (unsealed)"; flip $((A * 4096 + 24 + 40)) 1 ;;
	38) WHAT="array block: nr_entries 0"; field "$A" array 8 0 4 ;;
	39) WHAT="array block: nr_entries > max_entries"; field "$A" array 8 100000 4 ;;
	40) WHAT="array block: max_entries 1"; field "$A" array 4 1 4 ;;
	41) WHAT="array block: value_size 4"; field "$A" array 12 4 4 ;;
	42) WHAT="array block: blocknr wrong"; field "$A" array 16 $((A + 1)) 8 ;;
	43) WHAT="space map index: a byte (unsealed)"; flip $((I * 4096 + 40)) ;;
	44) WHAT="space map index: bitmap block 0"; field "$I" index 16 0 8 ;;
	45) WHAT="space map index: bitmap block past the device"; field "$I" index 16 100000 8 ;;
	46) WHAT="space map index: nr_free huge"; field "$I" index 24 4294967295 4 ;;
	47) WHAT="space map index: blocknr wrong"; field "$I" index 8 $((I + 1)) 8 ;;
	48) WHAT="space map bitmap: a byte (unsealed)"; flip $((M * 4096 + 16)) ;;
	49) WHAT="space map bitmap: every block free"
		dd if=/dev/zero of=/tmp/dmc-bad.img bs=1 seek=$((M * 4096 + 16)) count=4080 conv=notrunc 2>/dev/null
		seal "$M" bitmap ;;
	50) WHAT="space map bitmap: blocknr wrong"; field "$M" bitmap 8 $((M + 1)) 8 ;;
	51|52|53|54|55|56|57|58)
		set -- 0 "$B" "$A" "$I" "$M"
		shift $(($(od -An -N1 -tu1 /dev/urandom) % 5))
		blk=$1
		off=$(($(od -An -N2 -tu2 /dev/urandom) % 4096))
		WHAT="random bit flip: block $blk byte $off"; flip $((blk * 4096 + off)) 4 ;;
	59) WHAT="truncated to 1 block"; TRUNC=1 ;;
	60) WHAT="truncated before the bitset leaf"; TRUNC=$B ;;
	61) WHAT="truncated before the last block in use"; TRUNC=$(max_block) ;;
	62) WHAT="all zeros (as unformatted)"
		dd if=/dev/zero of=/tmp/dmc-bad.img bs=4096 count=$IMG_BLOCKS 2>/dev/null ;;
	63) WHAT="all ones"; tr '\000' '\377' </dev/zero | dd of=/tmp/dmc-bad.img bs=4096 \
		count=$IMG_BLOCKS iflag=fullblock 2>/dev/null ;;
	64) WHAT="the superblock only (the rest zeros)"
		dd if=/dev/zero of=/tmp/dmc-bad.img bs=4096 seek=1 count=$((IMG_BLOCKS - 1)) conv=notrunc 2>/dev/null ;;
	esac
}

# metadata_refusal <mark>: the first line of the kernel log since the mark that
# says why metadata was refused. Device-mapper core prints a line on any refused
# table ("table: <dev>: clone: <ti->error> (<errno>)", "preresume failed", "error
# adding target to table"): only a ti->error or a persistent-data report that
# names the metadata or one of its structures counts; a refusal for any other
# reason (a bad argument, a missing device) does not.
metadata_refusal() {
	dm_dmesg_since "$1" | grep -v -e 'dm-mark' -e 'preresume failed' \
		-e 'error adding target to table' |
		grep -m1 -i -E 'metadata|superblock|space map|bitset|btree|array|checksum|block manager|validator|bitmap' |
		sed 's/^\[[ 0-9.]*\] //'
}

# trial <loading module> <n0>: load /tmp/dmc-bad.img with the module (which must
# be the one clone module loaded); "refused: why", "loaded ...", or "WRONG: why"
# on stdout.
trial() {
	dmc_use_target "$1" >/dev/null || { echo "WRONG: cannot make $1 the clone module"; return; }
	dd if=/tmp/dmc-bad.img of=$DMC_META bs=4096 oflag=direct conv=notrunc 2>/dev/null
	meta=$DMC_META
	if [ "$TRUNC" != 0 ]; then
		dmsetup create dmc-t --table "0 $((TRUNC * 8)) linear $DMC_META 0" || { echo "WRONG: no dm-linear"; return; }
		meta=/dev/mapper/dmc-t
	fi
	dm_dmesg_mark "$1-$MAKER-$n"
	if ! timeout 60 dmsetup create dmc-k --table "0 $LEN clone $meta $DMC_DEST $DMC_SRC 8 1 no_hydration" \
		2>/dev/null; then
		msg=$(metadata_refusal "$1-$MAKER-$n")
		dmsetup remove dmc-k 2>/dev/null
		[ -n "$TRUNC" ] && [ "$TRUNC" != 0 ] && dmsetup remove dmc-t
		if [ -n "$msg" ]; then
			echo "refused: $msg"
		else
			echo "WRONG: refused without a metadata error in the log:" \
				"$(dm_dmesg_since "$1-$MAKER-$n" | grep -v dm-mark | tail -n 1)"
		fi
		return
	fi
	if ! dmc_serves "$1" >/dev/null; then
		dmsetup remove dmc-k
		[ "$TRUNC" != 0 ] && dmsetup remove dmc-t
		echo "WRONG: loaded, but not by $1: $(grep '^dm_clone' /proc/modules | paste -sd' ')"
		return
	fi
	c=$(dmc_copied dmc-k)
	res=loaded
	if ! dmc_between "$c" 0 "$2" >/dev/null; then
		res="WRONG: copied count $c, undamaged $2"
	elif ! timeout 60 dd if=/dev/mapper/dmc-k bs=1M iflag=direct 2>/dev/null | cmp -s - /tmp/dmc-src.img; then
		res="WRONG: loads ($c copied) but does not read back as the source"
	elif [ "$(dmc_mode dmc-k)" != rw ]; then
		res="loaded ($c copied, reads as the source, mode $(dmc_mode dmc-k))"
	elif ! dd if=/tmp/dmc-w.bin of=/dev/mapper/dmc-k bs=4096 seek=4095 oflag=direct conv=fsync \
		2>/dev/null; then
		res="loaded ($c copied, reads as the source; a write fails: mode $(dmc_mode dmc-k))"
	else
		# It took a write: that write must survive a reload, the rest still be the source.
		res="loaded ($c copied, reads as the source, a write survives a reload)"
		timeout 60 dmsetup remove dmc-k || res="WRONG: remove hangs or fails"
		if ! timeout 60 dmsetup create dmc-k --table \
			"0 $LEN clone $meta $DMC_DEST $DMC_SRC 8 1 no_hydration" 2>/dev/null; then
			res="WRONG: took a write, then cannot be loaded again"
		elif ! timeout 60 dd if=/dev/mapper/dmc-k bs=1M iflag=direct 2>/dev/null |
			cmp -s - /tmp/dmc-src-w.img; then
			res="WRONG: took a write, and after a reload does not read back as source + write"
		fi
	fi
	timeout 60 dmsetup remove dmc-k 2>/dev/null || [ "${res#WRONG}" != "$res" ] ||
		res="WRONG: remove hangs or fails"
	[ "$TRUNC" != 0 ] && dmsetup remove dmc-t
	echo "$res"
}

# images <maker> <every k-th damage>: damage the maker's metadata, load with
# both modules; counts in /tmp/dmc-count-<maker>: "<images> <ours wrong> <C wrong>"
# (images: damages applied, i.e. images that differ from the undamaged one).
images() {
	MAKER=$1
	cp /tmp/dmc-meta-"$1".img /tmp/dmc-good.img
	dd if=/tmp/dmc-dest-"$1".img of=$DMC_DEST bs=1M oflag=direct 2>/dev/null
	n0=$(cat /tmp/dmc-n0-"$1")
	layout /tmp/dmc-good.img
	imgs=0 ours_bad=0 c_bad=0
	: >/tmp/dmc-wrong-"$1"
	n=1
	while [ $n -le $NDAMAGE ]; do
		if [ $((n % $2)) = 0 ] || [ "$2" = 1 ]; then
			damage $n
			if [ "$TRUNC" = 0 ] && cmp -s /tmp/dmc-bad.img /tmp/dmc-good.img; then
				# A damage that changed nothing tests nothing: it is not counted.
				echo "# [$1 #$n] $WHAT: not applied (the image is unchanged)"
				n=$((n + 1))
				continue
			fi
			r=$(trial dm_clone_rs "$n0")
			if [ "$n" -ge 27 ] && [ "$n" -le 42 ] && [ "${DMC_LONG:-0}" != 1 ]; then
				# On a damaged bitset btree or array block C at times leaks a
				# dm-bufio buffer when it refuses the image (a kernel WARNING,
				# which fails the run): the long form only.
				rc="not loaded (C may leak a buffer and WARN: the long form loads it)"
			elif [ "$1" = dm_clone ] || [ "${DMC_KERNEL:-fast}" != debug ] ||
				[ "${DMC_LONG:-0}" = 1 ]; then
				rc=$(trial dm_clone "$n0")
			else
				rc="not loaded (the debug kernel's quick form)"
			fi
			imgs=$((imgs + 1))
			case "$r" in WRONG*)
				ours_bad=$((ours_bad + 1))
				echo "#$n $WHAT: $r" >>/tmp/dmc-wrong-"$1" ;;
			esac
			case "$rc" in WRONG*) c_bad=$((c_bad + 1)) ;; esac
			echo "# [$1 #$n] $WHAT"
			echo "#     ours: $r"
			echo "#     C:    $rc"
		fi
		n=$((n + 1))
	done
	echo "$imgs $ours_bad $c_bad" >/tmp/dmc-count-"$1"
}

dm_test "our target makes metadata with part of the copy done" \
	make_meta dm_clone_rs "0 4 hydration_threshold 1 copy_rate_limit 2"
dm_test "the C target makes metadata with part of the copy done" \
	make_meta dm_clone "0 2 hydration_threshold 1"
# control <maker> <module>: the undamaged image loads with the module and reads
# as the source with the copied count it was made with (a target that refuses
# every image, or reads every image wrong, fails here).
control() {
	cp /tmp/dmc-meta-"$1".img /tmp/dmc-good.img && cp /tmp/dmc-good.img /tmp/dmc-bad.img || return 1
	dd if=/tmp/dmc-dest-"$1".img of=$DMC_DEST bs=1M oflag=direct 2>/dev/null
	TRUNC=0 MAKER=$1 n=0
	r=$(trial "$2" "$(cat /tmp/dmc-n0-"$1")")
	echo "# control, $1's metadata loaded by $2: $r"
	case "$r" in
	"loaded ($(cat /tmp/dmc-n0-"$1") copied, reads as the source, a write survives a reload)") ;;
	*) return 1 ;;
	esac
}
# metadata_classifier: a table refused for a reason other than its metadata (a
# destination that does not exist) is not taken as a metadata refusal.
metadata_classifier() {
	dmc_use_target dm_clone_rs || return 1
	dm_dmesg_mark classifier
	dmsetup create dmc-k --table "0 $LEN clone $DMC_META /dev/dmc-none $DMC_SRC 8" 2>/dev/null &&
		{ dmsetup remove dmc-k; echo "# a table without a destination loads"; return 1; }
	why=$(metadata_refusal classifier)
	[ -z "$why" ] || { echo "# taken as a metadata refusal: $why"; return 1; }
	dm_dmesg_since classifier | grep -q 'clone: Error opening destination device' ||
		{ echo "# the refusal's own line is missing"; return 1; }
}
dm_test "control: undamaged metadata of ours loads with ours, reads as the source" \
	control dm_clone_rs dm_clone_rs
dm_test "control: undamaged metadata of C's loads with ours, reads as the source" \
	control dm_clone dm_clone_rs
dm_test "control: undamaged metadata of ours loads with C, reads as the source" \
	control dm_clone_rs dm_clone
dm_test "control: a refusal that is not about metadata is not counted as one" metadata_classifier

every_ours=$(dmc_form 1 3 1) every_c=$(dmc_form 1 4 3)
images dm_clone_rs "$every_ours"
images dm_clone "$every_c"
set -- $(cat /tmp/dmc-count-dm_clone_rs) $(cat /tmp/dmc-count-dm_clone)
echo "# images: $1 from our metadata, $4 from C's; wrong: ours $2 + $5, C $3 + $6"
dm_test "damages made on our metadata (at least $((NDAMAGE / every_ours)))" \
	dmc_between "$1" $((NDAMAGE / every_ours)) $NDAMAGE
dm_test "damages made on C's metadata (at least $((NDAMAGE / every_c)))" \
	dmc_between "$4" $((NDAMAGE / every_c)) $NDAMAGE
# A wrong image is named in the test's line, so that a summary shows which.
wrong() { [ -s /tmp/dmc-wrong-"$1" ] && echo " (wrong: $(paste -sd';' /tmp/dmc-wrong-"$1"))"; }
dm_test "ours: every image from our metadata refused with an error or loads consistently$(wrong dm_clone_rs)" [ "$2" = 0 ]
dm_test "ours: every image from C's metadata refused with an error or loads consistently$(wrong dm_clone)" [ "$5" = 0 ]
least=$(dmc_form 100 35 50)
dm_test "at least $least images" dmc_between $(($1 + $4)) "$least" 1000
dmc_c_result "every image refused with an error or loads consistently ($(($3 + $6)) wrong)" \
	[ "$(($3 + $6))" = 0 ]
ktap_finished

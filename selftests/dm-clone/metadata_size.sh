#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The user guide's metadata sizing (dm-clone-rs.rst, "Metadata device size"),
# for a 1 TiB source in 1 MiB regions: 34 array and btree blocks at rest, and
# the suggested 4504 KiB holds the worst case (a transaction that changes every
# array block: a discard of the whole device); so does the guide's worst-case
# figure, 78 blocks; one block more than it uses at rest does not. The data
# devices are error targets: only their size matters here.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=8
dmc_setup
ktap_set_plan 7

big=$((1 << 31)) # 1 TiB in sectors
dmsetup create dmc-zdata --table "0 $big error" || ktap_exit_fail_msg "cannot make the data device"
# 4504 KiB of metadata: 9008 sectors.
dmsetup create dmc-zmeta --table "0 9008 linear $DMC_META 0" ||
	ktap_exit_fail_msg "cannot make the metadata device"
D=/dev/mapper/dmc-zdata
dm_test "1 TiB in 1 MiB regions on 4504 KiB of metadata" dmsetup create dmc-ms --table \
	"0 $big clone /dev/mapper/dmc-zmeta $D $D 2048 2 no_background_copy no_discard_passdown"
used=$(dmc_status_field dmc-ms 2)
used=${used%/*}
echo "# metadata blocks used at rest: $used"
# 34 array and btree blocks, plus the superblock and the space map's few blocks.
dm_test "blocks used at rest: 34 for the bitset plus at most 8 more" [ "$used" -ge 34 -a "$used" -le 42 ]
# With no_discard_passdown, discards only mark regions.
blkdiscard /dev/mapper/dmc-ms
dm_test "a discard of the whole device marks every region" \
	[ "$(dmc_copied dmc-ms)" = 1048576 ]
dm_test "its commit fits (status commits; metadata stays rw)" [ "$(dmc_mode dmc-ms)" = rw ]
dm_test "remove" dmsetup remove dmc-ms

# worst <blocks>: a fresh clone on <blocks> of metadata, everything discarded;
# prints the metadata mode after the commit.
worst() {
	dd if=/dev/zero of="$DMC_META" bs=4096 count=1 oflag=direct 2>/dev/null
	dmc_swap dmc-zmeta "0 $(($1 * 8)) linear $DMC_META 0" &&
		dmsetup create dmc-ms --table \
			"0 $big clone /dev/mapper/dmc-zmeta $D $D 2048 2 no_background_copy no_discard_passdown" &&
		blkdiscard /dev/mapper/dmc-ms && dmc_mode dmc-ms
	dmsetup remove dmc-ms >/dev/null 2>&1
}
# The guide's worst case for this size: 2 * 34 + 2 * 1 + 8 = 78 blocks.
m=$(worst 78)
dm_test "the guide's worst case, 78 blocks, holds the whole-device discard (mode $m)" [ "$m" = rw ]
# One block more than it uses at rest: the first change needs copies of at least
# an array block and its btree leaf. (A size between this and the worst case
# passes or fails depending on how many transactions the discard spans, which
# depends on the kernel's speed against the one-second commit period.)
m=$(worst 39)
dm_test "39 blocks do not: the commit fails and the clone goes read-only (mode $m)" [ "$m" = ro ]
ktap_finished

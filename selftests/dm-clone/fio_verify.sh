#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Concurrent writes on a clone that is mostly not copied: four fio jobs write
# random blocks of 512 B to 64 KiB (partial regions, which wait for kcopyd to
# copy their region, and whole ones, some spanning several) with crc32c
# verification, each in its own 2 MiB area, while the background copy is off.
# Every block verifies at once; regions are still left uncopied afterwards (so
# fio really ran on a clone in the middle of its copy); then the background copy
# finishes, and fio's data verifies again, on the destination alone, as does
# everything fio did not touch (the source's bytes).
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_setup
dm_require_modules dm_delay
command -v fio >/dev/null || { ktap_skip_all "no fio"; exit "$KSFT_SKIP"; }
ktap_set_plan 7

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
total=$((len / 16))
dmc_slow_source 2
dm_test "create, 8 KiB regions, background copy off" dmsetup create dmc-fv --table \
	"0 $len clone $DMC_META $DMC_DEST /dev/mapper/dmc-zslow 16 1 no_background_copy 4 copy_threshold 8 copy_batch_size 4"
C=/dev/mapper/dmc-fv

# Jobs at 1, 5, 9 and 13 MiB, 2 MiB each: the MiB before each area stays untouched.
# The same job, with --verify_only, checks the data it wrote without writing.
job="--name=w --direct=1 --ioengine=psync --rw=randwrite --bsrange=512-64k --size=2M
	--numjobs=4 --offset=1M --offset_increment=4M --verify=crc32c --verify_fatal=1
	--group_reporting"
# shellcheck disable=SC2086 # $job is a list of options
fio --filename=$C $job --do_verify=1 >/tmp/dmc-fio.txt 2>&1
r=$?
grep -E "err=|verify" /tmp/dmc-fio.txt | head -5 | sed 's/^/# /'
dm_test "fio: every block written verifies (crc32c)" [ $r = 0 ]
n=$(dmc_copied dmc-fv)
echo "# regions copied after fio: $n of $total"
dm_test "regions are still uncopied after fio (the writes ran mid-copy)" \
	dmc_between "$n" 1 $((total - 1))

# untouched <device>: the areas fio did not write equal the source's.
untouched() {
	for a in 0 3 4 7 8 11 12 15; do
		dmc_same "$1" 1048576 1 $a /tmp/dmc-src.img $a || { echo "# MiB $a differs"; return 1; }
	done
}
dm_test "areas fio did not write read as the source" untouched $C
dmsetup message dmc-fv 0 enable_background_copy
dm_test "the copy finishes" dmc_wait_copied dmc-fv 120
dmsetup remove dmc-fv
# shellcheck disable=SC2086
fio --filename="$DMC_DEST" $job --verify_only >/tmp/dmc-fio.txt 2>&1
r=$?
grep -E "err=|verify" /tmp/dmc-fio.txt | head -5 | sed 's/^/# /'
dm_test "after the copy, fio's blocks verify on the destination alone" [ $r = 0 ]
dm_test "and the areas fio did not write are the source's" untouched "$DMC_DEST"
ktap_finished

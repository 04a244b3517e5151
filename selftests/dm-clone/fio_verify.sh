#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Concurrent I/O while the background copy runs: four fio jobs write random
# blocks of 512 B to 64 KiB (partial and whole regions, some spanning several)
# with crc32c verification, each in its own 2 MiB area, while kcopyd copies
# regions underneath; then every block fio wrote must verify, and everything
# fio did not touch must equal the source, on the clone and on the destination.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_setup
dm_require_modules dm_delay
command -v fio >/dev/null || { ktap_skip_all "no fio"; exit "$KSFT_SKIP"; }
ktap_set_plan 5

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
dmc_slow_source 2
dm_test "create, 8 KiB regions, copy running (threshold 8, batch 4)" dmsetup create dmc-fv --table \
	"0 $len clone $DMC_META $DMC_DEST /dev/mapper/dmc-zslow 16 0 4 copy_threshold 8 copy_batch_size 4"
C=/dev/mapper/dmc-fv

# Jobs at 1, 5, 9 and 13 MiB, 2 MiB each: the MiB before each area stays untouched.
fio --name=w --filename=$C --direct=1 --ioengine=psync --rw=randwrite \
	--bsrange=512-64k --size=2M --numjobs=4 --offset=1M --offset_increment=4M \
	--verify=crc32c --verify_fatal=1 --do_verify=1 --group_reporting >/tmp/dmc-fio.txt 2>&1
r=$?
grep -E "err=|verify" /tmp/dmc-fio.txt | head -5 | sed 's/^/# /'
dm_test "fio: every block written verifies (crc32c)" [ $r = 0 ]

# untouched <device>: the areas fio did not write equal the source's.
untouched() {
	for a in 0 3 4 7 8 11 12 15; do
		dmc_same "$1" 1048576 1 $a /tmp/dmc-src.img $a || { echo "# MiB $a differs"; return 1; }
	done
}
dm_test "areas fio did not write read as the source" untouched $C
dm_test "the copy finishes" dmc_wait_copied dmc-fv 120
dmsetup remove dmc-fv
dm_test "on the destination too" untouched "$DMC_DEST"
ktap_finished

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# fio writes random blocks through rlinear with crc32c checksums and reads
# them back verified: no corruption under concurrent direct I/O.
. "$(dirname "$0")/lib.sh"

ktap_print_header
rl_setup
ktap_set_plan 2
command -v fio >/dev/null || { ktap_skip_all "fio is not installed"; exit "$KSFT_SKIP"; }

dm_test "create rlinear" dmsetup create rl-fio --table "0 $(( $(dm_sectors /dev/ram0) - 2048 )) rlinear /dev/ram0 2048"
fio --name=verify --filename=/dev/mapper/rl-fio --direct=1 --ioengine=libaio --iodepth=8 \
	--rw=randwrite --bsrange=4k-64k --size=12M --verify=crc32c --verify_fatal=1 \
	--do_verify=1 --numjobs=1 --output-format=terse >/tmp/rl-fio.txt 2>&1
rc=$?
[ $rc = 0 ] || sed 's/^/# /' /tmp/rl-fio.txt | tail -n 20
dm_test "fio randwrite + crc32c verify over rlinear" [ $rc = 0 ]
ktap_finished

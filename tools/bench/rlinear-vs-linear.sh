#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# 4 KiB random read and write IOPS through rlinear (Rust) and linear (C) over
# the same brd RAM disk, in one VM run: ROUNDS rounds, the order of the two
# targets alternating, SECONDS_PER_RUN s each (fio psync, direct, 1 job).
# Prints every run and the medians and ratio rlinear/linear per workload.
# Run it with: make vm-run SCRIPT=tools/bench/rlinear-vs-linear.sh
set -e
ROUNDS=${ROUNDS:-7}
SECS=${SECONDS_PER_RUN:-3}
export DM_DISABLE_UDEV=1
modprobe brd rd_nr=1 rd_size=262144 max_part=0
modprobe dm_rlinear
n=$(blockdev --getsz /dev/ram0)
dmsetup --noudevsync create b-lin --table "0 $n linear /dev/ram0 0"
dmsetup --noudevsync create b-rlin --table "0 $n rlinear /dev/ram0 0"
dd if=/dev/zero of=/dev/ram0 bs=1M oflag=direct 2>/dev/null || true

# iops <device> <randread|randwrite>
iops() {
	fio --name=b --filename="$1" --direct=1 --ioengine=psync --rw="$2" --bs=4k \
		--runtime="$SECS" --time_based --norandommap --minimal 2>/dev/null |
		awk -F';' -v rw="$2" '{ print (rw == "randread") ? $8 : $49 }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for rw in randread randwrite; do
	: >/tmp/lin.$rw
	: >/tmp/rlin.$rw
	r=1
	while [ $r -le "$ROUNDS" ]; do
		if [ $((r % 2)) = 1 ]; then order="lin rlin"; else order="rlin lin"; fi
		for t in $order; do
			v=$(iops /dev/mapper/b-$t $rw)
			echo "$v" >>/tmp/$t.$rw
			echo "round $r $rw $t: $v IOPS"
		done
		r=$((r + 1))
	done
done

echo
echo "workload   linear(median)  rlinear(median)  ratio"
for rw in randread randwrite; do
	l=$(median </tmp/lin.$rw)
	rl=$(median </tmp/rlin.$rw)
	echo "$rw $l $rl" | awk '{ printf "%-10s %14d %16d  %.3f\n", $1, $2, $3, $3 / $2 }'
done
dmsetup --noudevsync remove b-rlin
dmsetup --noudevsync remove b-lin

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The clone target in Rust (dm_clone_rs) against the C dm-clone, in one VM run,
# on the same brd RAM disks (256 MiB source), ROUNDS rounds with the order of the
# two modules alternating (only one can be loaded at a time):
#   copy 4k / copy 64k: seconds to copy the whole source in the background
#     (4 KiB regions, threshold 64, batch 16; 64 KiB regions, threshold 16, batch 4),
#   read/write copied: 4 KiB random read / write IOPS on a fully copied clone,
#   read source: 4 KiB random read IOPS on a clone with nothing copied (copy off),
#   write uncopied: 4 KiB random writes IOPS on a clone with nothing copied
#     (each write copies its 64 KiB region first; copy off).
# fio psync, direct, 1 job, SECONDS_PER_RUN s. Prints every run, then medians and
# the ratio Rust/C (for times, C/Rust: above 1 means Rust is faster). 15 rounds
# by default (about 10 minutes): a copy round spreads over 0.3 to 0.7 s for
# either target under TCG, and 5-round medians of the same code have put either
# one ahead by up to 10 %.
# Run it with: make vm-run SCRIPT=tools/bench/clone-vs-c.sh
set -e
ROUNDS=${ROUNDS:-15}
SECS=${SECONDS_PER_RUN:-3}
export DM_DISABLE_UDEV=1
modprobe brd rd_nr=3 rd_size=262144 max_part=0
n=$(blockdev --getsz /dev/ram2)
dd if=/dev/urandom of=/dev/ram2 bs=1M count=256 oflag=direct 2>/dev/null
ds() { dmsetup --noudevsync "$@"; }

use() {
	grep -q "^dm_clone_rs " /proc/modules && rmmod dm_clone_rs
	grep -q "^dm_clone " /proc/modules && rmmod dm_clone
	modprobe "$1"
}
# clone <region> <feature args and core args>: a new clone on blank metadata.
clone() {
	ds info b-clone >/dev/null 2>&1 && ds remove b-clone
	dd if=/dev/zero of=/dev/ram0 bs=4096 count=1 oflag=direct 2>/dev/null
	ds create b-clone --table "0 $n clone /dev/ram0 /dev/ram1 /dev/ram2 $1 $2"
}
copied() { ds status b-clone | awk '{ split($7, a, "/"); print (a[1] == a[2]) }'; }
# copy_time <region> <threshold> <batch>: seconds (to 10 ms) to copy everything.
copy_time() {
	clone "$1" "1 no_hydration 4 hydration_threshold $2 hydration_batch_size $3"
	t0=$(uptime_s)
	ds message b-clone 0 enable_hydration
	while [ "$(copied)" != 1 ]; do sleep 0.02; done
	t1=$(uptime_s)
	echo "$t0 $t1" | awk '{ printf "%.2f\n", $2 - $1 }'
}
# Seconds since boot, to 10 ms (busybox date has no %N).
uptime_s() { awk '{ print $1 }' /proc/uptime; }
iops() {
	fio --name=b --filename=/dev/mapper/b-clone --direct=1 --ioengine=psync --rw="$1" --bs=4k \
		--runtime="$SECS" --time_based --norandommap --minimal 2>/dev/null |
		awk -F';' -v rw="$1" '{ print (rw == "randread") ? $8 : $49 }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

run() { # run <module> <workload>
	case "$2" in
	copy4k) copy_time 8 64 16 ;;
	copy64k) copy_time 128 16 4 ;;
	readcopied) copy_time 128 64 16 >/dev/null && iops randread ;;
	writecopied) iops randwrite ;; # right after readcopied: still fully copied
	readsource) clone 128 "1 no_hydration" && iops randread ;;
	writeuncopied) clone 128 "1 no_hydration" && iops randwrite ;;
	esac
}

W="copy4k copy64k readcopied writecopied readsource writeuncopied"
for w in $W; do : >/tmp/C.$w; : >/tmp/Rust.$w; done
r=1
while [ $r -le "$ROUNDS" ]; do
	if [ $((r % 2)) = 1 ]; then order="C Rust"; else order="Rust C"; fi
	for impl in $order; do
		if [ $impl = C ]; then use dm_clone; else use dm_clone_rs; fi
		for w in $W; do
			v=$(run $impl $w)
			echo "$v" >>/tmp/$impl.$w
			echo "round $r $impl $w: $v"
		done
		ds remove b-clone
	done
	r=$((r + 1))
done

echo
echo "workload        C(median)  Rust(median)  Rust vs C"
for w in $W; do
	c=$(median </tmp/C.$w)
	rs=$(median </tmp/Rust.$w)
	case $w in
	copy*) echo "$w $c $rs" | awk '{ printf "%-14s %9.3fs %12.3fs  %.3f (C/Rust)\n", $1, $2, $3, $2 / $3 }' ;;
	*) echo "$w $c $rs" | awk '{ printf "%-14s %10d %13d  %.3f\n", $1, $2, $3, $3 / $2 }' ;;
	esac
done

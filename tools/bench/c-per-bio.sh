#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Where the C target's per-bio cost on copied regions goes: 4 KiB random read
# and write IOPS (fio psync, direct, 1 job) on a fully copied clone over brd, for
# the in-tree C module, its variants (tools/bench/c-variants.sh: v0 as is, v1
# without the ios_in_flight atomics, v2 returning copied-region bios remapped
# instead of submitting them from map, v3 both) and ours; ROUNDS rounds, the
# order rotating. Run with:
#   tools/bench/c-variants.sh &&
#   DMC_EXTRA_MODULES=~/.cache/dm-clone-rs/c-variants make vm-run SCRIPT=tools/bench/c-per-bio.sh
set -e
ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_PER_RUN:-3}
export DM_DISABLE_UDEV=1
modprobe brd rd_nr=3 rd_size=262144 max_part=0
n=$(blockdev --getsz /dev/ram2)
dd if=/dev/urandom of=/dev/ram2 bs=1M count=256 oflag=direct 2>/dev/null
ds() { dmsetup --noudevsync "$@"; }
IMPLS="dm_clone dm-clone-v0 dm-clone-v1 dm-clone-v2 dm-clone-v3 dm_clone_rs"
for m in $IMPLS; do
	modprobe "$m" || { echo "module $m missing: build it with tools/bench/c-variants.sh"; exit 2; }
	rmmod "$(echo "$m" | tr - _)"
done
use() {
	ds info b-clone >/dev/null 2>&1 && ds remove b-clone
	for u in $IMPLS; do
		u=$(echo "$u" | tr - _)
		grep -q "^$u " /proc/modules && rmmod "$u"
	done
	modprobe "$1"
}
copied() { ds status b-clone | awk '{ split($7, a, "/"); print (a[1] == a[2]) }'; }
full_clone() {
	dd if=/dev/zero of=/dev/ram0 bs=4096 count=1 oflag=direct 2>/dev/null
	ds create b-clone --table "0 $n clone /dev/ram0 /dev/ram1 /dev/ram2 128 0 4 hydration_threshold 64 hydration_batch_size 16"
	while [ "$(copied)" != 1 ]; do sleep 0.05; done
}
iops() {
	fio --name=b --filename=/dev/mapper/b-clone --direct=1 --ioengine=psync --rw="$1" --bs=4k \
		--runtime="$SECS" --time_based --norandommap --minimal 2>/dev/null |
		awk -F';' -v rw="$1" '{ print (rw == "randread") ? $8 : $49 }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for m in $IMPLS; do : >/tmp/r.$m; : >/tmp/w.$m; done
r=1
while [ $r -le "$ROUNDS" ]; do
	order=$(echo $IMPLS | awk -v r=$r '{ for (i = 0; i < NF; i++) printf "%s ", $((i + r) % NF + 1) }')
	for m in $order; do
		use "$m"
		full_clone
		v=$(iops randread); echo "$v" >>/tmp/r.$m
		w=$(iops randwrite); echo "$w" >>/tmp/w.$m
		echo "round $r $m: read $v write $w"
	done
	r=$((r + 1))
done
ds remove b-clone
cr=$(median </tmp/r.dm_clone)
cw=$(median </tmp/w.dm_clone)
printf '\n%-14s %10s %10s %8s %8s\n' module read write "read/C" "write/C"
for m in $IMPLS; do
	rr=$(median </tmp/r.$m)
	ww=$(median </tmp/w.$m)
	echo "$m $rr $ww $cr $cw" | awk '{ printf "%-14s %10d %10d %8.3f %8.3f\n", $1, $2, $3, $2 / $4, $3 / $5 }'
done

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The background copy against its limits and against the C dm-clone, in one VM
# run (TCG: compare ratios, not absolute numbers). Both targets run with their
# default table (no core arguments: C copies one region at a time, ours lets its
# copy controller decide), unless a row says otherwise.
#
#  1. Idle copy of a 32 MiB source behind dm-delay (DELAY_MS, default 10 ms per
#     I/O), 4 KiB and 64 KiB regions: seconds to copy everything, against fio
#     reading the same source (64 KiB, iodepth 32, direct): the source's limit.
#     Medians of ROUNDS (default 5) runs; C's 4 KiB copy (about 100 s) runs once.
#  2. The same on an undelayed 256 MiB brd source, against dd copying source to
#     destination (1 MiB, direct), fio reading the source, and kcopyd alone
#     (the kcopyd_test target: every 512 KiB job at once); medians of ROUNDS runs.
#  3. A 1 GiB source behind dm-delay, 64 KiB regions: the copy rate (regions/s)
#     idle, and under fio 4 KiB random reads (then writes) at 200 IOPS; the
#     workload's p99 latency with the copy running against the copy disabled.
#  4. The same clone under a saturating load (fio 4 KiB random reads, iodepth
#     16): user IOPS with the copy running against disabled; regions copied in
#     each 5 s.
#  5. copy_rate_limit 8 (MiB/s): the measured copy rate.
#  6. Part 1 over a remote source: the kernel's NBD client to nbdkit in the guest
#     (unix socket, DELAY_MS per read by its delay filter), against fio reading
#     /dev/nbd0; C's 4 KiB copy is not run.
#
# Run it with: make vm-run SCRIPT=tools/bench/copy-engine.sh VM_MEM=4G
# (the 1 GiB part needs the memory); about 7 minutes. LOAD_SECS (default 10:
# 2000 samples for each p99) sets the length of
# each measurement in parts 3 to 5 (short enough that the copy is not done).
# PARTS (default "1 2 3 5 6"; 4 runs with 3) selects parts. (vm-run passes no
# environment to the guest: prepend e.g. PARTS="1 2" to a copy of this script.)
set -u
DELAY_MS=${DELAY_MS:-10}
LOAD_SECS=${LOAD_SECS:-10}
PARTS=${PARTS:-1 2 3 5 6}
ROUNDS=${ROUNDS:-5}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# rounds <n> <command...>: the median of n runs of a command that prints a number.
rounds() {
	k=$1
	shift
	i=0
	while [ $i -lt "$k" ]; do "$@"; i=$((i + 1)); done | median
}
part() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
export DM_DISABLE_UDEV=1
ds() { dmsetup --noudevsync "$@"; }
modprobe dm_delay
uptime_s() { awk '{ print $1 }' /proc/uptime; }
use() {
	grep -q "^dm_clone_rs " /proc/modules && rmmod dm_clone_rs
	grep -q "^dm_clone " /proc/modules && rmmod dm_clone
	modprobe "$1"
}
module() { if [ "$1" = C ]; then echo dm_clone; else echo dm_clone_rs; fi; }
# disks <MiB>: /dev/ram0 (metadata, 64 MiB), ram1 (destination), ram2 (source,
# random bytes), each <MiB>.
disks() {
	ds remove_all >/dev/null 2>&1
	rmmod brd 2>/dev/null
	modprobe brd rd_nr=3 rd_size=$(($1 * 1024)) max_part=0
	dd if=/dev/urandom of=/dev/ram2 bs=1M count="$1" oflag=direct 2>/dev/null
	n=$(blockdev --getsz /dev/ram2)
}
slow() { # slow <ms>: b-src, the source behind dm-delay
	ds info b-src >/dev/null 2>&1 && ds remove b-src
	ds create b-src --table "0 $n delay /dev/ram2 0 $1"
}
# clone <source> <region> [features and core args]: a new clone on blank metadata.
clone() {
	ds info b-clone >/dev/null 2>&1 && ds remove b-clone
	dd if=/dev/zero of=/dev/ram0 bs=4096 count=1 oflag=direct 2>/dev/null
	src=$1 region=$2
	shift 2
	ds create b-clone --table "0 $n clone /dev/ram0 /dev/ram1 $src $region $*"
}
field() { ds status b-clone | awk '{ print $7 }'; }
copied() { f=$(field); echo "${f%/*}"; }
all_copied() { f=$(field); [ "${f%/*}" = "${f#*/}" ]; }
# copy_time <source> <region>: seconds to copy everything from enabling the copy,
# polled every 5 ms with --noflush (the in-core count, no commit per poll; the
# C target's completion event comes with its next 1 s tick, so it is not used).
copy_time() {
	clone "$1" "$2" 1 no_hydration
	t0=$(uptime_s)
	ds message b-clone 0 enable_hydration
	while :; do
		f=$(ds status --noflush b-clone | awk '{ print $7 }')
		[ "${f%/*}" = "${f#*/}" ] && break
		sleep 0.005
	done
	t1=$(uptime_s)
	ds remove b-clone
	echo "$t0 $t1" | awk '{ printf "%.2f\n", $2 - $1 }'
}
# kcopyd_time <jobs>: seconds kcopyd alone (the kcopyd_test target) needs to copy
# the source to the destination as that many jobs at once: the floor of any
# kcopyd-based copy.
kcopyd_time() {
	ds create b-kc --table "0 $n kcopyd_test /dev/ram2 /dev/ram1"
	t0=$(uptime_s)
	ds message b-kc 0 copy 0 "$n" "$1"
	while [ "$(ds status b-kc | awk '{ print $5 }')" != "$1" ]; do sleep 0.005; done
	t1=$(uptime_s)
	ds remove b-kc
	echo "$t0 $t1" | awk '{ printf "%.2f\n", $2 - $1 }'
}
# fio_read <device>: seconds fio needs to read it (64 KiB, iodepth 32, direct).
fio_read() {
	fio --name=r --filename="$1" --rw=read --bs=64k --iodepth=32 --ioengine=libaio \
		--direct=1 --minimal 2>/dev/null | awk -F';' '{ printf "%.2f\n", $9 / 1000 }'
}
dd_copy() {
	t0=$(uptime_s)
	dd if=/dev/ram2 of=/dev/ram1 bs=1M iflag=direct oflag=direct 2>/dev/null
	t1=$(uptime_s)
	echo "$t0 $t1" | awk '{ printf "%.2f\n", $2 - $1 }'
}
ratio() { echo "$1 $2" | awk '{ printf "%.2f", ($2 > 0) ? $1 / $2 : 0 }'; }
row() { printf '%-58s %10s %10s %8s\n' "$@"; }

if part 1; then
echo "== 1. idle copy, ${DELAY_MS} ms source, default tables"
disks 32
slow "$DELAY_MS"
limit=$(rounds "$ROUNDS" fio_read /dev/mapper/b-src)
row "workload" "C" "Rust" "Rust/lim"
row "fio read of the source (the limit), s" "$limit" "$limit" "1.00"
for region in 8 128; do
	for impl in C Rust; do
		use "$(module $impl)"
		k=$ROUNDS
		[ $impl = C ] && [ $region = 8 ] && k=1
		eval "t_$impl=\$(rounds $k copy_time /dev/mapper/b-src $region)"
	done
	row "full copy, $((region / 2)) KiB regions, s" "$t_C" "$t_Rust" "$(ratio "$t_Rust" "$limit")"
done
ds remove b-src
fi

if part 2; then
echo "== 2. idle copy, undelayed 256 MiB brd source, default tables"
disks 256
dlim=$(rounds "$ROUNDS" dd_copy)
flim=$(rounds "$ROUNDS" fio_read /dev/ram2)
row "dd source to destination (1 MiB, direct), s" "$dlim" "$dlim" "1.00"
row "fio read of the source, s" "$flim" "$flim" "1.00"
if modprobe dm_kcopyd_test 2>/dev/null; then
	klim=$(rounds "$ROUNDS" kcopyd_time $((n / 1024)))
	row "kcopyd alone, 512 KiB jobs all at once, s (ratio to dd)" "$klim" "$klim" "$(ratio "$klim" "$dlim")"
fi
for region in 8 128; do
	for impl in C Rust; do
		use "$(module $impl)"
		eval "t_$impl=\$(rounds $ROUNDS copy_time /dev/ram2 $region)"
	done
	row "full copy, $((region / 2)) KiB regions, s (ratio to dd)" "$t_C" "$t_Rust" "$(ratio "$t_Rust" "$dlim")"
	[ -n "${klim:-}" ] &&
		row "  ... ratio to kcopyd alone" "$(ratio "$t_C" "$klim")" "$(ratio "$t_Rust" "$klim")" ""
done
fi

if part 3; then
echo "== 3. 1 GiB source, ${DELAY_MS} ms, 64 KiB regions: copy rate under a light load"
disks 1024
slow "$DELAY_MS"
# rate_over <secs>: regions copied per second over that long.
rate_over() {
	c0=$(copied)
	t0=$(uptime_s)
	sleep "$1"
	c1=$(copied)
	t1=$(uptime_s)
	echo "$c0 $c1 $t0 $t1" | awk '{ printf "%.1f\n", ($2 - $1) / ($4 - $3) }'
}
# load <rw> <extra fio args>: fio 4 KiB <rw> on the clone for LOAD_SECS, in the
# background; its p99 completion latency (us) goes to /tmp/b-p99.
load() {
	rw=$1
	shift
	(fio --name=l --filename=/dev/mapper/b-clone --rw="$rw" --bs=4k --direct=1 \
		--time_based --runtime="$LOAD_SECS" --norandommap --minimal "$@" 2>/dev/null |
		awk -F';' -v rw="$rw" '{ v = (rw == "randread") ? $30 : $71; sub(/.*=/, "", v); print v }' \
		>/tmp/b-p99) &
}
iops_of() { # iops_of <rw> <fio args>: foreground, prints IOPS
	rw=$1
	shift
	fio --name=l --filename=/dev/mapper/b-clone --rw="$rw" --bs=4k --direct=1 \
		--time_based --runtime="$LOAD_SECS" --norandommap --minimal "$@" 2>/dev/null |
		awk -F';' -v rw="$rw" '{ print (rw == "randread") ? $8 : $49 }'
}
row "workload" "C" "Rust" "Rust/C"
# Every measurement starts on a fresh clone (copy on: features 0; off: no_hydration),
# so that there is always plenty left to copy.
for impl in C Rust; do
	use "$(module $impl)"
	clone /dev/mapper/b-src 128 0
	sleep 1
	eval "idle_$impl=\$(rate_over $((LOAD_SECS - 1)))"
	for rw in randread randwrite; do
		clone /dev/mapper/b-src 128 0
		load $rw --ioengine=psync --rate_iops=200
		sleep 1
		eval "${rw}_$impl=\$(rate_over $((LOAD_SECS - 2)))"
		wait
		eval "p99on_${rw}_$impl=\$(cat /tmp/b-p99)"
		clone /dev/mapper/b-src 128 1 no_hydration
		load $rw --ioengine=psync --rate_iops=200
		wait
		eval "p99off_${rw}_$impl=\$(cat /tmp/b-p99)"
	done
	# 4. saturating load
	clone /dev/mapper/b-src 128 1 no_hydration
	eval "sat_off_$impl=\$(iops_of randread --ioengine=libaio --iodepth=16)"
	clone /dev/mapper/b-src 128 0
	c0=$(copied)
	(sleep 5; copied >/tmp/b-c5) &
	eval "sat_on_$impl=\$(iops_of randread --ioengine=libaio --iodepth=16)"
	wait
	eval "sat_c5_$impl=\$(($(cat /tmp/b-c5) - c0))"
	ds remove b-clone
done
row "idle copy rate, regions/s" "$idle_C" "$idle_Rust" "$(ratio "$idle_Rust" "$idle_C")"
for rw in randread randwrite; do
	eval "a=\$${rw}_C b=\$${rw}_Rust"
	row "copy rate under $rw 200 IOPS, regions/s" "$a" "$b" "$(ratio "$b" "$a")"
	eval "a=\$${rw}_C b=\$${rw}_Rust ia=\$idle_C ib=\$idle_Rust"
	row "  ... as a share of its idle rate" "$(ratio "$a" "$ia")" "$(ratio "$b" "$ib")" ""
	eval "a=\$p99on_${rw}_C b=\$p99on_${rw}_Rust oa=\$p99off_${rw}_C ob=\$p99off_${rw}_Rust"
	row "$rw p99 us, copy on / copy off" "$a/$oa" "$b/$ob" ""
	row "  ... ratio on/off" "$(ratio "$a" "$oa")" "$(ratio "$b" "$ob")" ""
done
row "saturating randread IOPS, copy off" "$sat_off_C" "$sat_off_Rust" ""
row "saturating randread IOPS, copy on" "$sat_on_C" "$sat_on_Rust" ""
row "  ... ratio on/off" "$(ratio "$sat_on_C" "$sat_off_C")" "$(ratio "$sat_on_Rust" "$sat_off_Rust")" ""
row "regions copied in the first 5 s of it" "$sat_c5_C" "$sat_c5_Rust" ""
fi

if part 5; then
[ -b /dev/mapper/b-src ] || { disks 1024; slow "$DELAY_MS"; }
echo "== 5. copy_rate_limit 8 (Rust)"
use dm_clone_rs
clone /dev/mapper/b-src 128 0 2 copy_rate_limit 8
sleep 1
r=$(rate_over "$LOAD_SECS")
mib=$(echo "$r" | awk '{ printf "%.2f", $1 / 16 }')
row "copy rate with copy_rate_limit 8, MiB/s" "-" "$mib" "$(ratio "$mib" 8)"
ds remove b-clone
fi
ds remove b-src 2>/dev/null

if part 6; then
echo "== 6. idle copy, a remote source: /dev/nbd0 over a unix socket to nbdkit (${DELAY_MS} ms per read)"
disks 32
modprobe nbd nbds_max=1
nbdkit --unix /tmp/b-nbd.sock --pidfile /tmp/b-nbd.pid -r --filter=delay file file=/dev/ram2 \
	rdelay="${DELAY_MS}ms"
while [ ! -s /tmp/b-nbd.pid ]; do sleep 0.1; done
nbd-client -unix /tmp/b-nbd.sock /dev/nbd0 -nonetlink -block-size 4096 >/dev/null
limit=$(rounds "$ROUNDS" fio_read /dev/nbd0)
row "workload" "C" "Rust" "Rust/lim"
row "fio read of the NBD source (the limit), s" "$limit" "$limit" "1.00"
for region in 8 128; do
	t_C=-
	for impl in C Rust; do
		# (C copies 4 KiB regions one at a time: minutes; not run.)
		[ $impl = C ] && [ $region = 8 ] && continue
		use "$(module $impl)"
		eval "t_$impl=\$(rounds $ROUNDS copy_time /dev/nbd0 $region)"
	done
	row "full copy, $((region / 2)) KiB regions, s" "$t_C" "$t_Rust" "$(ratio "$t_Rust" "$limit")"
done
nbd-client -d /dev/nbd0 >/dev/null
kill "$(cat /tmp/b-nbd.pid)"
fi

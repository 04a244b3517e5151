#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Metadata operations at scale, ours against the C dm-clone, in one VM run
# (TCG: compare ratios, not absolute numbers). For each size 2^L regions of
# 64 KiB (LOGS, default "24 28": 1 TiB and 16 TiB), error targets as source
# and destination, metadata on a brd RAM disk, the copy off, no discard
# passdown; each target in turn (ours first, see LATENCY_WARN below):
#   create      dmsetup create (format the metadata, allocate the maps)
#   memory      the kernel's unreclaimable slab + vmalloc taken by the clone
#   reload0     suspend, load the same table, resume: the metadata read again,
#               nothing copied
#   discard     blkdiscard of the whole device, until the status says every
#               region is copied (the marks, and the commits on the way)
#   commit      the suspend after it (its commit writes what is left); ours
#               then prints its commit_stats (how many commits the discard
#               took, words written one by one and whole, the longest commit)
#   reload1     load and resume, everything copied
#   memory1     the memory when done
#   grow        (ours, GROW=1) suspend, load a table twice as long, resume: the
#               bitset grows by N regions in one commit (C cannot grow a clone)
# Then the kernel log is searched for RCU stalls, soft lockups and hung tasks
# during the run (a stall is a bug: `make check`'s log checker fails on one),
# and, where the scheduler has the LATENCY_WARN feature (debugfs sched/), for
# "need_resched set for > LATENCY_MS ms without schedule": a CPU held that long
# without offering it (on a kernel without preemption, any loop that does not
# yield; with preemption, only non-preemptible sections). The kernel reports
# that once per hour at most: the first offender only, hence ours first, and
# the report says which phase it came in.
# Run it with: make vm-run SCRIPT=tools/bench/scale.sh VM_MEM=4G
# (IMPLS="dm_clone_rs" runs ours alone; LOGS="24 28 30" needs VM_MEM=6G;
# 2^28 takes some minutes per target on TCG;
# LOGS="30 31" GROW=1 VM_MEM=6G: 64 TiB grown to 128 TiB, and 128 TiB made
# at once, 2^31 regions being the format's maximum).
set -e
LOGS=${LOGS:-"24 28"}
GROW=${GROW:-0}
IMPLS=${IMPLS:-"dm_clone_rs dm_clone"}
LATENCY_MS=${LATENCY_MS:-1000}
export DM_DISABLE_UDEV=1
ds() { dmsetup --noudevsync "$@"; }
uptime_s() { awk '{ print $1 }' /proc/uptime; }
since() { awk -v t0="$1" '{ printf "%.2f", $1 - t0 }' /proc/uptime; }
use() {
	grep -q "^dm_clone_rs " /proc/modules && rmmod dm_clone_rs
	grep -q "^dm_clone " /proc/modules && rmmod dm_clone
	modprobe "$1"
	grep -q "^$1 " /proc/modules
}
kib() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	for f in /sys/kernel/slab/*/shrink; do echo 1 >"$f"; done 2>/dev/null
	awk '/^(SUnreclaim|VmallocUsed):/ { n += $2 } END { print n }' /proc/meminfo
}
copied() { ds status s-clone | awk '{ split($7, a, "/"); print (a[1] == a[2] && a[2] > 0) }'; }
mark() { echo "scale: mark $*" >/dev/kmsg; }
grep -qs " /sys/kernel/debug " /proc/mounts || mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
if [ -w /sys/kernel/debug/sched/features ] && echo LATENCY_WARN >/sys/kernel/debug/sched/features 2>/dev/null; then
	echo "$LATENCY_MS" >/sys/kernel/debug/sched/latency_warn_ms
	echo 0 >/sys/kernel/debug/sched/latency_warn_once
	echo "scale: LATENCY_WARN on, $LATENCY_MS ms"
else
	echo "scale: LATENCY_WARN not available"
fi
mark start

for L in $LOGS; do
	N=$((1 << L))
	LEN=$((N * 128))
	# clone_metadata_size's suggestion (room for the whole-device discard's
	# commit to rewrite the bitset), in MiB rounded up.
	# With GROW=1 the metadata device has room for twice as many regions (not
	# past the maximum, 2^31: no grow there).
	G=$GROW
	[ "$L" -lt 31 ] || G=0
	META_MB=$((($(clone_metadata_size --device-size $((LEN << G)) --region-size 128 -n) + 2047) / 2048))
	modprobe brd rd_nr=1 rd_size=$((META_MB * 1024)) max_part=0
	ds create s-src --table "0 $((LEN << G)) error"
	ds create s-dst --table "0 $((LEN << G)) error"
	TABLE="0 $LEN clone /dev/ram0 /dev/mapper/s-dst /dev/mapper/s-src 128 2 no_hydration no_discard_passdown"
	for impl in $IMPLS; do
		use $impl
		mark "$impl 2^$L"
		dd if=/dev/zero of=/dev/ram0 bs=1M count=1 oflag=direct 2>/dev/null
		m0=$(kib)
		t=$(uptime_s)
		ds create s-clone --table "$TABLE"
		create=$(since "$t")
		mem=$(($(kib) - m0))
		t=$(uptime_s)
		ds suspend s-clone && ds load s-clone --table "$TABLE" && ds resume s-clone
		reload0=$(since "$t")
		t=$(uptime_s)
		blkdiscard /dev/mapper/s-clone
		while [ "$(copied)" != 1 ]; do sleep 0.1; done
		discard=$(since "$t")
		t=$(uptime_s)
		ds suspend s-clone
		commit=$(since "$t")
		[ $impl != dm_clone_rs ] || echo "scale 2^$L $impl: $(ds message s-clone 0 commit_stats)"
		t=$(uptime_s)
		ds load s-clone --table "$TABLE" && ds resume s-clone
		reload1=$(since "$t")
		[ "$(copied)" = 1 ] || echo "scale: $impl 2^$L: not every region reads copied after the reload"
		mem1=$(($(kib) - m0))
		grow=-
		if [ "$G" = 1 ] && [ $impl = dm_clone_rs ]; then
			mark "$impl 2^$L grow"
			t=$(uptime_s)
			ds suspend s-clone && ds load s-clone --table "0 $((LEN * 2))${TABLE#0 $LEN}" &&
				ds resume s-clone
			grow=$(since "$t")
			ds status s-clone | awk -v n=$N '{ split($7, a, "/"); if (a[1] != n || a[2] != 2 * n)
				print "scale: after the grow " $7 " regions copied, expected " n "/" 2 * n }'
		fi
		ds remove s-clone
		echo "scale 2^$L $impl: create $create reload0 $reload0 discard $discard commit $commit reload1 $reload1 grow $grow memory_kib $mem memory1_kib $mem1"
	done
	ds remove s-src
	ds remove s-dst
	rmmod brd
done
grep -q "^dm_clone_rs " /proc/modules && rmmod dm_clone_rs
echo "scale: kernel log reports during the run (stalls, soft lockups, hung tasks, CPU held), by phase:"
dmesg | sed -n '/scale: mark start/,$p' |
	grep -iE "scale: mark|rcu.*stall|soft lockup|hung task|blocked for more|need_resched set for" |
	awk '/scale: mark/ { phase = $0; next } { print phase ": " $0; n++ } END { if (!n) print "none" }'

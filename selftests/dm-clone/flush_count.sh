#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Flushes per fsync, ours against the C dm-clone in one run. Destination and
# metadata are null_blk devices with a write-back cache (memory_backed,
# cache_size), so every flush reaches them and /proc/diskstats counts it (a RAM
# disk has no cache: the block layer drops flushes to it). 50 times: a 4 KiB
# direct write that makes a region copied (a whole 4 KiB region), then fsync.
# Each fsync needs a commit, which flushes the destination before it writes the
# metadata; the fsync's own empty flush then has nothing left to do on the
# destination. Ours sends one destination flush per fsync, and no more flushes
# to either device than C does.
#
# The periodic commit (every second; the target has no setting to stop it) can
# fall between a write and its fsync: it commits the write's mark and flushes the
# destination, and the fsync's flush, with nothing left to commit, then goes down
# to the destination too: 2 destination flushes for that fsync, the number of
# commits (hence of metadata flushes) unchanged. So each write+fsync is counted
# on its own: 1 destination flush, or 2 where a periodic commit came, which
# happens at most once per period: such fsyncs are at least half a period apart
# (the tick is queued a period after the last one ran; half a period for the
# worker's latency), and at most (loop time / period) + 2 of them (one more for
# the tick before the loop whose commit ran in it); the total is 50 plus their
# number. Each fsync's commit flushes the metadata the same number of times.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_require_both
dm_brd_setup dmc- 3 "$DMC_DEV_MB"
modprobe null_blk nr_devices=2 gb=1 memory_backed=1 cache_size=64 2>/dev/null ||
	dmc_skip "no null_blk with memory_backed and cache_size"
nb_cleanup() {
	dm_brd_cleanup
	rmmod null_blk 2>/dev/null
	dmc_unload_targets
}
trap nb_cleanup EXIT
ktap_set_plan 5

wc_mode() { cat /sys/block/"$1"/queue/write_cache; }
cached() { [ "$(wc_mode nullb0)" = "write back" ] && [ "$(wc_mode nullb1)" = "write back" ]; }
dm_test "null_blk destination and metadata have a write-back cache" cached
dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
dd if=/dev/urandom of=/tmp/dmc-w.bin bs=4096 count=1 2>/dev/null
# sample: "<destination flushes> <metadata flushes> <uptime, centiseconds>" (flush
# requests completed: the 19th field of /proc/diskstats), read at once.
sample() {
	awk 'FNR == NR { t = int($1 * 100); next }
	     $3 == "nullb0" { d = $19 } $3 == "nullb1" { m = $19 }
	     END { print d + 0, m + 0, t + 0 }' /proc/uptime /proc/diskstats
}


# run <module>: for 50 write+fsync pairs, on fresh metadata, the C names in the
# table (both modules take them): "<destination flushes> <metadata flushes>
# <fsyncs with 2 destination flushes> <periodic commits possible in the loop>
# <fsyncs with another count of destination flushes, or too close to the last
# with 2> <metadata flushes of the first fsync> <fsyncs with another count of
# metadata flushes>".
run() {
	mod=$1
	dmc_use_target "$mod" >&2 || return 1
	dd if=/dev/zero of=/dev/nullb1 bs=4096 count=1 oflag=direct conv=fsync 2>/dev/null
	dmsetup create dmc-f --table "0 $len clone /dev/nullb1 /dev/nullb0 $DMC_SRC 8 1 no_hydration" ||
		return 1
	dmc_serves "$mod" >&2 || return 1
	set -- $(sample)
	d0=$1 m0=$2 t0=$3 dp=$1 mp=$2 last=-100 two=0 dodd=0 per="" modd=0
	i=0
	while [ $i -lt 50 ]; do
		dd if=/tmp/dmc-w.bin of=/dev/mapper/dmc-f bs=4096 count=1 seek=$((i * 3 + 1)) \
			oflag=direct conv=fsync 2>/dev/null || { echo "# $mod: write+fsync $i failed" >&2; return 1; }
		set -- $(sample)
		case $(($1 - dp)) in
		1) ;;
		2)
			two=$((two + 1))
			if [ $(($3 - last)) -lt 50 ]; then
				echo "# $mod: fsync $i: 2 destination flushes, $(($3 - last)) cs after the last such" >&2
				dodd=$((dodd + 1))
			fi
			last=$3
			;;
		*)
			echo "# $mod: fsync $i: $(($1 - dp)) destination flushes" >&2
			dodd=$((dodd + 1))
			;;
		esac
		[ -n "$per" ] || per=$(($2 - mp))
		if [ $(($2 - mp)) != "$per" ]; then
			echo "# $mod: fsync $i: $(($2 - mp)) metadata flushes, the first $per" >&2
			modd=$((modd + 1))
		fi
		dp=$1 mp=$2
		i=$((i + 1))
	done
	ticks=$(( ($3 - t0) / 100 + 2 ))
	c=$(dmc_copied dmc-f)
	dmsetup remove dmc-f
	echo "# $mod: $(($1 - d0)) destination and $(($2 - m0)) metadata flushes, $c regions copied," \
		"$two fsyncs with 2 destination flushes ($ticks periodic commits possible in $(($3 - t0)) cs)" >&2
	echo "$(($1 - d0)) $(($2 - m0)) $two $ticks $dodd $per $modd"
}
set -- $(run dm_clone_rs)
rust_d=$1 rust_m=$2 rust_two=$3 rust_ticks=$4 rust_dodd=$5 rust_per=$6 rust_modd=$7
set -- $(run dm_clone)
c_d=$1 c_m=$2
echo "# flushes for 50 fsyncs: ours destination $rust_d metadata $rust_m; C destination $c_d metadata $c_m"
one_each() {
	[ "$rust_dodd" = 0 ] && dmc_between "$rust_two" 0 "$rust_ticks" &&
		[ "$rust_d" = $((50 + rust_two)) ]
}
dm_test "ours: one destination flush per fsync (50), 2 only where a periodic commit came" one_each
# (Less the fsyncs that a periodic commit gave 2: C's count has its own.)
fewer_than_c() { dmc_between "$rust_two" 0 "$rust_d" && dmc_between $((rust_d - rust_two)) 1 "$c_d"; }
dm_test "ours: no more destination flushes than C" fewer_than_c
dm_test "ours: no more metadata flushes than C" dmc_between "$rust_m" 0 "$c_m"
each_commit() { [ "$rust_modd" = 0 ] && dmc_between "$rust_per" 1 99 && [ "$rust_m" = $((50 * rust_per)) ]; }
dm_test "ours: each fsync commits once, flushing the metadata (the same number of times for each)" each_commit
ktap_finished

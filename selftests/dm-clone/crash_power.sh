#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Power cuts with volatile disk caches. Metadata and destination are null_blk
# devices with memory backing and a write-back cache: powering one off
# (configfs `power` 0) drops what was not flushed, as a power cut does to a
# disk's cache. A workload of direct writes (some with fsync), discards and the
# background copy runs; at a random moment both devices lose power; the clone
# is removed, power comes back, the clone is loaded with the copy off and read
# whole: every write acknowledged before a completed fsync is there, every other
# one is there or not 4 KiB block by block (an unflushed cache loses pages, not
# bios), nothing else changed. Then it goes on from there with the copy on.
# DMC_CUTS cuts (default 4, 2 on the debug kernel; 100 with DMC_LONG=1); then the copy finishes and the
# destination itself must equal the expected image. Then a power cut in ro mode
# (below, ro_cut). The C dm-clone gets the same run; its result is reported, not
# required.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_require_both dm_delay dm_flakey
command -v dmc-write >/dev/null || ktap_exit_fail_msg "dmc-write is not in the guest"
dm_brd_setup dmc- 1 "$DMC_DEV_MB"
DMC_SRC=/dev/ram0
rmmod null_blk 2>/dev/null
modprobe null_blk nr_devices=0 2>/dev/null || dmc_skip "no null_blk"
CFS=/sys/kernel/config/nullb
[ -d $CFS ] || mount -t configfs none /sys/kernel/config 2>/dev/null
[ -d $CFS ] || dmc_skip "no null_blk configfs"
pc_cleanup() {
	dm_brd_cleanup
	for d in dmcmeta dmcdest; do
		[ -d $CFS/$d ] && { echo 0 >$CFS/$d/power; rmdir $CFS/$d; }
	done
	command dmsetup remove dmc-pm 2>/dev/null
	rmmod null_blk 2>/dev/null
	dmc_unload_targets
}
trap pc_cleanup EXIT
# Quick form: 4 cuts (2 on the debug kernel); long: 100.
CUTS=${DMC_CUTS:-$(dmc_form 100 2 4)}
SECTORS=32768 REGION=16 # 16 MiB, 8 KiB regions: 2048
ktap_set_plan 13

# nb_make <name> <MiB>: a memory-backed null_blk with a 1 MiB write-back cache.
nb_make() {
	mkdir $CFS/"$1" &&
		echo "$2" >$CFS/"$1"/size && echo 1 >$CFS/"$1"/memory_backed &&
		echo 1 >$CFS/"$1"/cache_size && echo 1 >$CFS/"$1"/discard &&
		echo 1 >$CFS/"$1"/power && [ -b /dev/"$1" ]
}
power() { echo "$1" >$CFS/dmcmeta/power && echo "$1" >$CFS/dmcdest/power; }
nb_make dmcmeta 4 && nb_make dmcdest 16 || ktap_exit_fail_msg "cannot make null_blk devices"
wc_mode() { cat /sys/block/"$1"/queue/write_cache; }
dm_test "null_blk metadata and destination have a write-back cache" \
	[ "$(wc_mode dmcmeta) $(wc_mode dmcdest)" = "write back write back" ]
dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
dmsetup create dmc-src --table "0 $SECTORS delay $DMC_SRC 0 1" ||
	ktap_exit_fail_msg "cannot make the source"
TABLE="0 $SECTORS clone /dev/dmcmeta /dev/dmcdest /dev/mapper/dmc-src $REGION"

# workload <first op> <clone>: operations from <first op> on, until an error
# (the power cut); by i % 5: whole-region write + fsync, 4 KiB write, discard,
# 4 KiB write + fsync, whole-region write. Each is in /tmp/dmc-ops as issued
# ("i"), then acknowledged ("a"); after an fsync, /tmp/dmc-durable holds the
# count of operations made durable.
workload() {
	i=$1
	while :; do
		dmc_pick_op $i $(((i * 37 + 5) % 2048)) 5
		[ $k = w ] && dd if=/dev/urandom of=/tmp/dmc-op$i bs=4096 count=$n 2>/dev/null
		echo "$i $k $b $n i" >>/tmp/dmc-ops
		if [ $k = w ]; then
			dd if=/tmp/dmc-op$i of="/dev/mapper/$2" bs=$((n * 4096)) seek=$((b / n)) count=1 \
				oflag=direct $sync 2>/dev/null || return 0
		else
			blkdiscard -o $((b * 4096)) -l $((n * 4096)) "/dev/mapper/$2" 2>/dev/null ||
				return 0
		fi
		sed -i "\$s/ i\$/ a/" /tmp/dmc-ops
		i=$((i + 1))
		[ -n "$sync" ] && echo $i >/tmp/dmc-durable
	done
}

# cuts <module> <copy args>: prints "<cuts> <failed> <ops> <acknowledged>
# <durable> <odd>" and leaves the expected image in /tmp/dmc-base.img. Each cut
# comes only after an fsync completed in it (so every cut checks acknowledged,
# durable writes; a target whose fsyncs fail makes no cut); <odd> counts cuts
# whose operations do not add up: the workload is sequential, so at most the
# one in flight at the cut was issued and not acknowledged.
cuts() {
	dmc_use_target "$1" || return 1
	dd if=/dev/zero of=/dev/dmcmeta bs=1M count=4 oflag=direct conv=fsync 2>/dev/null
	dd if=/dev/zero of=/dev/dmcdest bs=1M count=16 oflag=direct conv=fsync 2>/dev/null
	cp /tmp/dmc-src.img /tmp/dmc-base.img
	c=0 failed=0 op=0 acked=0 durable=0 odd=0
	while [ $c -lt "$CUTS" ]; do
		c=$((c + 1))
		: >/tmp/dmc-ops
		echo "$op" >/tmp/dmc-durable
		dmsetup create dmc-c --table "$TABLE $2" || { echo "# $1, cut $c: no load" >&2; return 1; }
		dmc_serves "$1" >&2 || return 1
		workload "$op" dmc-c &
		wl=$!
		if ! dmc_wait_for 60 '[ "$(cat /tmp/dmc-durable)" -gt "$op" ] 2>/dev/null'; then
			echo "# $1, cut $c: no fsync completed in 60 s" >&2
			power 0
			wait $wl
			timeout 30 dmsetup remove dmc-c >&2
			power 1
			return 1
		fi
		# Then 0.3 to 2.2 s.
		sleep "$(awk -v r="$(od -An -N1 -tu1 /dev/urandom)" 'BEGIN { printf "%.2f", 0.3 + r / 134 }')"
		power 0
		wait $wl
		timeout 30 dmsetup remove dmc-c >&2 || { echo "# $1, cut $c: remove hangs or fails"; return 1; }
		power 1 || return 1
		dmsetup create dmc-k --table "$TABLE 1 no_hydration" ||
			{ echo "# $1, cut $c: the clone does not load after the cut" >&2; return 1; }
		dd if=/dev/mapper/dmc-k of=/tmp/dmc-got.img bs=1M iflag=direct 2>/dev/null
		n_ops=$(wc -l </tmp/dmc-ops) n_ack=$(grep -c ' a$' /tmp/dmc-ops)
		n_dur=$(($(cat /tmp/dmc-durable) - op))
		echo "# $1, cut $c: $n_ops operations, $n_ack acknowledged, $n_dur durable," \
			"$(dmc_copied dmc-k) regions copied" >&2
		acked=$((acked + n_ack)) durable=$((durable + n_dur))
		if [ $((n_ops - n_ack)) -gt 1 ] || [ "$n_dur" -gt "$n_ack" ] || [ "$n_dur" -lt 1 ]; then
			echo "# $1, cut $c: operations do not add up" >&2
			odd=$((odd + 1))
		fi
		dmsetup remove dmc-k || return 1
		dmc_check_ops "$1, cut $c" /tmp/dmc-got.img /tmp/dmc-base.img /tmp/dmc-ops \
			"$(cat /tmp/dmc-durable)" block >&2 || failed=$((failed + 1))
		op=$((op + $(wc -l </tmp/dmc-ops)))
		# A failed check leaves the base as it was: go on from what was read.
		cp /tmp/dmc-got.img /tmp/dmc-base.img
	done
	echo "$c $failed $op $acked $durable $odd"
}

# finish <module>: the copy completes after the cuts; the destination itself
# (not read through the clone) equals the expected image.
finish() {
	dmsetup create dmc-c --table "$TABLE" || return 1
	dmc_wait_copied dmc-c 300 >&2 || { dmsetup remove dmc-c; return 1; }
	dmsetup remove dmc-c || return 1
	dd if=/dev/dmcdest bs=1M iflag=direct 2>/dev/null | cmp - /tmp/dmc-base.img >&2
}

# ran <cuts> <ops> <acknowledged> <durable> <odd>: the workload ran between the
# cuts: every cut had an fsync completed (durable >= cuts), every operation but
# the one in flight at a cut was acknowledged, and the counts add up.
ran() {
	dmc_between "${4:-0}" "$1" 100000 && [ "${5:-1}" = 0 ] &&
		dmc_between "${3:-0}" "$4" "$2" && dmc_between "${3:-0}" $((${2:-0} - $1)) "$2"
}
# A power cut in ro mode. The metadata is behind dmc-pm (a dm-linear over the
# null_blk, swapped to dm-flakey failing writes). While healthy, four writes,
# each with fsync (durable): region 10 whole, then 4 KiB in regions 20, 50 and
# 60. Then the metadata fails writes, and: 4 KiB to region 40 (acknowledged: its
# mark waits for a commit, which fails, periodic or not: the mode goes ro and the
# mark is taken back), then in ro a write to the other half of region 20
# (copied: acknowledged), writes to region 1 (not copied) and to region 40's
# other half (mark taken back), both refused, then a FUA write (dmc-write,
# O_DSYNC) in region 50 and a write with fsync in region 60: each that reports
# success makes every acknowledged write before it durable (so a target that
# lets them succeed must have kept region 40's write: it cannot, its mark is not
# on disk). Then both devices lose power, the metadata is healthy again, and the
# clone loads rw and reads whole: checked as after the other cuts, and region
# 40 reads as the source. Prints "<went ro> <ro writes acknowledged> <durable>
# <failed>".
ro_cut() {
	dmc_use_target "$1" || return 1
	dd if=/dev/zero of=/dev/dmcmeta bs=1M count=4 oflag=direct conv=fsync 2>/dev/null
	dd if=/dev/zero of=/dev/dmcdest bs=1M count=16 oflag=direct conv=fsync 2>/dev/null
	msect=$(dm_sectors /dev/dmcmeta)
	dmsetup create dmc-pm --table "0 $msect linear /dev/dmcmeta 0" || return 1
	table="0 $SECTORS clone /dev/mapper/dmc-pm /dev/dmcdest /dev/mapper/dmc-src $REGION 1 no_hydration"
	dmsetup create dmc-c --table "$table" || return 1
	dmc_serves "$1" >&2 || return 1
	: >/tmp/dmc-ops
	durable=0 ro=0 acked_ro=0
	# op <i> <first block> <blocks> <how: plain|fsync|dsync>
	op() {
		dd if=/dev/urandom of=/tmp/dmc-op"$1" bs=4096 count="$3" 2>/dev/null
		case $4 in
		plain) dd if=/tmp/dmc-op"$1" of=/dev/mapper/dmc-c bs=$(($3 * 4096)) seek=$(($2 / $3)) \
			count=1 oflag=direct 2>/dev/null ;;
		fsync) dd if=/tmp/dmc-op"$1" of=/dev/mapper/dmc-c bs=$(($3 * 4096)) seek=$(($2 / $3)) \
			count=1 oflag=direct conv=fsync 2>/dev/null ;;
		dsync) dmc-write /tmp/dmc-op"$1" /dev/mapper/dmc-c --offset $(($2 * 4096)) ;;
		esac
		r=$?
		if [ $r = 0 ]; then
			echo "$1 w $2 $3 a" >>/tmp/dmc-ops
			[ "$4" = plain ] || durable=$(($1 + 1))
		else
			echo "$1 w $2 $3 i" >>/tmp/dmc-ops
		fi
		return $r
	}
	op 0 20 2 fsync && op 1 40 1 fsync && op 2 100 1 fsync && op 3 120 1 fsync ||
		{ echo "# $1: the writes before the failure failed" >&2; dmsetup remove dmc-c; return 1; }
	dmsetup suspend dmc-pm && dmsetup load dmc-pm --table "0 $msect flakey /dev/dmcmeta 0 0 1 1 error_writes" &&
		dmsetup resume dmc-pm || return 1
	op 4 80 1 plain || echo "# $1: the write to region 40 failed" >&2
	dmc_wait_for 10 '[ "$(dmc_mode dmc-c)" = ro ]' && ro=1
	op 5 41 1 plain && acked_ro=$((acked_ro + 1))
	op 6 2 1 plain && acked_ro=$((acked_ro + 1))
	op 7 81 1 plain && acked_ro=$((acked_ro + 1))
	op 8 101 1 dsync
	op 9 121 1 fsync
	echo "# $1 in ro: $(tr '\n' ';' </tmp/dmc-ops)" >&2
	power 0
	timeout 30 dmsetup remove dmc-c >&2 || { echo "# $1: remove hangs or fails"; return 1; }
	dmsetup remove dmc-pm
	power 1 || return 1
	dmsetup create dmc-k --table "0 $SECTORS clone /dev/dmcmeta /dev/dmcdest /dev/mapper/dmc-src $REGION 1 no_hydration" ||
		{ echo "# $1: the clone does not load after the cut" >&2; return 1; }
	mode=$(dmc_mode dmc-k)
	dd if=/dev/mapper/dmc-k of=/tmp/dmc-got.img bs=1M iflag=direct 2>/dev/null
	dmsetup remove dmc-k
	failed=0
	cp /tmp/dmc-src.img /tmp/dmc-base.img
	dmc_check_ops "$1, ro cut" /tmp/dmc-got.img /tmp/dmc-base.img /tmp/dmc-ops "$durable" block >&2 ||
		failed=1
	dmc_same_blocks /tmp/dmc-got.img 80 /tmp/dmc-src.img 80 2 ||
		{ echo "# $1: region 40 (its mark never committed) does not read as the source" >&2; failed=1; }
	[ "$mode" = rw ] || { echo "# $1: mode $mode after the reload" >&2; failed=1; }
	echo "$ro $acked_ro $durable $failed"
}

set -- $(cuts dm_clone_rs "0 4 hydration_threshold 4 copy_rate_limit 4")
echo "# ours: $1 power cuts over $3 operations ($4 acknowledged, $5 durable), $2 failed"
dm_test "ours: $CUTS power cuts made and checked" [ "${1:-0}" = "$CUTS" ]
dm_test "ours: every cut loses no acknowledged write and changes nothing else" [ "${2:-1}" = 0 ]
dm_test "ours: the workload ran between the cuts: every cut after acknowledged, durable writes" \
	ran "$CUTS" "${3:-0}" "${4:-0}" "${5:-0}" "${6:-1}"
dm_test "ours: after the cuts the copy finishes; the destination is the expected image" finish

set -- $(cuts dm_clone "0 2 hydration_threshold 4")
echo "# C: $1 power cuts over $3 operations ($4 acknowledged, $5 durable), $2 failed"
dm_test "C: $CUTS power cuts made and checked" [ "${1:-0}" = "$CUTS" ]
dmc_c_result "every cut loses no acknowledged write and changes nothing else ($2 failed)" \
	[ "${2:-1}" = 0 ]
dm_test "C: the workload ran between the cuts: every cut after acknowledged, durable writes" \
	ran "$CUTS" "${3:-0}" "${4:-0}" "${5:-0}" "${6:-1}"
dmc_c_result "after the cuts the copy finishes; the destination is the expected image" finish

set -- $(ro_cut dm_clone_rs)
echo "# ours, power cut in ro mode: went ro $1, writes acknowledged in ro $2, durable $3, failed ${4:-}"
dm_test "ours: in ro mode only the write to a copied region is acknowledged; no flush or FUA write succeeds" \
	[ "${1:-} ${2:-} ${3:-}" = "1 1 4" ]
dm_test "ours: after a power cut in ro mode the clone loads rw; durable writes kept, the lost one reads as the source" \
	[ "${4:-1}" = 0 ]
set -- $(ro_cut dm_clone)
echo "# C, power cut in ro mode: went ro $1, writes acknowledged in ro $2, durable $3, failed ${4:-}"
dm_test "C: the metadata's failure makes the mode ro" [ "${1:-0}" = 1 ]
dmc_c_result "after a power cut in ro mode nothing durable is lost (${4:-?} failed)" [ "${4:-1}" = 0 ]
ktap_finished

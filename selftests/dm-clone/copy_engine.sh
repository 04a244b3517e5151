#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The copy controller: with no core arguments the copier chooses how much it
# keeps in flight and how large its jobs are (many regions per job, several jobs
# at once); copy_threshold and copy_batch_size, given in the table or by message,
# are caps it never exceeds, and `auto' lifts them; copy_stats replies with what
# it chose; under a steady user load the copy still advances and finishes (no
# starvation); with a destination that cannot keep up (null_blk limited to 2
# MiB/s) it settles on a smaller window than with a fast one; a rate limit holds;
# the module's kcopyd throttle (copy_throttle, alias clone_hydration_throttle)
# takes 1-100 only and slows the copy.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_setup
dm_require_modules dm_delay
ktap_set_plan 16

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
total=$((len / 8))
dmc_slow_source 5
S=$(command dmsetup info -c --noheadings -o blkdevname dmc-zslow)
# fresh <destination> <options after the region size>: a new clone dmc-ce of 4 KiB
# regions over the slow source, on blank metadata.
fresh() {
	command dmsetup info dmc-ce >/dev/null 2>&1 && dmsetup remove dmc-ce
	dd if=/dev/zero of="$DMC_META" bs=4096 count=1 oflag=direct 2>/dev/null
	d=$1
	shift
	dmsetup create dmc-ce --table "0 $len clone $DMC_META $d /dev/mapper/dmc-zslow 8 $*"
}
# stat <key>: a value from the copy_stats reply.
stat() { dmsetup message dmc-ce 0 copy_stats | tr ' ' '\n' | sed -n "s/^$1=//p"; }
# per_read <copy options>: regions copied per source read (x10), over 512 regions
# at least (nothing, so that the check fails, if the copy did not get there or
# no source read was counted).
per_read() { fresh "$DMC_DEST" 1 no_background_copy "$@" >/dev/null && dmc_per_read dmc-ce "$S" 512; }

# 1. No core arguments: the controller's choice.
dm_test "create with no core arguments" fresh "$DMC_DEST" 1 no_background_copy
reply=$(dmsetup message dmc-ce 0 copy_stats)
echo "# copy_stats: $reply"
both_auto() { echo "$reply" | grep -q "copy_threshold=auto copy_batch_size=auto"; }
dm_test "copy_stats replies, with both caps auto" both_auto
dmsetup message dmc-ce 0 enable_background_copy
auto_max=$(dmc_most_in_flight dmc-ce 20)
dmc_wait_copied dmc-ce 60 >/dev/null
echo "# most regions in flight with no caps: $auto_max"
dm_test "with no caps, many regions are in flight at once (more than 16)" [ "$auto_max" -gt 16 ]
auto=$(per_read 0)
echo "# regions per source read with no caps (x10): $auto"
dm_test "with no caps, jobs take many contiguous regions (8 per read at least)" \
	dmc_between "$auto" 80 999999

# 2. Caps: the C target's tables keep their meaning.
one=$(per_read 4 copy_threshold 4 copy_batch_size 1)
echo "# regions per source read with copy_batch_size 1 (x10): $one"
dm_test "copy_batch_size 1: one region per job" [ "$one" = 10 ]
# The cap, sampled while the copy runs (4 regions at a time over the 5 ms source:
# 4096 regions take 5 s at least, the 20 samples well under that): never more
# than 4 in flight, yet some in flight and regions copied meanwhile (a copy that
# never started, 0 in flight, is no proof of the cap).
fresh "$DMC_DEST" 1 no_background_copy 2 copy_threshold 4 >/dev/null
cc0=$(dmc_copied dmc-ce)
dmsetup message dmc-ce 0 enable_background_copy
capped=$(dmc_most_in_flight dmc-ce 20)
cc1=$(dmc_copied dmc-ce)
echo "# most regions in flight with copy_threshold 4: $capped; copied while sampled: $cc0 -> $cc1 of $total"
capped_ok() { dmc_between "$capped" 1 4 && dmc_between "$cc1" $((cc0 + 1)) "$total"; }
dm_test "copy_threshold 4: never more than 4 in flight (and the copy ran: some in flight, regions copied)" capped_ok
# `auto' lifts the cap, on a clone whose copy starts after the message. The source
# is suspended first, so the reads the copier issues wait in it and the regions in
# flight stay there to be read (an uncapped copy of these 16 MiB can finish between
# two samples: the count is not sampled while it moves). With the cap still 4 the
# count stops at 4; lifted, at the controller's first window (1 MiB: 256 regions).
fresh "$DMC_DEST" 1 no_background_copy 2 copy_threshold 4 >/dev/null
dmsetup message dmc-ce 0 copy_threshold auto
dmsetup suspend dmc-zslow
dmsetup message dmc-ce 0 enable_background_copy
lifted() {
	dmc_wait_for 10 '[ "$(dmc_status_field dmc-ce 5)" -gt 4 ]'
	r=$?
	echo "# regions in flight against the suspended source: $(dmc_status_field dmc-ce 5)"
	return $r
}
dm_test "copy_threshold auto lifts the cap (more than 4 in flight at once)" lifted
dmsetup resume dmc-zslow
dmsetup remove dmc-ce

# 3. A steady user load (4 KiB random reads) does not stop the copy: the copy is
# turned on once the load runs. The load is seen running: the clone's own reads
# (user reads only: the copy reads the source) rise in each window measured, and
# fio has not ended when the copy finishes (its subshell writes fio's exit status
# to /tmp/dmc-fio.rc when it ends). fio is not killed (on a signal it exits with
# 128): it runs its 40 s, then must exit 0 and report reads with no error (terse
# format 3: field 5 is the job's error, 6 the KiB it read).
fresh "$DMC_DEST" 1 no_background_copy >/dev/null
L=$(command dmsetup info -c --noheadings -o blkdevname dmc-ce)
rm -f /tmp/dmc-fio.rc
(
	fio --name=load --filename=/dev/mapper/dmc-ce --rw=randread --bs=4k --direct=1 \
		--ioengine=psync --numjobs=2 --time_based --runtime=40 --group_reporting \
		--output-format=terse --terse-version=3 >/tmp/dmc-fio.txt 2>/tmp/dmc-fio.err
	echo $? >/tmp/dmc-fio.rc
) &
fio=$!
# (fio takes a while to start under emulation: the copy is turned on 1 s after its
# first read.)
u=$(dmc_reads_done "$L")
dmc_wait_for 20 '[ "$(dmc_reads_done "$L")" -gt "$u" ]' || echo "# the load has not read in 20 s"
sleep 1
dmsetup message dmc-ce 0 enable_background_copy
c0=$(dmc_copied dmc-ce) u0=$(dmc_reads_done "$L")
sleep 3
c1=$(dmc_copied dmc-ce) u1=$(dmc_reads_done "$L")
echo "# copied under load: $c0 when enabled, 3 s later $c1 (of $total); user reads meanwhile: $u0 -> $u1"
rises() { dmc_between "$c1" $((c0 + 1)) "$total" && dmc_between "$u1" $((u0 + 1)) 999999999; }
dm_test "under a steady load the copied count rises (and the load reads meanwhile)" rises
finishes_under_load() {
	dmc_wait_copied dmc-ce 34 || return 1
	u2=$(dmc_reads_done "$L")
	[ ! -e /tmp/dmc-fio.rc ] || { echo "# the load had ended (status $(cat /tmp/dmc-fio.rc)) when the copy finished"; return 1; }
	dmc_between "$u2" $((u1 + 1)) 999999999 || { echo "# no user read since the last window: $u1 -> $u2"; return 1; }
}
dm_test "and the copy finishes while the load runs" finishes_under_load
wait $fio
load_ok() {
	frc=$(cat /tmp/dmc-fio.rc 2>/dev/null)
	echo "# fio exit status '$frc'; its terse lines' error and KiB read:" \
		"$(awk -F';' '$1 == 3 { printf " %s %s", $5, $6 }' /tmp/dmc-fio.txt)"
	[ "$frc" = 0 ] || { sed 's/^/# /' /tmp/dmc-fio.err | tail -n 5; return 1; }
	awk -F';' '$1 == 3 { n++; if ($5 != 0) e++; k += $6 }
		END { exit !(n > 0 && e == 0 && k > 0) }' /tmp/dmc-fio.txt
}
dm_test "the load (fio) exits 0 and reports reads, with no error" load_ok

# 4. A destination that cannot keep up: the window the controller settles on.
# settled <destination>: "<window bytes> <copy bytes/s>" after 3 s of copying.
settled() {
	fresh "$1" 0 >/dev/null || return 1
	sleep 3
	echo "# $(dmsetup message dmc-ce 0 copy_stats)" >&2
	echo "$(stat window_bytes) $(stat rate_bytes_per_s)"
	dmsetup remove dmc-ce
}
# (null_blk's bandwidth limit refills a budget of mbps/50 each tick: a request
# larger than that never passes, hence max_sectors.)
if modprobe null_blk nr_devices=1 gb=1 mbps=2 max_sectors=64 2>/dev/null; then
	set -- $(settled "$DMC_DEST") $(settled /dev/nullb0)
	rmmod null_blk
	fast=$1 fast_rate=$2 slow=$3 slow_rate=$4
	echo "# window settled on: fast destination $fast bytes ($fast_rate B/s), 2 MiB/s destination $slow bytes ($slow_rate B/s)"
	if dmc_between "$fast_rate" $((slow_rate * 20)) 999999999999; then
		smaller() { dmc_between "$fast" 1 999999999 && dmc_between "$slow" 1 $((fast - 1)); }
		dm_test "a slow destination makes the controller back off to a smaller window" smaller
	else
		# A kernel that copies to RAM less than 20 times faster than to 2 MiB/s (a
		# debug kernel, bound by its CPU: 12 MB/s) has no slow destination to
		# compare with: both are slow.
		ktap_test_skip "a slow destination makes the controller back off (the fast destination copies at $fast_rate B/s: not 20 times faster here)"
	fi
else
	ktap_test_skip "a slow destination makes the controller back off (no null_blk)"
fi

# 5. The rate limit: 1 MiB/s, measured over about 8 s (timed by /proc/uptime). The
# copied count moves by whole jobs, so jobs are capped at 128 KiB: one job more or
# less in the window is 1.6% of the 10% allowed (a 512 KiB job would be 6%).
fresh "$DMC_DEST" 0 4 copy_rate_limit 1 copy_batch_size 32 >/dev/null
sleep 1
uptime_cs() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }
c0=$(dmc_copied dmc-ce) t0=$(uptime_cs)
sleep 8
c1=$(dmc_copied dmc-ce) t1=$(uptime_cs)
kib=$(((c1 - c0) * 4 * 100 / (t1 - t0 + (t1 == t0))))
echo "# copied at $kib KiB/s with copy_rate_limit 1 (1024 KiB/s), $c1 of $total regions copied"
dm_test "copy_rate_limit 1: within 10% of 1 MiB/s" dmc_between "$kib" 922 1126
dmsetup remove dmc-ce

# 6. kcopyd's throttle, a module parameter under two names (the C module's name
# too), 100 by default. Copies of one region, 4 at a time, over the 5 ms source:
# about 2 s of copying at 100% gives a count to compare with, well short of all.
P=/sys/module/dm_clone_rs/parameters
throttle_default() { [ "$(cat $P/copy_throttle)" = 100 ] && [ "$(cat $P/clone_hydration_throttle)" = 100 ]; }
dm_test "copy_throttle and clone_hydration_throttle exist, 100 by default" throttle_default
refuses() {
	for v in 0 101 x; do
		if echo "$v" >$P/copy_throttle 2>/dev/null; then
			echo "# copy_throttle took $v"
			return 1
		fi
	done
	[ "$(cat $P/copy_throttle)" = 100 ]
}
dm_test "copy_throttle refuses 0, 101 and a word, and keeps its value" refuses
# copied_in_2s: regions a fresh clone copies in its first 2 s.
copied_in_2s() {
	fresh "$DMC_DEST" 0 4 copy_threshold 4 copy_batch_size 1 >/dev/null || return 1
	sleep 2
	dmc_copied dmc-ce
	dmsetup remove dmc-ce
}
full=$(copied_in_2s)
echo 25 >$P/clone_hydration_throttle
alias_sets() { [ "$(cat $P/copy_throttle)" = 25 ]; }
dm_test "clone_hydration_throttle sets the same percentage" alias_sets
slowed=$(copied_in_2s)
echo 100 >$P/copy_throttle
echo "# copied in 2 s: $full at copy_throttle 100, $slowed at 25"
halved() { dmc_between "$full" 100 $((total - 1)) && dmc_between "$slowed" 1 $((full / 2)); }
dm_test "copy_throttle 25 copies less than half as much as 100, and still copies" halved
ktap_finished

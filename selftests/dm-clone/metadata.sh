#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Persistent metadata (behaviour 4): the superblock is the C target's v1 format;
# a write followed by fsync, or written with FUA, is on disk before it returns
# (the metadata device is failed right after, as a crash would, before the next
# periodic commit: a write without fsync is lost then); other marks are
# committed by the periodic commit within about a second; reloading the
# table resumes the copy where it stopped, and the data stays right, also
# across a reload of a live table; status does not wait for a commit running.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_setup
dm_require_modules dm_delay
ktap_set_plan 32

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
total=$((len / 8))
msect=$(dm_sectors "$DMC_META")
# The metadata through a linear device, so that it can be made to fail.
dmc_linear dmc-zmeta "$DMC_META" || ktap_exit_fail_msg "cannot make the metadata device"
M=/dev/mapper/dmc-zmeta
table="0 $len clone $M $DMC_DEST $DMC_SRC 8 1 no_background_copy"
dm_test "create on blank metadata" dmsetup create dmc-md --table "$table"
C=/dev/mapper/dmc-md

# The superblock (block 0), read directly.
dmsetup status dmc-md >/dev/null # commits
dm_test "superblock magic is 0x8af27f64" [ "$(dmc_le "$DMC_META" 32 8)" = $((0x8af27f64)) ]
dm_test "superblock version is 1" [ "$(dmc_le "$DMC_META" 40 4)" = 1 ]
dm_test "superblock blocknr is 0" [ "$(dmc_le "$DMC_META" 8 8)" = 0 ]
dm_test "superblock region size is 8 sectors" [ "$(dmc_le "$DMC_META" 172 8)" = 8 ]
dm_test "superblock target size is $len sectors" [ "$(dmc_le "$DMC_META" 180 8)" = "$len" ]
dm_test "superblock bitset root is a metadata block" \
	[ "$(dmc_le "$DMC_META" 188 8)" -gt 0 -a "$(dmc_le "$DMC_META" 188 8)" -lt $((msect / 8)) ]

# crash: fail every metadata I/O, remove the clone (its final commit fails), then
# bring the metadata back and reload: what was committed before is all there is.
# The crash starts when the metadata device is suspended (crash_begin): I/O from
# then on waits, and meets the error table.
crash_begin() { dmsetup suspend dmc-zmeta; }
crash_finish_and_reload() {
	dmsetup load dmc-zmeta --table "0 $msect error" && dmsetup resume dmc-zmeta &&
		dmsetup remove dmc-md &&
		dmc_swap dmc-zmeta "0 $msect linear $DMC_META 0" &&
		dmsetup create dmc-md --table "$table"
}
crash_and_reload() { crash_begin && crash_finish_and_reload; }

# The periodic commit (every second) would record a write as well as an fsync
# does; so the fsync and FUA checks run right after a periodic commit, and the
# crash must begin within 0.7 s of it, before the next one. A commit is seen as
# writes on the metadata device; a whole-region write (zeroes) just before gives
# it something to write. A write without fsync in the same window is lost: the
# control that shows the window really excludes the periodic commit.
# The window's ends are scripts, so that fio can run them right before and after
# its write (exec_prerun, exec_postrun: its own start-up takes most of a second).
dd if=/dev/zero of=/tmp/dmc-z.bin bs=4096 count=1 2>/dev/null
Z=$(command dmsetup info -c --noheadings -o blkdevname dmc-zmeta)
cat >/tmp/dmc-tick.sh <<EOF
#!/bin/sh
# Dirty region \$1, then return right after the periodic commit writes it out.
writes() { awk '\$3 == "$Z" { print \$8 }' /proc/diskstats; }
w0=\$(writes)
dd if=/tmp/dmc-z.bin of=$C bs=4096 seek="\$1" oflag=direct 2>/dev/null || exit 1
i=0
while [ "\$(writes)" = "\$w0" ]; do
	[ \$i -lt 300 ] || exit 1
	sleep 0.01
	i=\$((i + 1))
done
awk '{ printf "%d\\n", \$1 * 100 }' /proc/uptime >/tmp/dmc-t0
EOF
cat >/tmp/dmc-crash.sh <<EOF
#!/bin/sh
DM_DISABLE_UDEV=1 dmsetup --noudevsync suspend dmc-zmeta &&
	awk '{ printf "%d\\n", \$1 * 100 }' /proc/uptime >/tmp/dmc-t1
EOF
chmod +x /tmp/dmc-tick.sh /tmp/dmc-crash.sh
# in_window <writer...>: the writer runs the tick, its write and the crash.
in_window() {
	rm -f /tmp/dmc-t0 /tmp/dmc-t1
	"$@" || { echo "# failed: $*"; return 1; }
	[ -s /tmp/dmc-t0 ] || { echo "# no periodic commit seen"; return 1; }
	[ -s /tmp/dmc-t1 ] || { echo "# the crash did not begin"; return 1; }
	d=$(($(cat /tmp/dmc-t1) - $(cat /tmp/dmc-t0)))
	echo "# crash began ${d}0 ms after a periodic commit"
	[ "$d" -le 70 ]
}
# write_then_crash <region to dirty> <4 KiB block> [dd options]: write
# /tmp/dmc-w.bin at the block, right after a periodic commit; then crash.
write_then_crash() {
	local tick=$1 at=$2
	shift 2
	/tmp/dmc-tick.sh "$tick" &&
		dd if=/tmp/dmc-w.bin of=$C bs=4096 seek="$at" oflag=direct "$@" 2>/dev/null &&
		/tmp/dmc-crash.sh
}
# fua_then_crash <region to dirty> <4 KiB block>: the same with a FUA write of
# zeroes: fio, O_DIRECT + O_DSYNC through libaio (busybox dd has no
# oflag=dsync; a synchronous O_DSYNC write to a block device is also followed by
# a flush, which would commit by itself: an asynchronous one is only FUA).
fua_then_crash() {
	(cd /tmp && fio --name=fua --filename=$C --rw=write --bs=4k --size=4k \
		--offset=$(($2 * 4096)) --direct=1 --sync=dsync --ioengine=libaio --iodepth=1 --zero_buffers \
		--exec_prerun="/tmp/dmc-tick.sh $1" --exec_postrun=/tmp/dmc-crash.sh >/dev/null 2>&1)
}
dd if=/dev/urandom of=/tmp/dmc-w.bin bs=4096 count=1 2>/dev/null

# Control: a 4 KiB write (a whole region) without fsync, then at once the crash.
dm_test "crash right after a write without fsync, in the window" in_window write_then_crash 90 60
dm_test "reload" crash_finish_and_reload
dm_test "the write is not recorded: only the periodic commit's region (1)" [ "$(dmc_copied dmc-md)" = 1 ]
dm_test "its region reads as the source" dmc_same $C 4096 1 60 /tmp/dmc-src.img 60

# A 4 KiB write with fsync, then at once the crash.
dm_test "crash right after a write + fsync, in the window" in_window write_then_crash 110 100 conv=fsync
dm_test "reload" crash_finish_and_reload
dm_test "the fsync'd region is recorded (3 regions copied)" [ "$(dmc_copied dmc-md)" = 3 ]
dm_test "and reads back as written" dmc_same $C 4096 1 100 /tmp/dmc-w.bin 0

# A write with O_DSYNC (a FUA write of a whole region: it goes straight to the
# destination and completes after the commit that records its region), then at
# once the crash.
dm_test "crash right after a FUA write (fio, libaio, O_DIRECT + O_DSYNC), in the window" \
	in_window fua_then_crash 140 150
dm_test "reload" crash_finish_and_reload
dm_test "the FUA write's region is recorded (5 regions copied)" [ "$(dmc_copied dmc-md)" = 5 ]
dm_test "and reads back as written" dmc_same $C 4096 1 150 /tmp/dmc-z.bin 0

# A FUA write completes only after the commit that records its region: with the
# metadata device stalled (suspended) it waits; when that commit fails it fails,
# and its region reads as the source after a reload (had it succeeded, the
# acknowledged write would be lost).
crash_begin
(cd /tmp && fio --name=fua --filename=$C --rw=write --bs=4k --size=4k \
	--offset=$((160 * 4096)) --direct=1 --sync=dsync --ioengine=libaio --iodepth=1 \
	>/dev/null 2>&1) &
fua=$!
sleep 1.5
dm_test "a FUA write to an uncopied region waits for the commit that records it" kill -0 $fua
dmsetup load dmc-zmeta --table "0 $msect error" && dmsetup resume dmc-zmeta
wait $fua
dm_test "and fails when that commit fails" [ $? != 0 ]
dmsetup remove dmc-md
dmc_swap dmc-zmeta "0 $msect linear $DMC_META 0" && dmsetup create dmc-md --table "$table"
dm_test "after a reload its region reads as the source" dmc_same $C 4096 1 160 /tmp/dmc-src.img 160
dm_test "and 5 regions are copied, as before it" [ "$(dmc_copied dmc-md)" = 5 ]

# A write without fsync: recorded by the periodic commit within about a second.
dd if=/tmp/dmc-w.bin of=$C bs=4096 seek=200 oflag=direct 2>/dev/null
sleep 2.5
dm_test "crash 2.5 s after a write without fsync, reload" crash_and_reload
dm_test "the periodic commit recorded it (6 regions copied)" [ "$(dmc_copied dmc-md)" = 6 ]
# A table loaded but not resumed reports what its constructor read.
dmsetup load dmc-md --table "$table"
f=$(dmsetup status --inactive dmc-md | awk '{ print $7 }')
dmsetup clear dmc-md
dm_test "an inactive table's status counts the copied regions (6)" [ "${f%/*}" = 6 ]
dmsetup remove dmc-md

# Reload resumes: copy part, remove (which commits), reload, finish.
dmc_slow_source 5
table="0 $len clone $M $DMC_DEST /dev/mapper/dmc-zslow 8 0 2 copy_threshold 8"
cp /tmp/dmc-src.img /tmp/dmc-exp.img
for at in 90 110 140 150; do dmc_put /tmp/dmc-z.bin 4096 1 0 /tmp/dmc-exp.img $at; done
dmc_put /tmp/dmc-w.bin 4096 1 0 /tmp/dmc-exp.img 100
dmc_put /tmp/dmc-w.bin 4096 1 0 /tmp/dmc-exp.img 200
dmsetup create dmc-md --table "$table"
dmc_wait_for 60 '[ "$(dmc_copied dmc-md)" -ge 500 ]'
dmsetup suspend dmc-md
n=$(dmc_copied dmc-md)
dmsetup remove dmc-md
# Reloaded with the copy off, so that the count is the one on disk.
dmsetup create dmc-md --table "$(echo "$table" | sed 's/ 8 0 2 / 8 1 no_background_copy 2 /')" &&
	n2=$(dmc_copied dmc-md)
echo "# removed at $n of $total; reloaded at $n2"
# (More than the 6 regions written above: the background copy had copied some.)
where_stopped() { dmc_between "$n" 7 $((total - 1)) && [ "$n2" = "$n" ]; }
dm_test "reload starts where the copy stopped" where_stopped
dmsetup message dmc-md 0 enable_background_copy
# A table reload while the copy runs: the new table is loaded (its constructor
# reads the metadata), then the old one takes a write before the swap.
dmsetup load dmc-md --table "$table"
dd if=/dev/urandom of=/tmp/dmc-r.bin bs=4096 count=1 2>/dev/null
dd if=/tmp/dmc-r.bin of=$C bs=4096 seek=4000 oflag=direct 2>/dev/null
dmc_put /tmp/dmc-r.bin 4096 1 0 /tmp/dmc-exp.img 4000
dm_test "reload: swap to the new table" dmsetup resume dmc-md
dm_test "the new table serves the write the old one took after it was loaded" \
	dmc_same $C 4096 1 4000 /tmp/dmc-r.bin 0
dm_test "and finishes" dmc_wait_copied dmc-md 120
dmsetup remove dmc-md
cmp -s "$DMC_DEST" /tmp/dmc-exp.img
dm_test "destination equals the source plus the writes" [ $? = 0 ]

# A long commit does not block status: with the metadata's writes held by a
# dm-delay (20 s), a write with fsync starts a commit; once its writes are held,
# status must answer while they still are (it commits first only when no commit
# runs, and reads the block counts of the last commit). C's status waits for
# the commit, as ours did: it would answer only once the writes are let go.
# The writes and flushes dm-delay holds (its status: reads, writes, flushes held).
held_writes() { dmsetup status dmc-zmeta | awk '{ print $5 + $6 }'; }
long_commit() {
	dd if=/dev/zero of=$M bs=4096 count=1 oflag=direct 2>/dev/null
	dmsetup create dmc-md --table "$table" || return 1
	dmc_swap dmc-zmeta "0 $msect delay $DMC_META 0 0 $DMC_META 0 20000" || return 1
	dd if=/dev/urandom of=$C bs=4096 count=1 seek=10 oflag=direct conv=fsync 2>/dev/null &
	writer=$!
	i=0
	while [ "$(held_writes)" = 0 ]; do
		[ $i -lt 600 ] || { echo "# no commit started"; break; }
		sleep 0.1
		i=$((i + 1))
	done
	st=$(dmsetup status dmc-md)
	held=$(held_writes)
	dmc_swap dmc-zmeta "0 $msect linear $DMC_META 0"
	wait $writer
	echo "# status while the commit's writes were held: '$st'; $held writes still held after it"
	dmsetup remove dmc-md
	[ "$held" -gt 0 ] && [ "${st##* }" = rw ]
}
dm_test "status answers while a commit's metadata writes are held" long_commit
ktap_finished

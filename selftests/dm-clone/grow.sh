#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Online grow: a clone reloaded with a longer table (same region size, devices
# at least that long) grows at its resume. The source and destination are
# linear views of the RAM disks that grow with it. Proven here:
# - the old regions keep their state and the new ones are uncopied (the copy
#   off: the copied count stays, the total grows), and the size persists over
#   a remove and reload;
# - the old last region, short (4 of its 8 sectors) and copied, gains 4 sectors
#   that are copied from the source at the grow (the destination was filled
#   with another pattern first: without that copy they read as that pattern);
# - a grow while the copy runs and a writer verifies its writes; grow twice;
#   at the end the clone reads as the source plus the writes;
# - the grow's commit is atomic: at every flush point of a grow's metadata
#   writes (dm-log-writes, replayed), and with any subset of the writes after
#   it lost (a volatile cache), the old size or the new one loads intact;
# - a grow none of whose metadata writes reach the disk (dm-flakey drop_writes,
#   then a "crash") leaves the old size with its regions, which loads (this is
#   a lost commit, not a torn one: the replay above is what shows atomicity);
#   metadata writes failing at the grow fail the resume and leave the old size;
# - refusals with their ti->error texts: a shorter table (shrink), another
#   region size, a table longer than the source, a metadata device without
#   room for the new size;
# - the C target opens the grown metadata (a table of the new length) and
#   finishes the copy;
# - clonectl grow refuses while the source has not grown, then grows online;
#   clone_check finds the grown metadata clean, clone_dump shows the new size.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_require_both dm_flakey dm_log_writes
command -v dmc-replay-log >/dev/null || ktap_exit_fail_msg "dmc-replay-log is not in the guest"
dm_brd_setup dmc- 4 "$DMC_DEV_MB" # /dev/ram3: a log of metadata writes
trap 'dm_brd_cleanup; dmc_unload_targets' EXIT
ktap_set_plan 27
dmc_use_target dm_clone_rs || ktap_exit_fail_msg "cannot make dm_clone_rs the clone module"

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
# The destination holds another pattern: a sector never copied reads as it.
tr '\000' '\125' </dev/zero | dd of=$DMC_DEST bs=1M count=$DMC_DEV_MB iflag=fullblock oflag=direct 2>/dev/null
dd if=/dev/zero of=$DMC_META bs=4096 count=1 oflag=direct 2>/dev/null
A=10244 B=20480 C=32768 # sectors: A ends 4 sectors into region 1280
cp /tmp/dmc-src.img /tmp/dmc-exp.img

# views <sectors>: the source and destination views (and the metadata's, over
# dm-flakey for the crash tests, as linear when healthy) at that length.
view() { # view <name> <sectors> <table after the length>
	if dmsetup info "$1" >/dev/null 2>&1; then
		dmsetup suspend "$1" && dmsetup load "$1" --table "0 $2 $3" && dmsetup resume "$1"
	else
		dmsetup create "$1" --table "0 $2 $3"
	fi
}
# The source 5 ms away (dm-delay), so that a copy lasts long enough to grow under it.
views() { view dmc-s "$1" "delay $DMC_SRC 0 5" && view dmc-d "$1" "linear $DMC_DEST 0"; }
meta_linear() { view dmc-m $((DMC_DEV_MB * 2048)) "linear $DMC_META 0"; }
meta_flakey() { # meta_flakey <feature>: every metadata write dropped or failed
	dmsetup suspend dmc-m && dmsetup load dmc-m --table \
		"0 $((DMC_DEV_MB * 2048)) flakey $DMC_META 0 0 3600 1 $1" && dmsetup resume dmc-m
}
table() { echo "0 $1 clone /dev/mapper/dmc-m /dev/mapper/dmc-d /dev/mapper/dmc-s 8 $2"; }
# grow_to <sectors> <args>: suspend the clone, grow the views, load the longer table, resume.
grow_to() {
	dmsetup suspend dmc-g && views "$1" && dmsetup load dmc-g --table "$(table "$1" "$2")" &&
		dmsetup resume dmc-g
}
total() { f=$(dmc_status_field dmc-g 4); echo "${f#*/}"; }
# write <sector> <sectors>: random data through the clone, and into the expected image.
write() {
	dd if=/dev/urandom of=/tmp/dmc-w.bin bs=512 count="$2" 2>/dev/null
	dd if=/tmp/dmc-w.bin of=/dev/mapper/dmc-g bs=512 seek="$1" oflag=direct 2>/dev/null &&
		dmc_put /tmp/dmc-w.bin 512 "$2" 0 /tmp/dmc-exp.img "$1"
}
# reads_as_expected <sectors>: the clone's first <sectors> equal the expected image's.
reads_as_expected() {
	dd if=/dev/mapper/dmc-g bs=512 count="$1" iflag=direct 2>/dev/null >/tmp/dmc-got.bin
	head -c $(($1 * 512)) /tmp/dmc-exp.img | cmp - /tmp/dmc-got.bin
}

views $A && meta_linear || ktap_exit_fail_msg "cannot make the views"
dmsetup create dmc-g --table "$(table $A "0 2 hydration_threshold 64")" ||
	ktap_exit_fail_msg "cannot create the clone"
write 100 16 # two regions written, partly
copies_all() { dmc_serves dm_clone_rs && dmc_wait_copied dmc-g 120; }
dm_test "a clone of $A sectors (its last region short), ours, copies all of it" copies_all
write 10240 4 # the short last region, written
dmsetup message dmc-g 0 disable_background_copy

dm_test "grown to $B sectors with the copy off: the resume succeeds" grow_to $B "1 no_background_copy"
dm_test "the old regions keep their state, the new ones are uncopied (1281/2560)" \
	[ "$(dmc_status_field dmc-g 4)" = "1281/2560" ]
dm_test "the short last region's gained sectors were copied from the source" \
	dmc_same /dev/mapper/dmc-g 512 8 10240 /tmp/dmc-exp.img 10240
dm_test "the clone reads as the source plus the writes, over the new length" reads_as_expected $B

dmsetup remove dmc-g
dmsetup create dmc-g --table "$(table $B "1 no_background_copy")"
dm_test "the new size persists over a remove and reload (1281/2560)" \
	[ "$(dmc_status_field dmc-g 4)" = "1281/2560" ]
dmsetup remove dmc-g
dm_refused "a shorter table is refused: a clone cannot shrink" \
	"Target size smaller than the one in metadata: a clone cannot shrink" dmc-g "$(table $A "")"
dm_refused "another region size is refused" \
	"Region and/or target size don't match the ones in metadata" dmc-g \
	"0 $B clone /dev/mapper/dmc-m /dev/mapper/dmc-d /dev/mapper/dmc-s 16"

view dmc-d $C "linear $DMC_DEST 0" # the destination has grown, not the source
dm_refused "a table longer than the source is refused" \
	"Device size larger than source device" dmc-g "$(table $C "")"

# A metadata device with no room: 16 blocks, formatted for 8 regions over error
# devices, then a table of 2^20 regions (33 array blocks).
dmsetup create dmc-zs --table "0 $((1 << 23)) error"
dmsetup create dmc-zd --table "0 $((1 << 23)) error"
dmsetup create dmc-mm --table "0 128 linear $DMC_META $((DMC_DEV_MB * 2048 - 128))"
dd if=/dev/zero of=/dev/mapper/dmc-mm bs=4096 count=1 oflag=direct 2>/dev/null
dmsetup create dmc-g --table "0 64 clone /dev/mapper/dmc-mm /dev/mapper/dmc-zd /dev/mapper/dmc-zs 8 1 no_background_copy" &&
	dmsetup remove dmc-g
dm_refused "a grow the metadata device has no room for is refused" \
	"Metadata device too small for the new size" dmc-g \
	"0 $((1 << 23)) clone /dev/mapper/dmc-mm /dev/mapper/dmc-zd /dev/mapper/dmc-zs 8 1 no_background_copy"
dmsetup remove dmc-mm dmc-zd dmc-zs

# A crash at the grow before any of its metadata writes reached the disk: every
# metadata write dropped from the grow's commit on.
dmsetup create dmc-g --table "$(table $B "1 no_background_copy")"
meta_flakey drop_writes
grow_to $C "1 no_background_copy"
dm_test "with the metadata's writes dropped the grow seems done (4096 regions)" [ "$(total)" = 4096 ]
write 30000 8 # a write to a new region: its record is lost too
dmsetup remove dmc-g # the crash: nothing of the grow reached the metadata
meta_linear
dmsetup create dmc-g --table "$(table $B "1 no_background_copy")"
after_crash() {
	[ "$(dmc_status_field dmc-g 4)" = "1281/2560" ] && reads_as_expected $B
}
dm_test "after the crash the old size loads, with its regions and data (1281/2560)" after_crash
# The metadata's writes fail at the grow: the resume fails, nothing changes.
meta_flakey error_writes
dm_dmesg_mark grow-fail
grow_to $C "1 no_background_copy" 2>/dev/null
rc=$?
said=$(dm_dmesg_since grow-fail | grep -c 'cannot grow the clone')
failed_and_said() { [ "$rc" != 0 ] && [ "$said" -ge 1 ]; }
dm_test "with the metadata's writes failing the grow's resume fails, logged" failed_and_said
dmsetup remove dmc-g 2>/dev/null || { dmsetup resume dmc-g; dmsetup remove dmc-g; }
meta_linear
dmsetup create dmc-g --table "$(table $B "1 no_background_copy")"
dm_test "after the failed grow the old size loads, with its regions (1281/2560)" \
	[ "$(dmc_status_field dmc-g 4)" = "1281/2560" ]

# The write to sector 30000 was lost with the crash (it was past the old end):
# the expected image has the source there again.
dd if=/tmp/dmc-src.img of=/tmp/dmc-exp.img bs=512 skip=30000 seek=30000 count=8 conv=notrunc 2>/dev/null
# Grow while the copy runs and a writer verifies its writes (8 KiB at a time at
# random places of the old length, each read back).
dmsetup message dmc-g 0 copy_threshold 2
dmsetup message dmc-g 0 enable_background_copy
rm -f /tmp/dmc-stop /tmp/dmc-bad
(
	i=0
	while [ ! -e /tmp/dmc-stop ]; do
		s=$(( ($(od -An -N2 -tu2 /dev/urandom) % 2400) * 8 ))
		dd if=/dev/urandom of=/tmp/dmc-v.bin bs=512 count=16 2>/dev/null
		dd if=/tmp/dmc-v.bin of=/dev/mapper/dmc-g bs=512 seek=$s oflag=direct 2>/dev/null &&
			dd if=/dev/mapper/dmc-g bs=512 skip=$s count=16 iflag=direct 2>/dev/null | cmp -s - /tmp/dmc-v.bin ||
			echo "write or read back failed at $s" >>/tmp/dmc-bad
		dmc_put /tmp/dmc-v.bin 512 16 0 /tmp/dmc-exp.img $s
		i=$((i + 1))
	done
	echo $i >/tmp/dmc-writes
) &
sleep 0.5
during_copy() {
	before=$(dmc_copied dmc-g)
	grow_to $C "0 2 copy_threshold 2" || return 1
	after=$(dmc_copied dmc-g)
	echo "# copied: $before of 2560 before the grow, $after of 4096 after"
	[ "$before" -gt 1281 ] && [ "$before" -lt 2560 ]
}
dm_test "grown to $C sectors while the copy runs and a writer verifies" during_copy
sleep 0.5
touch /tmp/dmc-stop
wait
dm_test "the writer's $(cat /tmp/dmc-writes) writes (at least one) each read back" \
	sh -c "[ ! -e /tmp/dmc-bad ] && [ $(cat /tmp/dmc-writes) -ge 1 ]"
dm_test "the total is now 4096 regions" [ "$(total)" = 4096 ]
dm_test "the copy finishes" dmc_wait_copied dmc-g 120
dm_test "the clone reads as the source plus every write" reads_as_expected $C
dmsetup remove dmc-g

# The C target opens the grown metadata: a fresh grow with the copy off, then C.
dd if=/dev/zero of=$DMC_META bs=4096 count=1 oflag=direct 2>/dev/null
tr '\000' '\125' </dev/zero | dd of=$DMC_DEST bs=1M count=$DMC_DEV_MB iflag=fullblock oflag=direct 2>/dev/null
cp /tmp/dmc-src.img /tmp/dmc-exp.img
views $A
dmsetup create dmc-g --table "$(table $A "0 2 hydration_threshold 64")"
dmc_wait_copied dmc-g 120
grow_to $B "1 no_background_copy"
write 15000 8
dmsetup remove dmc-g
dmc_use_target dm_clone || ktap_exit_fail_msg "cannot make dm_clone the clone module"
dmsetup create dmc-g --table "$(table $B "0 2 hydration_threshold 64")"
c_finishes() { dmc_serves dm_clone && dmc_wait_copied dmc-g 120; }
dm_test "C opens the grown metadata and finishes the copy" c_finishes
dm_test "C's clone reads as the source plus the write" reads_as_expected $B
dmsetup remove dmc-g

# clonectl grow: refused until the source has grown, then online; the grown
# metadata checks clean and its dump has the new size.
dmc_use_target dm_clone_rs || ktap_exit_fail_msg "cannot make dm_clone_rs the clone module"
dd if=/dev/zero of=$DMC_META bs=4096 count=1 oflag=direct 2>/dev/null
views $A
dmsetup create dmc-g --table "$(table $A "1 no_background_copy")"
out=$(clonectl grow dmc-g 2>&1)
rc=$?
echo "# $out"
dm_test "clonectl grow is refused while the source has not grown" \
	sh -c "[ $rc = 1 ] && echo '$out' | grep -q 'grow the source first'"
views $B
out=$(clonectl grow dmc-g 2>&1)
echo "# $out"
dm_test "clonectl grow grows it to the source's size" [ "$(total)" = 2560 ]
dmsetup remove dmc-g
dump_new_size() {
	clone_check /dev/mapper/dmc-m || return 1
	clone_dump /dev/mapper/dmc-m | head -3 | sed 's/^/# /'
	clone_dump /dev/mapper/dmc-m | grep -q "target_size=\"$B\" nr_regions=\"2560\""
}
dm_test "the grown metadata checks clean and its dump has the new size" dump_new_size

# A crash at every point of a grow's metadata writes: the metadata device is a
# dm-log-writes device during a grow from A to B (the copy done for A), then
# its image before the grow plus the log up to each flush or FUA write is
# loaded. Each state has the old size or the new one, never a mix: the
# superblock's target size is A or B, clone_check finds it clean (the bitset
# has as many bits as the size says), and the clone loads at that size with
# A's 1281 regions copied and reads as the source.
LOGDEV=/dev/ram3
dd if=/dev/zero of=$DMC_META bs=4096 count=1 oflag=direct 2>/dev/null
cp /tmp/dmc-src.img /tmp/dmc-exp.img
views $A
dmsetup create dmc-g --table "$(table $A "0 2 hydration_threshold 64")"
dmc_wait_copied dmc-g 120
dmsetup remove dmc-g
dmsetup remove dmc-m
dd if=$DMC_META of=/tmp/dmc-m0.img bs=1M iflag=direct 2>/dev/null
dd if=/dev/zero of=$LOGDEV bs=1M count=1 oflag=direct 2>/dev/null
views $B
logged_grow() {
	dmsetup create dmc-m --table "0 $((DMC_DEV_MB * 2048)) log-writes $DMC_META $LOGDEV" &&
		dmsetup create dmc-g --table "$(table $B "1 no_background_copy")" &&
		dmsetup remove dmc-g && dmsetup remove dmc-m &&
		dmc-replay-log list $LOGDEV >/tmp/dmc-log.txt &&
		echo "# $(wc -l </tmp/dmc-log.txt) metadata writes logged, $(grep -c -E ' (flush|write,fua)' \
			/tmp/dmc-log.txt) flush or FUA points"
}
dm_test "a grow from $A to $B sectors on a logged metadata device" logged_grow
# state_ok <entry>: the state replayed up to <entry> is the old size or the new one.
state_ok() {
	size=$(dmc_le $DMC_META 180 8)
	case $size in
	"$A") want=1281/1281 olds=$((olds + 1)) ;;
	"$B") want=1281/2560 news=$((news + 1)) ;;
	*) echo "# entry $1: target size $size"; return 1 ;;
	esac
	clone_check -q $DMC_META || { echo "# entry $1: clone_check finds damage"; return 1; }
	meta_linear && dmsetup create dmc-g --table "$(table "$size" "1 no_background_copy")" ||
		{ echo "# entry $1: size $size does not load"; return 1; }
	got=$(dmc_status_field dmc-g 4)
	reads_as_expected "$size" || got="$got, data differs"
	dmsetup remove dmc-g && dmsetup remove dmc-m
	[ "$got" = "$want" ] || { echo "# entry $1: size $size, $got, not $want"; return 1; }
}
replay_each() {
	olds=0 news=0 bad=0 n=0
	for entry in $(grep -E ' (flush|write,fua)' /tmp/dmc-log.txt | cut -d' ' -f1); do
		dd if=/tmp/dmc-m0.img of=$DMC_META bs=1M oflag=direct 2>/dev/null
		dmc-replay-log replay $LOGDEV $DMC_META --from 0 --to "$entry" >/dev/null || return 1
		n=$((n + 1))
		state_ok "$entry" || bad=$((bad + 1))
	done
	echo "# $n points: $olds with the old size, $news with the new one, $bad wrong"
	[ "$bad" = 0 ] && [ "$olds" -ge 1 ] && [ "$news" -ge 1 ]
}
dm_test "a crash at any flush point of the grow leaves the old size or the new one, intact" replay_each
# The wider model: a crash state is the log up to a flush point (or its start)
# plus any subset of the metadata writes after it and before the next flush (a
# volatile cache loses any of them): every subset of a window of up to K
# writes, else N random ones, the empty one and the whole.
SUB_K=$(dmc_form 8 2 6) SUB_N=$(dmc_form 64 3 16)
subsets_each() {
	olds=0 news=0 bad=0 n=0
	dmc-replay-log windows $LOGDEV | awk '$4 > 0 { print $1 }' >/tmp/dmc-windows || return 1
	for p in $(cat /tmp/dmc-windows); do
		dmc-replay-log states $LOGDEV --point "$p" --max-exhaustive $SUB_K --random $SUB_N \
			--seed "${DMC_SEED:-0}" >/tmp/dmc-states || return 1
		to="--to $p"
		[ "$p" = - ] && to=""
		while read -r id with; do
			dd if=/tmp/dmc-m0.img of=$DMC_META bs=1M oflag=direct 2>/dev/null
			# shellcheck disable=SC2086 # $to is an option and its value, or nothing
			dmc-replay-log replay $LOGDEV $DMC_META $to --with "$with" >/dev/null || return 1
			n=$((n + 1))
			state_ok "$p state $id" || bad=$((bad + 1))
		done </tmp/dmc-states
	done
	echo "# $n states in $(wc -l </tmp/dmc-windows) windows: $olds with the old size," \
		"$news with the new one, $bad wrong"
	[ "$bad" = 0 ] && [ "$n" -gt "$(wc -l </tmp/dmc-windows)" ] && [ "$olds" -ge 1 ] && [ "$news" -ge 1 ]
}
dm_test "any subset of the grow's metadata writes after a flush point leaves the old size or the new one" \
	subsets_each
dmsetup remove dmc-s dmc-d
ktap_finished

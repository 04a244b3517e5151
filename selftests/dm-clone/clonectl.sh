#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# clonectl, the lifecycle command, with our target and with C's: create checks
# the devices and refuses bad ones saying why (a metadata device too small, with
# the size it needs; a destination smaller than the source; the same device
# twice), prints the table it would load (--dry-run, upstream names), creates
# the clone; status (words and JSON) agrees with the kernel's status line; pause
# stops the copy and resume restarts it; set changes the threshold; wait returns
# when all is copied (exit 3 on its timeout), status --watch follows the copy
# to its end with a line per interval; create refuses a destination held by
# another device, and a source held by one unless --force, and a metadata
# device holding a clone's metadata or a file system unless --force (both
# targets), and a destination holding a file system unless --force; finish
# swaps in a linear table
# while a reader keeps reading (no I/O fails) and the device reads as the source
# plus the writes; exit codes 1 and 2 for a missing device and bad usage.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
command -v clonectl >/dev/null || ktap_exit_fail_msg "clonectl is not in the guest"
dmc_require_both dm_delay
dm_brd_setup dmc- 3 "$DMC_DEV_MB"
ktap_set_plan 37

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
# The source's first 68 KiB hold no signature create looks for (random bytes
# would, once in some ten thousand runs, after a copy to the destination).
awk 'BEGIN { for (i = 0; i < 68 * 1024; i++) printf "Z" }' >/tmp/dmc-zz
dd if=/tmp/dmc-zz of=/tmp/dmc-src.img conv=notrunc 2>/dev/null &&
	dd if=/tmp/dmc-zz of=$DMC_SRC bs=4096 oflag=direct 2>/dev/null ||
	ktap_exit_fail_msg "cannot write the source's start"
len=$(dm_sectors "$DMC_SRC")
devno() { set -- $(stat -L -c '%t %T' "$1"); echo "$((0x$1)):$((0x$2))"; }
M=$(devno $DMC_META) D=$(devno $DMC_DEST) S=$(devno $DMC_SRC)
args="--source $DMC_SRC --dest $DMC_DEST --metadata $DMC_META"
dmsetup create dmc-small-meta --table "0 64 linear $DMC_META 0"
dmsetup create dmc-small-dest --table "0 $((len / 2)) linear $DMC_DEST 0"
dmc_use_target dm_clone_rs || ktap_exit_fail_msg "cannot load dm_clone_rs"

out=$(clonectl create c1 $args --region-size 4k --copy-threshold 4 --dry-run)
echo "# $out"
dm_test "create --dry-run prints the table, with upstream names" \
	[ "$out" = "0 $len clone $M $D $S 8 0 2 hydration_threshold 4" ]
# A full standard output (the table would be lost): exit 2, said on stderr, no
# panic (it was exit 101 once).
dry_full() {
	clonectl create c1 $args --region-size 4k --dry-run >/dev/full 2>/tmp/dmc-err
	st=$?
	sed 's/^/# /' /tmp/dmc-err
	[ $st = 2 ] && grep -q "^clonectl: cannot write to standard output: " /tmp/dmc-err
}
dm_test "create --dry-run to a full standard output: exit 2, said on stderr" dry_full
refused() { # refused <text> <args...>: exit 1 and the text said
	want=$1
	shift
	out=$(clonectl create c1 "$@" 2>&1)
	rc=$?
	echo "# $out"
	[ $rc = 1 ] && echo "$out" | grep -q "$want"
}
dm_test "a metadata device too small is refused with the size it needs" \
	refused "needs at least" --source $DMC_SRC --dest $DMC_DEST --metadata /dev/mapper/dmc-small-meta
dm_test "a destination smaller than the source is refused" \
	refused "fewer than the source" --source $DMC_SRC --dest /dev/mapper/dmc-small-dest --metadata $DMC_META
dm_test "the same device twice is refused" refused "same device" --source $DMC_SRC --dest $DMC_SRC --metadata $DMC_META
dm_test "a region size that is not a power of two is refused" refused "power of two" $args --region-size 12k
# (The small devices hold the metadata and destination devices: gone first.)
dmsetup remove dmc-small-meta dmc-small-dest
dmsetup create dmc-hold --table "0 8 linear $DMC_DEST 0"
dm_test "a destination held by another device is refused, naming it" refused "destination .* is in use (held by dm-[0-9]* (dmc-hold))" $args
dmsetup remove dmc-hold
dmsetup create dmc-hold --table "0 8 linear $DMC_SRC 0"
dm_test "a source held by another device is refused without --force" refused "source .* is in use (held by dm-[0-9]* (dmc-hold)).*give --force" $args
dm_test "nothing was created by the refusals" sh -c "! dmsetup info c1 >/dev/null 2>&1"
dd if=/dev/zero of=$DMC_META bs=4096 count=1 oflag=direct 2>/dev/null
forced() {
	out=$(clonectl create c1 $args --region-size 4k --no-copy --force 2>&1) || return 1
	echo "# $out"
	echo "$out" | grep -q "warning: source .* is in use (held by" && dmsetup remove c1
}
dm_test "with --force a source held by another device is taken, with a warning" forced
dmsetup remove dmc-hold

# What the metadata device holds: a clone's metadata (one made by <module> and
# removed), refused, nothing created; with --force taken (resuming that clone);
# an ext4 file system refused, naming it; zeroed, taken.
existing() { # <module>
	dmc_use_target "$1" || return 1
	dd if=/dev/zero of=$DMC_META bs=4096 count=1 oflag=direct 2>/dev/null
	clonectl create c1 $args --region-size 4k --no-copy >/dev/null && dmc_serves "$1" &&
		dmsetup remove c1 || return 1
	refused "metadata device $DMC_META holds a clone's metadata (region size 8 sectors" \
		$args --region-size 4k --no-copy || { dmsetup remove c1 2>/dev/null; return 1; }
	! dmsetup info c1 >/dev/null 2>&1 || { echo "# created anyway"; dmsetup remove c1; return 1; }
	out=$(clonectl create c1 $args --region-size 4k --no-copy --force 2>&1) &&
		echo "$out" | grep -q "warning: metadata device .* holds a clone's metadata" &&
		dmc_serves "$1" && dmsetup remove c1 ||
		{ echo "# --force: $out"; dmsetup remove c1 2>/dev/null; return 1; }
	mkfs.ext4 -q -F $DMC_META >/dev/null 2>&1 || return 1
	refused "metadata device $DMC_META holds an ext2/ext3/ext4 file system" \
		$args --region-size 4k --no-copy || { dmsetup remove c1 2>/dev/null; return 1; }
	! dmsetup info c1 >/dev/null 2>&1 || { echo "# created anyway"; dmsetup remove c1; return 1; }
	dd if=/dev/zero of=$DMC_META bs=4096 count=1 oflag=direct 2>/dev/null
	clonectl create c1 $args --region-size 4k --no-copy >/dev/null && dmsetup remove c1
}
for m in dm_clone_rs dm_clone; do
	dm_test "$m: create refuses a metadata device holding a clone's metadata or a file system" \
		existing $m
done
# A destination holding a file system: refused, naming it, nothing created;
# with --force taken, with a warning.
dest_fs() {
	mkfs.ext4 -q -F $DMC_DEST >/dev/null 2>&1 || return 1
	dd if=/dev/zero of=$DMC_META bs=4096 count=1 oflag=direct 2>/dev/null
	refused "destination $DMC_DEST holds an ext2/ext3/ext4 file system: the copy would overwrite it" \
		$args --region-size 4k --no-copy || { dmsetup remove c1 2>/dev/null; return 1; }
	! dmsetup info c1 >/dev/null 2>&1 || { echo "# created anyway"; dmsetup remove c1; return 1; }
	out=$(clonectl create c1 $args --region-size 4k --no-copy --force 2>&1) &&
		echo "$out" | grep -q "warning: destination .* holds an ext2/ext3/ext4 file system" &&
		dmsetup remove c1 || { echo "# --force: $out"; dmsetup remove c1 2>/dev/null; return 1; }
	dd if=/dev/zero of=$DMC_DEST bs=1M count=1 oflag=direct 2>/dev/null
	dd if=/dev/zero of=$DMC_META bs=4096 count=1 oflag=direct 2>/dev/null
}
dm_test "create refuses a destination holding a file system unless --force" dest_fs
dmc_use_target dm_clone_rs || ktap_exit_fail_msg "cannot load dm_clone_rs"

dd if=/dev/zero of=$DMC_META bs=4096 count=1 oflag=direct 2>/dev/null
dmc_slow_source 2
args_slow="--source /dev/mapper/dmc-zslow --dest $DMC_DEST --metadata $DMC_META"
# The JSON's copied and total regions against dmsetup's, read just after (the copy
# goes on: at most a few regions apart).
json_agrees() {
	json=$(clonectl status c1 --json --interval 0) || return 1
	k=$(dmc_status_field c1 4)
	echo "# $json"
	echo "# kernel: $k"
	jc=$(echo "$json" | sed 's/.*"copied":\([0-9]*\),"regions":\([0-9]*\).*/\1 \2/')
	set -- $jc
	[ "$1/$2" = "$k" ] && echo "$json" | grep -q '"mode":"rw"'
}
life() { # life <module>: the whole lifecycle on one target
	m=$1
	dmc_use_target $m || ktap_exit_fail_msg "cannot make $m the clone module"
	dd if=/dev/zero of=$DMC_META bs=4096 count=1 oflag=direct 2>/dev/null
	created() { clonectl create c1 $args_slow --region-size 4k --copy-threshold 4 && dmc_serves $m; }
	dm_test "$m: create (served by $m)" created
	dmsetup mknodes c1
	dmsetup table c1 | sed 's/^/# table: /'
	clonectl pause c1
	sleep 0.5
	dm_test "$m: status --json agrees with the kernel's status line" json_agrees
	a=$(dmc_copied c1); sleep 1; b=$(dmc_copied c1)
	dm_test "$m: pause stops the background copy ($a, then $b)" \
		sh -c "[ $b -le \$(( $a + 4 )) ] && dmsetup status c1 | grep -Eq 'no_(hydration|background_copy)'"
	clonectl wait c1 --timeout 0.5
	dm_test "$m: wait times out with exit 3 while paused" [ $? = 3 ]
	clonectl set c1 copy_threshold=8
	dm_test "$m: set copy_threshold=8 reaches the target" sh -c "dmsetup status c1 | grep -Eq '(copy|hydration)_threshold 8'"
	# Two at a time: a copy of a few seconds, for the watch to see it going.
	clonectl set c1 copy_threshold=2
	clonectl resume c1
	clonectl status c1 --watch --interval 0.5 >/tmp/dmc-watch 2>&1 &
	watcher=$!
	dd if=/dev/urandom of=/tmp/dmc-w.img bs=4096 count=8 2>/dev/null
	dd if=/tmp/dmc-w.img of=/dev/mapper/c1 bs=4096 seek=100 oflag=direct 2>/dev/null
	dm_test "$m: wait returns once every region is copied" clonectl wait c1 --timeout 300
	watched() {
		wait $watcher || return 1
		sed 's/^/# watch: /' /tmp/dmc-watch | tail -4
		total=$(dmc_status_field c1 4)
		[ "$(wc -l </tmp/dmc-watch)" -ge 2 ] && grep -q "MiB/s, about" /tmp/dmc-watch &&
			[ "$(tail -1 /tmp/dmc-watch)" = "c1: $total regions copied (100.0%)" ]
	}
	dm_test "$m: status --watch followed the copy to its end" watched
	# A reader through the finish (the swap): none of its reads may fail. (Started
	# after the wait: the C target copies only while no user I/O is in flight.)
	rm -f /tmp/dmc-stop /tmp/dmc-reader
	( while [ ! -e /tmp/dmc-stop ]; do dd if=/dev/mapper/c1 of=/dev/null bs=64k iflag=direct 2>/dev/null || echo fail >>/tmp/dmc-reader; done ) &
	sleep 0.3
	dm_test "$m: finish swaps in a linear table" clonectl finish c1 --timeout 60
	touch /tmp/dmc-stop
	wait
	dm_test "$m: the reader saw no failed read" [ ! -e /tmp/dmc-reader ]
	dm_test "$m: the device is now linear on the destination" \
		sh -c "dmsetup table c1 | grep -q '^0 $len linear $D 0\$'"
	cp /tmp/dmc-src.img /tmp/dmc-expect.img
	dd if=/tmp/dmc-w.img of=/tmp/dmc-expect.img bs=4096 seek=100 conv=notrunc 2>/dev/null
	dm_test "$m: it reads as the source plus the writes" \
		sh -c "dd if=/dev/mapper/c1 bs=1M iflag=direct 2>/dev/null | cmp -s - /tmp/dmc-expect.img"
	dmsetup remove c1
	rm -f /tmp/dmc-stop
}
life dm_clone_rs
life dm_clone
out=$(clonectl status nosuch 2>&1)
rc=$?
echo "# $out"
dm_test "a missing device: exit 1, named" \
	sh -c '[ "$1" = 1 ] && printf "%s\n" "$2" | grep -qx "clonectl: no device-mapper device is named nosuch (see clonectl list)"' \
	sh "$rc" "$out"

clonectl >/dev/null 2>&1
dm_test "no command: exit 2" [ $? = 2 ]
dmc_unload_targets
ktap_finished

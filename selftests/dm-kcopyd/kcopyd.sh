#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# kcopyd through the Rust abstraction: many concurrent copy jobs produce the
# source's bytes, a zero job zeroes exactly its range, a source read error
# (dm-dust bad block) reaches the job's completion, a bad message is refused,
# and removing the device while jobs run waits for them (no oops, no leak:
# the kernel log checker and, on the debug kernel, KASAN/kmemleak watch).
. "$(dirname "$0")/../lib/dm.sh"

MB=32
ktap_print_header
dm_require_modules dm_kcopyd_test dm_dust dm_delay
dm_brd_setup kc- 2 $MB
ktap_set_plan 9

dd if=/dev/urandom of=/tmp/kc-src.img bs=1M count=$MB 2>/dev/null
dd if=/tmp/kc-src.img of=/dev/ram0 bs=1M oflag=direct 2>/dev/null
n=$(dm_sectors /dev/ram0)

# status fields: <started> <completed> <read errors> <write errors>
kc_field() { dmsetup status "$1" | awk -v f="$2" '{ print $(3 + f) }'; }
kc_wait() { # kc_wait <device> <jobs>: wait until <jobs> completed
	i=0
	while [ "$(kc_field "$1" 2)" != "$2" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(kc_field "$1" 2)" = "$2" ]
}

dmsetup create kc-t --table "0 $n kcopyd_test /dev/ram0 /dev/ram1"
dmsetup message kc-t 0 copy 0 "$n" 64
dm_test "64 concurrent copy jobs complete" kc_wait kc-t 64
dm_test "no read or write errors reported" [ "$(kc_field kc-t 3) $(kc_field kc-t 4)" = "0 0" ]
dm_test "destination equals the source" dm_cmp_direct /dev/ram1 /tmp/kc-src.img

# Zero 1 MiB at 2 MiB of the destination.
dmsetup message kc-t 0 zero 4096 2048
kc_wait kc-t 65
cp /tmp/kc-src.img /tmp/kc-expect.img
dd if=/dev/zero of=/tmp/kc-expect.img bs=1M seek=2 count=1 conv=notrunc 2>/dev/null
dm_test "a zero job zeroes exactly its range" dm_cmp_direct /dev/ram1 /tmp/kc-expect.img

dm_dmesg_mark bad
dmsetup message kc-t 0 frobnicate 1 2 2>/dev/null
rc=$?
dm_test "unknown message refused with its usage text" \
	sh -c "[ $rc != 0 ] && dmesg | sed -n '/dm-mark $$ bad\$/,\$p' | grep -q 'expected: copy'"
dmsetup remove kc-t

# A bad block on the source (dm-dust, 512-byte blocks): the job reading it fails.
dmsetup create kc-dust --table "0 $n dust /dev/ram0 0 512"
dmsetup message kc-dust 0 addbadblock 100 >/dev/null
dmsetup message kc-dust 0 enable >/dev/null
dmsetup create kc-e --table "0 $n kcopyd_test /dev/mapper/kc-dust /dev/ram1"
# errors <jobs>: wait for the job to complete, then "<read errors> <write errors>".
errors() { kc_wait kc-e "$1" && echo "$(kc_field kc-e 3) $(kc_field kc-e 4)"; }
dmsetup message kc-e 0 copy 0 2048 1
e1=$(errors 1)
dmsetup message kc-e 0 copy 2048 2048 1
e2=$(errors 2)
echo "# errors after the job over the bad block: $e1; after the one beside it: $e2"
dm_test "the read error reaches exactly the job that read the bad block" \
	[ "$e1" = "1 0" -a "$e2" = "1 0" ]
dmsetup remove kc-e

# Jobs in flight while the device goes away: the source is slow (dm-delay, 0.5 s
# per read). The wait is seen on the destination, zeroed first: once the removal
# returns, every job's write has landed.
dd if=/dev/zero of=/dev/ram1 bs=1M count=$MB oflag=direct 2>/dev/null
dmsetup create kc-slow --table "0 $n delay /dev/ram0 0 500"
dmsetup create kc-r --table "0 $n kcopyd_test /dev/mapper/kc-slow /dev/ram1"
dmsetup message kc-r 0 copy 0 "$n" 256
set -- $(dmsetup status kc-r)
started=$4 done_before=$5
echo "# removing with $done_before of $started jobs completed"
dm_test "jobs were really in flight at removal" [ "$started" = 256 -a "$done_before" -lt "$started" ]
dm_test "remove with jobs in flight succeeds" dmsetup remove kc-r
dm_test "and waited for them: every job's write is on the destination" \
	dm_cmp_direct /dev/ram1 /tmp/kc-src.img
ktap_finished

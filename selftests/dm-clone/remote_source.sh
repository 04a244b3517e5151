#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A remote source: the clone's source is a network block device, the kernel's NBD
# client (/dev/nbd0) talking over a unix socket to a userspace server (nbdkit
# serving the source RAM disk read-only, 5 ms per read through its delay
# filter). A clone of it is readable at once, copies and verifies byte for byte;
# with the server killed mid-copy the copies fail (logged, a dm event), nothing
# hangs and the clone still serves what it copied; once the server is back, the
# clone's table is reloaded with the reconnected source (/dev/nbd1: the 6.12 NBD
# client cannot reattach a device that is held open) and the copy finishes from
# where it stopped; the destination equals the source.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=16
dmc_setup
command -v clone_dump >/dev/null || ktap_exit_fail_msg "clone_dump is not in the guest"
for tool in nbdkit nbd-client; do
	command -v $tool >/dev/null || dmc_skip "no $tool in the guest"
done
modprobe nbd nbds_max=2 || dmc_skip "no nbd module"
ktap_set_plan 10

SOCK=/tmp/dmc-nbd.sock
PIDF=/tmp/dmc-nbd.pid
NBD=/dev/nbd0
C=/dev/mapper/dmc-ce
# serve: nbdkit in the background, read-only, reads delayed by 5 ms; returns once
# the socket accepts connections (nbdkit writes its pid file then).
serve() {
	# (a server killed with -9 leaves its socket file behind)
	rm -f "$PIDF" "$SOCK"
	nbdkit --unix "$SOCK" --pidfile "$PIDF" -r --filter=delay file file="$DMC_SRC" rdelay=5ms ||
		return 1
	dmc_wait_for 10 '[ -s "$PIDF" ]'
}
server_kill() { [ -s "$PIDF" ] && kill -9 "$(cat "$PIDF")" 2>/dev/null; rm -f "$PIDF"; }
remote_cleanup() {
	dm_remove_all dmc-
	nbd-client -d /dev/nbd0 >/dev/null 2>&1
	nbd-client -d /dev/nbd1 >/dev/null 2>&1
	server_kill
	pkill nbd-client 2>/dev/null
	rmmod nbd 2>/dev/null
	dm_brd_cleanup
}
trap remote_cleanup EXIT

dmc_fill_source || ktap_exit_fail_msg "cannot fill the source"
len=$(dm_sectors "$DMC_SRC")
total=$((len / 8))
serve || ktap_exit_fail_msg "cannot start nbdkit"
# connect <nbd device>: the kernel's client on the server; the client's child sets
# the device's size once it is connected.
connect() {
	nbd-client -unix "$SOCK" "$1" -nonetlink -block-size 4096 >/dev/null 2>&1 &&
		dmc_wait_for 10 "[ \"\$(dm_sectors $1)\" = $len ]"
}
connect "$NBD" || ktap_exit_fail_msg "nbd-client cannot connect $NBD"
uptime_cs() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }
remote() {
	[ "$(dm_sectors "$NBD")" = "$len" ] || { echo "# $NBD has $(dm_sectors "$NBD") sectors"; return 1; }
	dm_cmp_direct "$NBD" /tmp/dmc-src.img || { echo "# $NBD differs from the source"; return 1; }
	t0=$(uptime_cs)
	dd if="$NBD" of=/dev/null bs=4096 count=20 iflag=direct 2>/dev/null
	t1=$(uptime_cs)
	echo "# 20 reads of 4 KiB took $((t1 - t0))0 ms"
	[ $((t1 - t0)) -ge 10 ]
}
dm_test "$NBD serves the source's bytes, 5 ms per read" remote

# fresh <options after the region size>: a clone of 4 KiB regions over the NBD
# source, on blank metadata and a zeroed destination.
fresh() {
	command dmsetup info dmc-ce >/dev/null 2>&1 && dmsetup remove dmc-ce
	dd if=/dev/zero of="$DMC_META" bs=4096 count=1 oflag=direct 2>/dev/null
	dd if=/dev/zero of="$DMC_DEST" bs=1M oflag=direct 2>/dev/null
	dmsetup create dmc-ce --table "0 $len clone $DMC_META $DMC_DEST $NBD 8 $*"
}
dm_test "create a clone of the NBD source, copy off" fresh 1 no_background_copy
read_at_once() { dm_cmp_direct $C /tmp/dmc-src.img && [ "$(dmc_copied dmc-ce)" = 0 ]; }
dm_test "the clone reads as the source at once, nothing copied yet" read_at_once
dmsetup message dmc-ce 0 enable_background_copy
dm_test "the copy from the NBD source finishes" dmc_wait_copied dmc-ce 60
dmsetup remove dmc-ce
dm_test "the destination equals the source byte for byte" dm_cmp_direct "$DMC_DEST" /tmp/dmc-src.img

# The server killed mid-copy (the copy held to 2 MiB/s: 8 s for the whole).
fresh 0 2 copy_rate_limit 2 >/dev/null || ktap_exit_fail_msg "cannot create the clone"
dmc_wait_for 10 '[ "$(dmc_copied dmc-ce)" -ge 256 ]'
ev=$(dmc_event_nr dmc-ce)
dm_dmesg_mark nbdkill
server_kill
sleep 3
c1=$(dmc_copied dmc-ce)
echo "# copied when the server died: $c1 of $total"
failed() {
	dm_dmesg_since nbdkill | grep -q "copying regions .* failed (read" ||
		{ dm_dmesg_since nbdkill | tail -n 3 | sed 's/^/#   /'; return 1; }
	[ "$(dmc_event_nr dmc-ce)" -gt "$ev" ]
}
dm_test "with the server gone, copies fail: logged, and a dm event" failed
answers() { timeout 10 dmsetup status dmc-ce >/dev/null && [ "$(dmc_copied dmc-ce)" -lt "$total" ]; }
dm_test "the clone answers status, nothing hangs, the copy has not finished" answers
# copied_read: the regions the metadata records as copied read as the source,
# with the server gone (so from the destination). Which regions those are is
# read from the metadata, not assumed: copies in flight when the server died
# fail at lower offsets than some that had completed, so the copied regions
# are not a prefix. The suspend commits the metadata; a copy of it is dumped.
copied_read() {
	dmsetup message dmc-ce 0 disable_background_copy &&
		dmsetup suspend dmc-ce &&
		dd if="$DMC_META" of=/tmp/dmc-meta-snap.img bs=1M iflag=direct 2>/dev/null &&
		dmsetup resume dmc-ce || return 1
	clone_dump /tmp/dmc-meta-snap.img >/tmp/dmc-dump.xml || return 1
	sed -n 's/.*<copied first="\([0-9]*\)" count="\([0-9]*\)".*/\1 \2/p' /tmp/dmc-dump.xml \
		>/tmp/dmc-runs
	n=$(awk '{ n += $2 } END { print n + 0 }' /tmp/dmc-runs)
	echo "# the metadata records $n regions copied in $(wc -l </tmp/dmc-runs) runs"
	[ "$n" -ge 256 ] || return 1
	while read -r first count; do
		dmc_same $C 4096 "$count" "$first" /tmp/dmc-src.img "$first" ||
			{ echo "# regions $first+$count do not read as the source"; return 1; }
	done </tmp/dmc-runs
	dmsetup message dmc-ce 0 enable_background_copy
}
dm_test "the clone still serves the regions its metadata records copied" copied_read

serve || ktap_exit_fail_msg "cannot restart nbdkit"
connect /dev/nbd1 || ktap_exit_fail_msg "nbd-client cannot connect /dev/nbd1"
dmc_swap dmc-ce "0 $len clone $DMC_META $DMC_DEST /dev/nbd1 8 0 2 copy_rate_limit 2"
resumed() {
	c2=$(dmc_copied dmc-ce)
	echo "# copied after the reload on /dev/nbd1: $c2 (was $c1)"
	[ "$c2" -ge "$c1" ] && dmc_wait_copied dmc-ce 60
}
dm_test "reloaded on the reconnected source, the copy goes on from its metadata and finishes" resumed
dmsetup remove dmc-ce
dm_test "and the destination equals the source" dm_cmp_direct "$DMC_DEST" /tmp/dmc-src.img
ktap_finished

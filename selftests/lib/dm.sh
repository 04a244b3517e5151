# SPDX-License-Identifier: GPL-2.0
# Helpers for device-mapper selftests: KTAP output (the kernel's
# ktap_helpers.sh), modules, dmsetup without udev, checks against the kernel log.

. "$(dirname "$0")/../kselftest/ktap_helpers.sh"

export DM_DISABLE_UDEV=1
dmsetup() { command dmsetup --noudevsync "$@"; }

# dm_test <description> <command> [args...]: one KTAP result from a command.
# (ktap_test_result expands its command unquoted, which splits a table.)
dm_test() {
	local desc=$1
	shift
	if "$@"; then ktap_test_pass "$desc"; else ktap_test_fail "$desc"; fi
}

# Skip the whole test (exit 4) unless every module can be loaded.
dm_require_modules() {
	for m in "$@"; do
		if ! modprobe "$m" 2>/dev/null; then
			ktap_skip_all "module $m is not available"
			exit "$KSFT_SKIP"
		fi
	done
}

# Remove every device-mapper device whose name starts with $1, in as many
# passes as their stacking needs (a device held by another one named after it
# goes in the next pass).
dm_remove_all() {
	local pass d left
	for pass in 1 2 3 4; do
		left=""
		for d in $(command dmsetup ls 2>/dev/null | awk -v p="$1" 'index($1, p) == 1 {print $1}'); do
			dmsetup remove --retry "$d" >/dev/null 2>&1 || left="$left $d"
		done
		[ -z "$left" ] && return 0
	done
	return 1
}

# dm_brd_setup <prefix> <count> <MiB>: fresh brd RAM disks /dev/ram0..count-1;
# on exit every device-mapper device named <prefix>*, the disks and
# /tmp/<prefix>*.img go away.
dm_brd_setup() {
	DM_PREFIX=$1
	trap dm_brd_cleanup EXIT
	# A brd left loaded (by a test that did not clean up, or with a disk still in
	# use) would keep its old disks: modprobe does nothing then.
	if grep -q '^brd ' /proc/modules && ! rmmod brd; then
		ktap_exit_fail_msg "cannot unload brd (is a RAM disk still in use?)"
	fi
	modprobe brd rd_nr="$2" rd_size=$(($3 * 1024)) max_part=0 ||
		ktap_exit_fail_msg "cannot load brd"
	[ "$(blockdev --getsize64 /dev/ram$(($2 - 1)) 2>/dev/null)" = $(($3 * 1048576)) ] ||
		ktap_exit_fail_msg "brd did not make $2 disks of $3 MiB"
}

dm_brd_cleanup() {
	dm_remove_all "$DM_PREFIX"
	rmmod brd 2>/dev/null
	rm -f /tmp/"$DM_PREFIX"*.img
}

# dm_dd <file> <block device> <offset MiB>: write a file into a device, which
# must exist (dd would create a plain file in /dev/mapper).
dm_dd() {
	[ -b "$2" ] || { echo "# $2 is not a block device"; return 1; }
	dd if="$1" of="$2" bs=1M seek="$3" oflag=direct 2>/dev/null
}

dm_sectors() { blockdev --getsz "$1"; }

# dm_cmp_direct <device> <file>: compare a device with a file, reading the
# device with O_DIRECT (I/O that bypassed the page cache, such as kcopyd's,
# leaves cached pages stale).
dm_cmp_direct() { dd if="$1" bs=1M iflag=direct 2>/dev/null | cmp -s - "$2"; }

# The sysfs queue directory of a device-mapper device.
dm_queue() { echo "/sys/block/$(command dmsetup info -c --noheadings -o blkdevname "$1")/queue"; }

# The kernel log since a mark, for checking error messages.
dm_dmesg_mark() { echo "dm-mark $$ $1" >/dev/kmsg; }
dm_dmesg_since() { dmesg | sed -n "/dm-mark $$ $1\$/,\$p"; }

# dm_refused <description> <expected kernel log text> <name> <table>: the table
# is refused, the log has the text, and no device is left behind.
dm_refused() {
	local desc=$1 want=$2 name=$3 table=$4 mark=$KTAP_TESTNO
	dm_dmesg_mark "$mark"
	if dmsetup create "$name" --table "$table" 2>/dev/null; then
		dmsetup remove "$name"
		echo "# accepted: $table"
		ktap_test_fail "$desc"
	elif ! dm_dmesg_since "$mark" | grep -qF -- "$want"; then
		echo "# expected \"$want\" in the kernel log, got:"
		dm_dmesg_since "$mark" | tail -n 3 | sed 's/^/#   /'
		ktap_test_fail "$desc"
	elif command dmsetup info "$name" >/dev/null 2>&1; then
		echo "# $name was left behind"
		ktap_test_fail "$desc"
	else
		ktap_test_pass "$desc"
	fi
}

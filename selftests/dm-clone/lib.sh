# SPDX-License-Identifier: GPL-2.0
# Helpers for the clone selftests: KTAP output (the kernel's ktap_helpers.sh),
# module and device set-up with clean-up on exit, status parsing.
#
# Devices: brd RAM disks, /dev/ram0 = metadata, /dev/ram1 = destination,
# /dev/ram2 = source, each $DMC_DEV_MB MiB. The target under test is the Rust
# module when it is installed, else the kernel's C dm-clone, unless the test
# asks for one with DMC_TARGET_MODULE.

. "$(dirname "$0")/../lib/dm.sh"

DMC_DEV_MB=${DMC_DEV_MB:-32}
DMC_META=/dev/ram0
DMC_DEST=/dev/ram1
DMC_SRC=/dev/ram2

# The module providing the `clone` target.
dmc_target_module() {
	if [ -n "${DMC_TARGET_MODULE:-}" ]; then
		echo "$DMC_TARGET_MODULE"
	elif [ -n "$(find /lib/modules/"$(uname -r)" -name "dm_clone_rs.ko*")" ]; then
		echo dm_clone_rs
	else
		echo dm_clone
	fi
}

# Set up three RAM disks of $DMC_DEV_MB MiB and load the target's module.
dmc_setup() {
	dm_require_modules crc32c_generic "$(dmc_target_module)"
	dm_brd_setup dmc- 3 "$DMC_DEV_MB"
}

# Fill the source with random bytes and keep a copy in /tmp/dmc-src.img.
dmc_fill_source() {
	dd if=/dev/urandom of=/tmp/dmc-src.img bs=1M count="$DMC_DEV_MB" 2>/dev/null &&
		dd if=/tmp/dmc-src.img of="$DMC_SRC" bs=1M oflag=direct 2>/dev/null
}

# The table of a clone over the whole source: dmc_table <region sectors> [args...]
dmc_table() {
	local region=$1
	shift
	echo "0 $(dm_sectors "$DMC_SRC") clone $DMC_META $DMC_DEST $DMC_SRC $region $*"
}

# Field N (1-based, counted after "<start> <len> clone") of the status line.
dmc_status_field() {
	dmsetup status "$1" | awk -v n="$2" '{ print $(n + 3) }'
}

# Wait until every region is copied; fail after $2 seconds (default 120).
dmc_wait_copied() {
	local name=$1 limit=${2:-120} i=0 f
	while [ "$i" -lt "$((limit * 10))" ]; do
		f=$(dmc_status_field "$name" 4)
		case "$f" in
		*/*) [ "${f%/*}" = "${f#*/}" ] && return 0 ;;
		*) echo "# no copy count in the status of $name: '$f'"; return 1 ;;
		esac
		sleep 0.1
		i=$((i + 1))
	done
	echo "# not fully copied after ${limit}s: $f"
	return 1
}

# SPDX-License-Identifier: GPL-2.0
# rlinear selftests: two RAM disks of $RL_MB MiB (/dev/ram0, /dev/ram1) filled
# with random bytes (copies in /tmp/rl-ram*.img), removed with every rl-*
# device on exit.
. "$(dirname "$0")/../lib/dm.sh"

RL_MB=${RL_MB:-16}

rl_setup() {
	dm_require_modules dm_rlinear
	dm_brd_setup rl- 2 "$RL_MB"
	for i in 0 1; do
		dd if=/dev/urandom of=/tmp/rl-ram$i.img bs=1M count="$RL_MB" 2>/dev/null
		dd if=/tmp/rl-ram$i.img of=/dev/ram$i bs=1M oflag=direct 2>/dev/null
	done
}

# rl_pair <sectors> <device> <offset>: rl-lin (C linear) and rl-rlin (rlinear)
# over the same area.
rl_pair() {
	dmsetup create rl-lin --table "0 $1 linear $2 $3" &&
		dmsetup create rl-rlin --table "0 $1 rlinear $2 $3"
}

# rl_extract <image> <offset sectors> <sectors> <output>
rl_extract() {
	dd if="$1" of="$4" bs=512 skip="$2" count="$3" 2>/dev/null
}

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Wrong rlinear tables are refused with rlinear's error text in the kernel log,
# no device is left behind, and the kernel log stays free of warnings.
. "$(dirname "$0")/lib.sh"

ktap_print_header
rl_setup
ktap_set_plan 6

refused() { dm_refused "$1" "rlinear: $2" rl-bad "$3"; }
refused "no arguments" "Invalid argument count" "0 8 rlinear"
refused "one argument" "Invalid argument count" "0 8 rlinear /dev/ram0"
refused "three arguments" "Invalid argument count" "0 8 rlinear /dev/ram0 0 0"
refused "offset not a number" "Invalid device sector" "0 8 rlinear /dev/ram0 12x"
refused "nonexistent device" "Device lookup failed" "0 8 rlinear /dev/nonexistent 0"
refused "offset + length beyond the device" "Device too small" \
	"0 8 rlinear /dev/ram0 $(( $(dm_sectors /dev/ram0) - 4 ))"
ktap_finished

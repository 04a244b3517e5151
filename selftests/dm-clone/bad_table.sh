#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Wrong tables are refused: `dmsetup create` fails, the kernel log carries the
# target's error text for that mistake, and no device is left behind.
. "$(dirname "$0")/lib.sh"

ktap_print_header
dmc_setup
ktap_set_plan 10

len=$(dm_sectors "$DMC_SRC")
m=$DMC_META d=$DMC_DEST s=$DMC_SRC

# refused <description> <expected error text> <table>
refused() { dm_refused "$1" "clone: $2" dmc-bad "$3"; }

refused "too few arguments" "Invalid number of arguments" "0 $len clone $m $d $s"
refused "region size not a number" "Invalid region size" "0 $len clone $m $d $s abc"
refused "region size not a power of two" "Region size is not a power of 2" "0 $len clone $m $d $s 12"
refused "region size below 8 sectors" "Invalid region size" "0 $len clone $m $d $s 4"
refused "region size above 2097152 sectors" "Invalid region size" "0 $len clone $m $d $s 4194304"
refused "nonexistent source device" "Error opening source device" "0 $len clone $m $d /dev/nonexistent 8"
refused "target longer than the source" "Device size larger than" "0 $((len + 8)) clone $m $d $s 8"
refused "unknown feature" "Invalid feature argument" "0 $len clone $m $d $s 8 1 no_such_feature"
refused "odd number of core arguments" "Number of core arguments must be even" \
	"0 $len clone $m $d $s 8 0 1 hydration_threshold"
refused "bad hydration_threshold value" "Invalid value for argument \`hydration_threshold'" \
	"0 $len clone $m $d $s 8 0 2 hydration_threshold x"

ktap_finished

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Messages and the module: every message, under our names and the C target's,
# changes what the status shows; anything else is refused with -EINVAL and a log
# line saying what is accepted; a table written with the C target's option
# names round-trips; the module refuses to load while the C dm-clone is loaded,
# saying why.
. "$(dirname "$0")/lib.sh"

ktap_print_header
DMC_DEV_MB=8
[ "$(dmc_target_module)" = dm_clone_rs ] || { ktap_skip_all "tests the Rust module"; exit "$KSFT_SKIP"; }
dmc_setup
ktap_set_plan 18

len=$(dm_sectors "$DMC_SRC")
t="0 $len clone $DMC_META $DMC_DEST $DMC_SRC 8 1 no_hydration 4 hydration_threshold 5 HYDRATION_batch_size 3"
dm_test "create with the C target's option names" dmsetup create dmc-mm --table "$t"
dm_test "status prints them under our names" \
	[ "$(dmsetup status dmc-mm | cut -d' ' -f9-)" = "1 no_background_copy 4 copy_threshold 5 copy_batch_size 3 rw" ]
t1=$(dmsetup table dmc-mm)
dm_test "the table keeps the arguments as given" [ "${t1#* * clone * * * }" = "8 1 no_hydration 4 hydration_threshold 5 HYDRATION_batch_size 3" ]

msg() { dmsetup message dmc-mm 0 "$@"; }
st() { dmsetup status dmc-mm | awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }'; }
feat() { dmsetup status dmc-mm | awk '{ print $9 }'; }
msg copy_threshold 7
dm_test "copy_threshold 7" [ "$(st copy_threshold)" = 7 ]
msg hydration_threshold 9
dm_test "hydration_threshold 9 sets it too" [ "$(st copy_threshold)" = 9 ]
msg copy_batch_size 11
dm_test "copy_batch_size 11" [ "$(st copy_batch_size)" = 11 ]
msg hydration_batch_size 13
dm_test "hydration_batch_size 13" [ "$(st copy_batch_size)" = 13 ]
msg enable_background_copy
dm_test "enable_background_copy: no features" [ "$(feat)" = 0 ]
msg disable_hydration
dm_test "disable_hydration: no_background_copy" [ "$(dmsetup status dmc-mm | awk '{ print $9, $10 }')" = "1 no_background_copy" ]
msg enable_hydration
dm_test "enable_hydration" [ "$(feat)" = 0 ]

# refused <description> <message...>: fails, and the log says what is accepted.
refused_msg() {
	desc=$1
	shift
	dm_dmesg_mark "$KTAP_TESTNO"
	if msg "$@" 2>/dev/null; then
		ktap_test_fail "$desc"
	elif ! dm_dmesg_since "$KTAP_TESTNO" | grep -q "accepted: copy_threshold <n>"; then
		echo "# no usage line in the log"
		ktap_test_fail "$desc"
	else
		ktap_test_pass "$desc"
	fi
}
refused_msg "an unknown message is refused" frobnicate
refused_msg "copy_threshold without a number is refused" copy_threshold
refused_msg "copy_threshold abc is refused" copy_threshold abc
refused_msg "extra words are refused" enable_background_copy now
dmsetup remove dmc-mm

rmmod dm_clone_rs
modprobe dm_clone
dm_dmesg_mark excl
modprobe dm_clone_rs 2>/dev/null
dm_test "dm_clone_rs does not load while the C dm-clone is loaded" [ $? != 0 ]
dm_dmesg_since excl | grep -q "target type \`clone' is already registered by another module"
dm_test "and says why" [ $? = 0 ]
# The selftests' module switch (lib.sh), which the two-target suites rely on: with
# a C clone in use C cannot be unloaded, so the switch to ours must fail (a trial
# would otherwise run on C), and dmc_serves must name C as the one serving.
dmsetup create dmc-held --table "$(dmc_table 8 1 no_hydration)" ||
	ktap_exit_fail_msg "cannot create a C clone"
switch_refused() { ! dmc_use_target dm_clone_rs; }
dm_test "with a C clone in use, the selftests' switch to dm_clone_rs fails" switch_refused
c_serves() { dmc_serves dm_clone && ! dmc_serves dm_clone_rs; }
dm_test "and dmc_serves says C serves it, not ours" c_serves
dmsetup remove dmc-held
rmmod dm_clone
ktap_finished

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The clone target's copied map and its two-phase commit sets, unit-tested in the kernel:
# loading dm_marks_test runs its cases (dm_marks_test.rs) and prints one line per case;
# each becomes a test here. Loading fails if a case failed.
. "$(dirname "$0")/../lib/dm.sh"

ktap_print_header
# (Not dm_require_modules: loading it runs the cases.)
if [ ! -e "/lib/modules/$(uname -r)/extra/dm_marks_test.ko" ]; then
	ktap_skip_all "module dm_marks_test is not available"
	exit "$KSFT_SKIP"
fi
rmmod dm_marks_test 2>/dev/null
dmesg -c >/dev/null
CASES=7
ktap_set_plan $((CASES + 1))
modprobe dm_marks_test
loaded=$?
log=$(dmesg | sed -n 's/.*dm_marks_test: //p')
echo "$log" | sed 's/^/# /'
for i in $(seq "$CASES"); do
	line=$(echo "$log" | grep -E "^(not )?ok $i " | head -n 1)
	name=$(echo "$line" | sed -E 's/^(not )?ok [0-9]+ //')
	case "$line" in
	"ok $i "*) ktap_test_pass "$name" ;;
	"") ktap_test_fail "case $i did not report" ;;
	*) ktap_test_fail "$name" ;;
	esac
done
if [ $loaded = 0 ] && echo "$log" | grep -q "^$CASES of $CASES cases passed"; then
	ktap_test_pass "the module loads: every case passed"
else
	ktap_test_fail "the module loads: every case passed"
fi
rmmod dm_marks_test 2>/dev/null
ktap_finished

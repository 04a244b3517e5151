#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Run selftests in the guest the way the kselftest runner does: one KTAP line
# per test, the test's own output indented as diagnostics, exit 4 = skip,
# per-directory `settings` with timeout=<seconds>. A test that exits 0 passes
# only if its own KTAP agrees: no "not ok" line, and as many results as its
# plan says (a script that forgot ktap_finished exits with its last command's
# status, whatever failed before). Each test is announced in
# the kernel log ("dmc-selftest: begin <name>"), so the host's log checker can
# name the test during which a kernel report appeared.
# Usage: runner.sh <test path below /selftests>...
# Environment (for the host's tests of this runner, tools/vm/tests/harness.sh):
# DMC_SELFTESTS, the selftests directory (default /selftests); DMC_KMSG, where
# the markers go (default /dev/kmsg); TMPDIR (default /tmp).

kmsg=${DMC_KMSG:-/dev/kmsg}
rcfile=${TMPDIR:-/tmp}/.dmc-rc.$$
outfile=${TMPDIR:-/tmp}/.dmc-out.$$
cd "${DMC_SELFTESTS:-/selftests}" || exit 1
echo "KTAP version 1"
echo "1..$#"
n=0
failed=0
for t in "$@"; do
	n=$((n + 1))
	name="selftests: $(dirname "$t"): $(basename "$t")"
	timeout=120
	if [ -r "$(dirname "$t")/settings" ]; then
		v=$(sed -n 's/^timeout=\([0-9]*\)$/\1/p' "$(dirname "$t")/settings")
		[ -n "$v" ] && timeout=$v
	fi
	echo "dmc-selftest: begin $t" >>"$kmsg"
	# The status of a pipeline is sed's: the test's goes through a file.
	rm -f "$rcfile"
	{
		(cd "$(dirname "$t")" && exec timeout -s KILL "$timeout" "./$(basename "$t")")
		echo $? >"$rcfile"
	} 2>&1 </dev/null | tee "$outfile" | sed 's/^/# /'
	rc=$(cat "$rcfile" 2>/dev/null)
	if [ "$rc" = 0 ]; then
		plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$outfile" | head -n 1)
		bad=$(grep -c '^not ok [0-9]' "$outfile")
		got=$(grep -cE '^(not )?ok [0-9]+' "$outfile")
		if [ "$bad" != 0 ]; then
			rc="0 but $bad of its tests failed"
		elif [ -n "$plan" ] && [ "$got" != "$plan" ]; then
			rc="0 but $got of its $plan planned tests reported"
		fi
	fi
	echo "dmc-selftest: end $t" >>"$kmsg"
	case "$rc" in
	0) echo "ok $n $name" ;;
	4) echo "ok $n $name # SKIP" ;;
	137) echo "not ok $n $name # TIMEOUT ${timeout}s"; failed=1 ;;
	*) echo "not ok $n $name # exit=$rc"; failed=1 ;;
	esac
done
rm -f "$rcfile" "$outfile"
exit $failed

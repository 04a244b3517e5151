#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Print the result of a check run as one KTAP document, one line per test:
# each cargo test of the userspace tools, each boot-time KUnit suite (from
# the kernel log), each selftest (from the guest's KTAP), the kernel log check, then the plain line
# "N passed, N failed, N skipped". Tests that were planned but never reported
# (host or VM) count as failed.
# Usage: summary.sh <run dir> [problem...]   Exit: 0 if nothing failed.
# A problem is a line of run.sh's about the run; it is reported as "vm: ..."
# unless it already names its part ("host: ...").
set -euo pipefail
rundir=$1
shift

results=$rundir/results.txt
: >"$results"

# Tests of the harness, run on the host: its plan, then its results.
if [ -e "$rundir/host.ktap" ]; then
	sed -n 's/^\(ok\|not ok\) [0-9]* \(host: .*\)$/\1|\2|/p' "$rundir/host.ktap" >>"$results"
	planned=$(grep -m1 -E '^1\.\.[0-9]+$' "$rundir/host.ktap" | cut -c4- || true)
	got=$(grep -c "|host: " "$results" || true)
	if [ -z "$planned" ]; then
		echo "not ok|host: the harness printed no plan|did it crash? see host.ktap" >>"$results"
	elif [ "$got" -lt "$planned" ]; then
		echo "not ok|host: $((planned - got)) of $planned tests never reported|" >>"$results"
	fi
fi

# The userspace tools' cargo tests: "test <name> ... ok|FAILED|ignored" lines,
# named by crate (the "Running ... deps/<crate>-<hash>" line before them).
if [ -e "$rundir/cargo.txt" ]; then
	awk '
	/^ *Running / { crate = $0; sub(/.*deps\//, "", crate); sub(/-[0-9a-f]+\)$/, "", crate) }
	/^test .* \.\.\. (ok|FAILED|ignored)$/ {
		name = $2; res = $NF
		if (res == "ok") printf "ok|cargo: %s: %s|\n", crate, name
		else if (res == "ignored") printf "ok|cargo: %s: %s # SKIP|\n", crate, name
		else printf "not ok|cargo: %s: %s|\n", crate, name
	}' "$rundir/cargo.txt" >>"$results"
	if grep -q "^cargo test exited" "$rundir/cargo.txt" &&
		! grep -q "^not ok|cargo: " "$results"; then
		echo "not ok|cargo: the tools build and their tests run|$(grep -m1 -E '^error' "$rundir/cargo.txt" || true)" >>"$results"
	fi
fi

# KUnit: top-level "ok N suite" lines after the printk timestamp; the cases are
# the lines indented by four spaces within the suite. The cases decide as much
# as the suite's line: a suite with a failed case failed (even if its line says
# ok), one whose every case was skipped was skipped (KUnit prints "# SKIP ").
awk '
{ sub(/\r$/, ""); sub(/^\[ *[0-9]+\.[0-9]+\] /, "") }
/^    (ok|not ok) [0-9]+ / {
	if ($1 == "not") fail++; else if ($0 ~ /# SKIP/) skip++; else pass++
	next
}
/^(ok|not ok) [0-9]+ [^ ]+/ {
	name = ($1 == "ok") ? $3 : $4
	res = ($1 == "ok") ? "ok" : "not ok"
	dir = ($0 ~ /# SKIP/) ? " # SKIP" : ""
	note = ""
	if (res == "ok" && fail > 0) {
		res = "not ok"; dir = ""; note = " (the suite reported ok)"
	} else if (res == "ok" && dir == "" && skip > 0 && pass == 0) {
		dir = " # SKIP"; note = " (the suite reported ok)"
	}
	printf "%s|kunit: %s%s|%d cases: %d passed, %d failed, %d skipped%s\n", \
		res, name, dir, pass + fail + skip, pass, fail, skip, note
	pass = fail = skip = 0
}' "$rundir/kernel.log" >>"$results"
if ! grep -q "kunit:" "$results" && [ -s "$rundir/kernel.log" ]; then
	echo "not ok|kunit: boot-time suites|no KUnit results in the kernel log" >>"$results"
fi

# Selftests: the runner's plan and top-level lines. A failed selftest carries its
# failed checks, each with the two comment lines before it (what it measured), so
# a log that shows only the summary (CI) still says what failed; "\037" joins them.
planned=$(grep -m1 -E '^1\.\.[0-9]+$' "$rundir/out.log" | cut -c4- || true)
awk '
/^# # / { c1 = c2; c2 = substr($0, 5); next }
/^# not ok [0-9]+ / {
	d = (c1 != "" ? c1 "\037" : "") (c2 != "" ? c2 "\037" : "") substr($0, 3)
	gsub(/\|/, "/", d)
	detail = (detail == "" ? "" : detail "\037") d
	c1 = c2 = ""
	next
}
/^# (ok|TAP|1\.\.)/ { c1 = c2 = ""; next }
/^(ok|not ok) [0-9]+ selftests: / {
	res = ($1 == "ok") ? "ok" : "not ok"
	line = $0; sub(/^(ok|not ok) [0-9]+ /, "", line)
	printf "%s|%s|%s\n", res, line, (res == "ok" ? "" : detail)
	detail = ""; c1 = c2 = ""
}' "$rundir/out.log" >>"$results"
got=$(grep -c "|selftests: " "$results" || true)
if [ -n "$planned" ] && [ "$got" -lt "$planned" ]; then
	echo "not ok|selftests: $((planned - got)) of $planned tests never reported|" >>"$results"
fi

# The kernel log check, and whatever went wrong with the VM itself.
if [ -s "$rundir/logcheck.txt" ]; then
	echo "not ok|kernel log: no bug reports|see below" >>"$results"
else
	echo "ok|kernel log: no bug reports|" >>"$results"
fi
for p in "$@"; do
	case "$p" in
	"the kernel log has bug reports") ;;
	host:*) echo "not ok|$p|" >>"$results" ;;
	*) echo "not ok|vm: $p|" >>"$results" ;;
	esac
done

echo "KTAP version 1"
echo "1..$(wc -l <"$results")"
awk -F'|' '{ printf "%s %d %s\n", $1, NR, $2; if ($3 != "") { gsub(/\037/, "\n# ", $3); print "# " $3 } }' "$results"
if [ -s "$rundir/logcheck.txt" ]; then
	sed 's/^/# /' "$rundir/logcheck.txt"
fi
skipped=$(grep -c '^ok|[^|]*# SKIP' "$results" || true)
failed=$(grep -c '^not ok|' "$results" || true)
passed=$(($(grep -c '^ok|' "$results" || true) - skipped))
if [ "$failed" -gt 0 ]; then
	echo "# failed:"
	grep '^not ok|' "$results" | cut -d'|' -f2 | sed 's/^/#   /'
	echo "# logs: $rundir/{out.log,kernel.log}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Kernel log checker: fail if the guest's kernel log holds any report of a
# kernel bug: BUG, Oops, WARNING, KASAN, UBSAN, lockdep, sleeping in atomic
# context, hung tasks, soft lockups, RCU stalls, kmemleak leaks, a Rust panic.
# Each report is printed with the lines after it (its stack trace) and the
# selftest that was running ("dmc-selftest: begin <name>" markers).
# Usage: logcheck.sh <kernel log>   Exit: 0 clean, 1 reports found.
# Reports go to stdout; the known upstream reports it ignores are said on stderr.
set -euo pipefail
log=${1:?usage: logcheck.sh <kernel log>}

# Known reports of upstream code, not ours, ignored (and said so) when a line
# of the report's trace (the 40 lines after it) matches, and no other report
# starts in those lines (but the WARNING that goes with it); each with its reason:
# - mainline 7.3's own Rust doctests of hrtimer (rust/kernel/time/hrtimer.rs)
#   set up an hrtimer on the stack without the on-stack debug-objects
#   annotation: DEBUG_OBJECTS (the debug kernel) reports "ODEBUG: object ... is
#   on stack ..., but NOT annotated" with a WARNING from KUnit's thread.
known_traces='rust_doctest_kernel_time_hrtimer_rs_[0-9]+'

# Patterns match the message text after the printk timestamp.
exec awk -v known="$known_traces" '
BEGIN {
	n = split("BUG:|Oops|WARNING:|------------\\[ cut here \\]|kernel BUG at|" \
		"general protection fault|Kernel panic|KASAN:|UBSAN:|" \
		"scheduling while atomic|possible recursive locking|" \
		"possible circular locking|inconsistent lock state|" \
		"INFO: task .* blocked for more than|soft lockup|hard LOCKUP|" \
		"detected stalls? on CPU|self-detected stall|" \
		"suspected memory leak|unreferenced object 0x|" \
		"ODEBUG:|list_add corruption|list_del corruption|" \
		"rust_kernel: panicked|panicked at |Unable to handle kernel|" \
		"double fault|stack-protector|refcount_t: ", pats, "|")
	test = "(boot)"; found = 0; tail = 0; ignored = 0
}
# A report ends after its 40 lines: counted, or ignored if known.
function close_report() {
	if (report == "") return
	if (is_known && !other) {
		ignored++
		# (On stderr: the summary of a run counts what is on stdout as reports.)
		printf "kernel log: known upstream report during %s, ignored: %s\n", rtest, first > "/dev/stderr"
	} else {
		found++
		printf "%s", report
	}
	report = ""
}
{
	sub(/\r$/, "")
	msg = $0
	sub(/^\[ *[0-9]+\.[0-9]+\] /, "", msg)
	if (msg ~ /^dmc-selftest: begin /) { test = substr(msg, 21) }
	else if (msg ~ /^dmc-selftest: end /) { test = "(between tests)" }
	if (tail > 0) {
		report = report "  | " $0 "\n"
		if (msg ~ known) is_known = 1
		for (i = 1; i <= n; i++)
			if (msg ~ pats[i] && msg !~ /^WARNING: |cut here/) other = 1
		if (--tail == 0) close_report()
		next
	}
	for (i = 1; i <= n; i++) {
		if (msg ~ pats[i]) {
			report = sprintf("kernel log: report during %s:\n  | %s\n", test, $0)
			rtest = test; first = msg; is_known = 0; other = 0
			tail = 40
			break
		}
	}
}
END { close_report(); exit found ? 1 : 0 }
' "$log"

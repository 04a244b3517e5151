#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Kernel log checker: fail if the guest's kernel log holds any report of a
# kernel bug: BUG, Oops, WARNING, KASAN, UBSAN, lockdep, sleeping in atomic
# context, hung tasks, soft lockups, RCU stalls, kmemleak leaks, a Rust panic.
# Each report is printed with the lines after it (its stack trace) and the
# selftest that was running ("dmc-selftest: begin <name>" markers).
# Usage: logcheck.sh <kernel log>   Exit: 0 clean, 1 reports found.
set -euo pipefail
log=${1:?usage: logcheck.sh <kernel log>}

# Patterns match the message text after the printk timestamp.
exec awk '
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
	test = "(boot)"; found = 0; tail = 0
}
{
	sub(/\r$/, "")
	msg = $0
	sub(/^\[ *[0-9]+\.[0-9]+\] /, "", msg)
	if (msg ~ /^dmc-selftest: begin /) { test = substr(msg, 21) }
	else if (msg ~ /^dmc-selftest: end /) { test = "(between tests)" }
	if (tail > 0) { print "  | " $0; tail--; next }
	for (i = 1; i <= n; i++) {
		if (msg ~ pats[i]) {
			found++
			printf "kernel log: report during %s:\n  | %s\n", test, $0
			tail = 40
			break
		}
	}
}
END { exit found ? 1 : 0 }
' "$log"

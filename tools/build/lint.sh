#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Lint our Rust the way the kernel does: rustfmt with the kernel's .rustfmt.toml
# (--fix rewrites the files), then clippy and W=1 over the kernel crate with our
# additions and over our modules. Any finding fails.
source "$(dirname "$0")/env.sh"
src=$(dmc_srctree)
obj=$(dmc_objtree)
cd "$DMC_TOP"
files=$(find rust selftests -name '*.rs' | sort)

if [ "${1:-}" = --fix ]; then
	"$RUSTFMT" --edition 2021 --config-path "$src/.rustfmt.toml" $files
	exit 0
fi
if ! "$RUSTFMT" --edition 2021 --config-path "$src/.rustfmt.toml" --check $files; then
	dmc_die "rustfmt: run 'make lint FIX=1' to format"
fi

# The kernel crate (with our additions) and our modules, under clippy and W=1.
# Warnings from the kernel's own crates are not ours: only the files we add count.
log=$obj/lint.log
# Modules first, against the kernel as built: their symbols must match vmlinux.
"$DMC_TOP/tools/build/modules.sh" CLIPPY=1 W=1 modules >"$log" 2>&1 ||
	{ cat "$log" >&2; dmc_die "modules do not build under clippy"; }
"${DMC_KMAKE[@]}" -C "$src" O="$obj" CLIPPY=1 W=1 rust/kernel.o >>"$log" 2>&1 ||
	{ cat "$log" >&2; dmc_die "kernel crate does not build under clippy"; }
ours=$(printf '%s\n' $files | sed 's/[.]/\\./g' | paste -sd'|')
if grep -E -A12 "^(warning|error)" "$log" | grep -qE "($ours)"; then
	grep -E -B2 -A14 "^(warning|error)" "$log" >&2
	dmc_die "clippy or W=1 found problems in our code (above)"
fi
# Rebuild the kernel crate without clippy so the next build links what it tested.
"${DMC_KMAKE[@]}" -C "$src" O="$obj" -s bzImage modules >>"$log" 2>&1
dmc_log "lint: rustfmt, clippy and W=1 clean ($(echo $files | wc -w) files)"
# The userspace tools: cargo fmt and clippy.
"$DMC_TOP/tools/build/userspace.sh" lint || dmc_die "userspace tools: cargo fmt or clippy found problems"
dmc_log "lint: userspace tools: cargo fmt and clippy clean"

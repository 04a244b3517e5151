#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Lint our Rust the way the kernel does: rustfmt with the kernel's .rustfmt.toml
# (--fix rewrites the files), then clippy and W=1 over the kernel crate with our
# additions and over our modules. Any finding fails.
source "$(dirname "$0")/env.sh"
src=$(dmc_srctree)
obj=$(dmc_objtree)
cd "$DMC_TOP"
files=$(find rust selftests compat -name '*.rs' | sort)
# The files of this kernel's layer, at their paths in the tree (for the log's paths).
layer=
if [ -d "compat/$LINUX" ]; then
	layer=$(find "compat/$LINUX" -name '*.rs' | sed "s|^compat/$LINUX/||" | sort)
fi

# rustfmt follows `mod` items: a layer's file (compat/<kernel>/rust/...) declares
# children that live in rust/ (e.g. bitmap.rs's `mod atomic`), so each layer is
# formatted in a copy of the tree it is laid over.
fmt() { # <--check or nothing>
	local rc=0 t v f
	"$RUSTFMT" --edition 2021 --config-path "$src/.rustfmt.toml" "$@" \
		$(printf '%s\n' $files | grep -v '^compat/') || rc=1
	for v in compat/*/; do
		v=${v%/}
		t=$(mktemp -d)
		cp -r rust "$t/"
		cp -r "$v/rust/." "$t/rust/"
		for f in $(cd "$v" && find rust -name '*.rs'); do
			"$RUSTFMT" --edition 2021 --config-path "$src/.rustfmt.toml" "$@" "$t/$f" || rc=1
			[ "${1:-}" = --check ] || cp "$t/$f" "$v/$f"
		done
		rm -rf "$t"
	done
	return $rc
}
if [ "${1:-}" = --fix ]; then
	fmt
	exit 0
fi
if ! fmt --check; then
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
ours=$(printf '%s\n' $(printf '%s\n' $files | grep -v '^compat/') $layer | sed 's/[.]/\\./g' | paste -sd'|')
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

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the userspace tools (the cargo workspace in tools/) with the machine's
# cargo; the objects go to the cache, outside the checkout.
#   userspace.sh build     release binaries; prints their directory
#   userspace.sh test      cargo test (one "test <name> ... ok" line per test)
#   userspace.sh lint      cargo fmt --check and cargo clippy -D warnings
source "$(dirname "$0")/env.sh"

# One target directory per checkout: tests find their fixtures through the path
# they were compiled in (CARGO_MANIFEST_DIR), and cargo does not rebuild a test
# when only the checkout moved.
export CARGO_TARGET_DIR=$DMC_CACHE/cargo-target/$(printf %s "$DMC_TOP" | sha1sum | cut -c1-12)
manifest=(--manifest-path "$DMC_TOP/tools/Cargo.toml")
case "${1:-build}" in
build)
	cargo build -q --release --locked "${manifest[@]}" >&2
	echo "$CARGO_TARGET_DIR/release"
	;;
test) cargo test --locked "${manifest[@]}" 2>&1 ;;
lint)
	cargo fmt --all --check "${manifest[@]}"
	cargo clippy -q --locked --all-targets "${manifest[@]}" -- -D warnings
	;;
*) dmc_die "usage: userspace.sh build|test|lint" ;;
esac

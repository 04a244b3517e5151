#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install what the build and the VM need, skipping what is already there:
# Debian packages, and bindgen-cli (the kernel needs >= 0.65.1; Debian has 0.60)
# built from crates.io into the cache.
source "$(dirname "$0")/env.sh"

packages=(
	linux-source-6.12
	rustc-web rust-web-src cargo-web rust-web-clippy rustfmt-web
	clang-19 lld-19 llvm-19 libclang-19-dev
	bc flex bison libelf-dev libssl-dev cpio ccache kmod make xz-utils patch
	qemu-system-x86 busybox-static dmsetup fio e2fsprogs nbdkit nbd-client
	libdevmapper-dev pkg-config
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	dmc_log "installing Debian packages: ${missing[*]}"
	[ "$(id -u)" = 0 ] || dmc_die "need root to install ${missing[*]}"
	apt-get update -q >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"${missing[@]}" >/dev/null
fi

if ! "$BINDGEN" --version 2>/dev/null | grep -q " $DMC_BINDGEN_VERSION\$"; then
	dmc_log "building bindgen-cli $DMC_BINDGEN_VERSION from crates.io (~1 min)"
	mkdir -p "$DMC_BINDGEN_ROOT"
	/usr/bin/cargo install -q bindgen-cli --version "$DMC_BINDGEN_VERSION" \
		--locked --root "$DMC_BINDGEN_ROOT"
	rm -f "$DMC_BINDGEN_ROOT"/.crates*.json "$DMC_BINDGEN_ROOT"/.crates.toml
fi

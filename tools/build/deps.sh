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

# Mainline (LINUX=7.3): Debian's package, downloaded through a private sources
# list and lists directory in the cache (the machine's apt configuration is not
# touched), pinned to DMC_KERNEL_PIN, unpacked into the cache.
if [ -n "${DMC_KERNEL_PIN:-}" ] && [ ! -e "$DMC_KERNEL_TARBALL" ]; then
	apt=$DMC_CACHE/apt
	mkdir -p "$apt/lists/partial" "$apt/archives"
	echo "deb http://deb.debian.org/debian $DMC_KERNEL_SUITE" >"$apt/sources.list"
	aopts=(-o Dir::Etc::sourcelist="$apt/sources.list" -o Dir::Etc::sourceparts=-
		-o Dir::State::Lists="$apt/lists" -o APT::Get::List-Cleanup=0
		-o APT::Sandbox::User=root)
	dmc_log "fetching $DMC_KERNEL_PKG $DMC_KERNEL_PIN (~170 MB)"
	apt-get -q "${aopts[@]}" update >/dev/null
	(cd "$apt/archives" && apt-get -q "${aopts[@]}" download "$DMC_KERNEL_PKG=$DMC_KERNEL_PIN" >/dev/null)
	rm -rf "$DMC_KERNEL_DEB.tmp"
	mkdir -p "$DMC_KERNEL_DEB.tmp"
	dpkg-deb -x "$apt/archives/${DMC_KERNEL_PKG}_${DMC_KERNEL_PIN//:/%3a}_all.deb" "$DMC_KERNEL_DEB.tmp"
	mv "$DMC_KERNEL_DEB.tmp" "$DMC_KERNEL_DEB"
	[ -e "$DMC_KERNEL_TARBALL" ] || dmc_die "$DMC_KERNEL_PKG $DMC_KERNEL_PIN has no $DMC_KERNEL_TARBALL"
fi

if ! "$BINDGEN" --version 2>/dev/null | grep -q " $DMC_BINDGEN_VERSION\$"; then
	dmc_log "building bindgen-cli $DMC_BINDGEN_VERSION from crates.io (~1 min)"
	mkdir -p "$DMC_BINDGEN_ROOT"
	/usr/bin/cargo install -q bindgen-cli --version "$DMC_BINDGEN_VERSION" \
		--locked --root "$DMC_BINDGEN_ROOT"
	rm -f "$DMC_BINDGEN_ROOT"/.crates*.json "$DMC_BINDGEN_ROOT"/.crates.toml
fi

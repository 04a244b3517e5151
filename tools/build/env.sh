# SPDX-License-Identifier: GPL-2.0
# Common settings for every build and VM script. Source it; do not run it.
#
# Everything that is built lives outside the checkout, under $DMC_CACHE, so a
# fresh clone reuses a kernel built earlier and `make clean` never touches it.

set -euo pipefail

DMC_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DMC_CACHE=${DMC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dm-clone-rs}

# Kernel flavour: "fast" (default) or "debug" (KASAN, lockdep, kmemleak, ...).
KERNEL=${KERNEL:-fast}
case "$KERNEL" in
fast|debug) ;;
*) echo "error: KERNEL=$KERNEL: expected 'fast' or 'debug'" >&2; exit 2 ;;
esac

# The kernel: LINUX=6.12 (Debian 12's linux-source-6.12, the LTS distributions
# run) or LINUX=7.3 (mainline as Debian packages it: linux-source-7.3 from
# trixie-backports, fetched by deps.sh into the cache without touching the
# machine's apt configuration, and pinned here).
LINUX=${LINUX:-7.3}
case "$LINUX" in
6.12)
	DMC_KERNEL_PKG=linux-source-6.12
	DMC_KERNEL_TARBALL=/usr/src/linux-source-6.12.tar.xz
	DMC_BINDGEN_VERSION=0.69.5
	;;
7.3)
	DMC_KERNEL_PKG=linux-source-7.3
	DMC_KERNEL_PIN=7.3.4-1~bpo13+1
	DMC_KERNEL_SUITE="trixie-backports main"
	DMC_KERNEL_DEB=$DMC_CACHE/pkg/${DMC_KERNEL_PKG}_${DMC_KERNEL_PIN}
	DMC_KERNEL_TARBALL=$DMC_KERNEL_DEB/usr/src/linux-source-7.3.tar.xz
	DMC_BINDGEN_VERSION=0.71.1
	;;
*) echo "error: LINUX=$LINUX: expected '6.12' or '7.3'" >&2; exit 2 ;;
esac
DMC_BINDGEN_ROOT=$DMC_CACHE/bindgen-$DMC_BINDGEN_VERSION

# Toolchain trap: rustup puts rustc 1.95 (without rust-src) first in PATH.
# The kernel and every out-of-tree module must use Debian's rustc, and the
# same one, or the .rmeta files of the kernel crate do not match.
export PATH=/usr/lib/ccache:/usr/bin:/usr/sbin:/bin:/sbin:$DMC_BINDGEN_ROOT/bin:$PATH
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTFMT=/usr/bin/rustfmt
export CLIPPY_DRIVER=/usr/bin/clippy-driver BINDGEN=$DMC_BINDGEN_ROOT/bin/bindgen
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
export CCACHE_DIR=${CCACHE_DIR:-$DMC_CACHE/ccache}

DMC_KMAKE=(make LLVM=-19 RUSTC="$RUSTC" BINDGEN="$BINDGEN" RUSTFMT="$RUSTFMT"
	CLIPPY_DRIVER="$CLIPPY_DRIVER" -j"$(nproc)")

dmc_log() { printf '>>> %s\n' "$*" >&2; }
dmc_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The version of the kernel source package, e.g. 6.12.117-1~deb12u1.
dmc_kernel_pkg_version() {
	if [ -n "${DMC_KERNEL_PIN:-}" ]; then
		[ -e "$DMC_KERNEL_TARBALL" ] ||
			dmc_die "$DMC_KERNEL_PKG $DMC_KERNEL_PIN is not in the cache (run make deps LINUX=$LINUX)"
		echo "$DMC_KERNEL_PIN"
	else
		dpkg-query -W -f='${Version}' "$DMC_KERNEL_PKG" 2>/dev/null ||
			dmc_die "$DMC_KERNEL_PKG is not installed (run tools/build/deps.sh)"
	fi
}

# Where the unpacked, overlaid source tree lives (shared by both flavours).
dmc_srctree() { echo "$DMC_CACHE/src/linux-$(dmc_kernel_pkg_version | tr '~' '-')"; }

# The build key: whatever, when changed, must lead to a fresh kernel build.
# The Rust overlay is not in it: changes there rebuild incrementally.
dmc_build_key() {
	{
		dmc_kernel_pkg_version
		cat "$DMC_TOP/tools/build/config/base.config"
		cat "$DMC_TOP/tools/build/config/linux-$LINUX.config"
		if [ "$KERNEL" = debug ]; then cat "$DMC_TOP/tools/build/config/debug.config"; fi
		"$RUSTC" --version
		clang-19 --version | head -n1
		"$BINDGEN" --version
	} | sha256sum | cut -c1-12
}

# The O= directory of the current kernel and flavour: <flavour>-<key> for 6.12
# (the names its builds had before 7.3 came), 7.3-<flavour>-<key> for 7.3.
dmc_objtree() {
	local prefix=
	[ "$LINUX" = 6.12 ] || prefix=$LINUX-
	echo "$DMC_CACHE/build/$prefix$KERNEL-$(dmc_build_key)"
}

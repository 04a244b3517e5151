#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Put our kernel-crate additions into a kernel source tree ($LINUX's):
#  - files under rust/{kernel,helpers,bindings,macros,uapi} of this repo (what
#    both kernels get) and under compat/$LINUX/rust/... (what only that kernel
#    gets: for 6.12, the shapes mainline's kernel crate has and 6.12's lacks) are
#    copied to the same path in the tree; they must be new files (an existing
#    kernel file is changed with a patch, never replaced);
#  - tools/kernel/patches/$LINUX/*.patch (in order, -p1, no fuzz) are applied to
#    pristine copies of the files they touch, then copied into the tree.
# Only files whose content changed are written, so the kernel build stays
# incremental. Files from an earlier overlay that are gone from the repo are
# removed (new files) or restored to pristine (patched files).
# Usage: overlay.sh <kernel source tree>
source "$(dirname "$0")/env.sh"

src=${1:?usage: overlay.sh <kernel source tree>}
state=$src/.dmc-overlay
pristine=$state/pristine
mkdir -p "$pristine"
touch "$state/files" "$state/patched"

# install_if_changed <from> <to>
install_if_changed() {
	if ! cmp -s "$1" "$2"; then
		mkdir -p "$(dirname "$2")"
		cp "$1" "$2"
		echo "  updated ${2#$src/}" >&2
	fi
}

# 1. New files: <repo path>:<tree path> pairs.
cd "$DMC_TOP"
layer=compat/$LINUX
new_pairs=$( {
	for d in rust/kernel rust/helpers rust/bindings rust/macros rust/uapi; do
		if [ -d "$d" ]; then find "$d" -type f | sed 's|.*|&:&|'; fi
	done
	if [ -d "$layer/rust" ]; then find "$layer/rust" -type f | sed "s|^$layer/\\(.*\\)|&:\\1|"; fi
} | sort -t: -k2)
new_files=$(printf '%s\n' $new_pairs | cut -d: -f2)
dups=$(printf '%s\n' $new_files | uniq -d)
[ -z "$dups" ] || dmc_die "in rust/ and in $layer/rust/ both: $dups"
for pair in $new_pairs; do
	from=${pair%%:*} f=${pair#*:}
	if [ -e "$src/$f" ] && ! grep -qxF "$f" "$state/files"; then
		dmc_die "$f exists in the kernel tree: change it with a patch in tools/kernel/patches/$LINUX/, do not replace it"
	fi
	install_if_changed "$from" "$src/$f"
done
for f in $(cat "$state/files"); do
	if ! grep -qxF "$f" <<<"$new_files"; then
		rm -f "$src/$f"
		echo "  removed $f" >&2
	fi
done
printf '%s\n' $new_files >"$state/files"

# 2. Patches, applied to pristine copies in a staging tree.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
patches=tools/kernel/patches/$LINUX
patched=
if [ -d "$patches" ]; then
	patched=$(find "$patches" -name '*.patch' -exec cat {} + |
		sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' | sort -u)
fi
for f in $patched; do
	[ -e "$src/$f" ] || dmc_die "patched file $f does not exist in the kernel tree"
	[ -e "$pristine/$f" ] || { mkdir -p "$(dirname "$pristine/$f")"; cp "$src/$f" "$pristine/$f"; }
	mkdir -p "$(dirname "$stage/$f")"
	cp "$pristine/$f" "$stage/$f"
done
for p in "$patches"/*.patch; do
	[ -e "$p" ] || continue
	if ! out=$(patch -p1 --fuzz=0 --forward --batch --no-backup-if-mismatch \
		-r - -d "$stage" <"$p" 2>&1); then
		printf '%s\n' "$out" >&2
		dmc_die "$p does not apply to linux $(dmc_kernel_pkg_version)"
	fi
done
for f in $patched; do
	install_if_changed "$stage/$f" "$src/$f"
done
for f in $(cat "$state/patched"); do
	if ! grep -qxF "$f" <<<"$patched"; then
		install_if_changed "$pristine/$f" "$src/$f"
	fi
done
printf '%s\n' $patched >"$state/patched"

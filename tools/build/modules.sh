#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build our out-of-tree modules (root Kbuild) against the current flavour's
# kernel, with the same rustc as the kernel. Extra arguments go to make
# (e.g. CLIPPY=1, W=1, clean).
source "$(dirname "$0")/env.sh"
obj=$(dmc_objtree)
[ -e "$obj/vmlinux" ] || dmc_die "kernel of flavour $KERNEL is not built (make kernel)"
"${DMC_KMAKE[@]}" -C "$obj" M="$DMC_TOP" "$@"

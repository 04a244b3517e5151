#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build our out-of-tree modules (root Kbuild) against the current flavour's
# kernel, with the same rustc as the kernel. Extra arguments go to make
# (e.g. CLIPPY=1, W=1, clean).
#
# The objects land in the checkout, where kbuild puts them. A module built for
# one flavour must never be loaded into the other (lockdep and KASAN change
# the layout of kernel structures), so the flavour they were built for is
# recorded, and switching flavours rebuilds them from clean.
source "$(dirname "$0")/env.sh"
obj=$(dmc_objtree)
[ -e "$obj/vmlinux" ] || dmc_die "kernel of flavour $KERNEL is not built (make kernel)"
stamp=$DMC_TOP/.modules-built-for
if [ "$(cat "$stamp" 2>/dev/null)" != "$obj" ]; then
	"${DMC_KMAKE[@]}" -C "$obj" M="$DMC_TOP" -s clean
	rm -f "$stamp"
fi
"${DMC_KMAKE[@]}" -C "$obj" M="$DMC_TOP" "$@"
echo "$obj" >"$stamp"

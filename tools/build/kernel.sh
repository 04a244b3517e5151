#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Prepare and build the kernel for the current flavour ($KERNEL):
#   1. unpack the kernel source ($LINUX: see env.sh) into the cache (once per package version);
#   2. overlay our kernel-crate additions (tools/build/overlay.sh);
#   3. configure O=<cache>/build/<flavour>-<key> from tinyconfig + fragments, and
#      check that every option of the fragments stuck;
#   4. build bzImage and modules, install the modules for the guest.
# Prints nothing but progress on stderr; the object tree is `dmc_objtree`.
source "$(dirname "$0")/env.sh"

src=$(dmc_srctree)
obj=$(dmc_objtree)

if [ ! -e "$src/.dmc-unpacked" ]; then
	dmc_log "unpacking $DMC_KERNEL_TARBALL into $src (~20 s)"
	rm -rf "$src" "$src.tmp"
	mkdir -p "$src.tmp"
	tar -xJf "$DMC_KERNEL_TARBALL" -C "$src.tmp" --strip-components=1
	mv "$src.tmp" "$src"
	touch "$src/.dmc-unpacked"
fi

"$DMC_TOP/tools/build/overlay.sh" "$src"

# Fragment lines are `CONFIG_X=v` or `# CONFIG_X is not set`; `=n` means unset.
check_config() {
	local frag=$1 bad=0 line opt want got
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*) opt=${line%%=*}; want=${line#*=} ;;
		"# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}; want=n ;;
		*) continue ;;
		esac
		got=$(grep -E "^$opt=" "$obj/.config" | cut -d= -f2- || true)
		[ -n "$got" ] || got=n
		if [ "$got" != "$want" ]; then
			echo "  $opt: wanted $want, got $got" >&2
			bad=1
		fi
	done <"$frag"
	return $bad
}

frags=("$DMC_TOP/tools/build/config/base.config" "$DMC_TOP/tools/build/config/linux-$LINUX.config")
[ "$KERNEL" = debug ] && frags+=("$DMC_TOP/tools/build/config/debug.config")

if [ ! -e "$obj/.dmc-configured" ]; then
	dmc_log "configuring $obj"
	mkdir -p "$obj"
	"${DMC_KMAKE[@]}" -C "$src" O="$obj" -s tinyconfig >/dev/null
	"$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" \
		"${frags[@]}" >/dev/null
	# Twice: some options only become visible once others are set.
	"${DMC_KMAKE[@]}" -C "$src" O="$obj" -s olddefconfig >/dev/null
	"${DMC_KMAKE[@]}" -C "$src" O="$obj" -s olddefconfig >/dev/null
	for f in "${frags[@]}"; do
		check_config "$f" ||
			dmc_die "options of ${f#$DMC_TOP/} did not stick in $obj/.config (see above)"
	done
	touch "$obj/.dmc-configured"
	# Builds of this kernel and flavour under an older key are of no further use.
	# (Not one a VM still runs from: its logs go there when it ends.)
	for old in "${obj%-*}"-*; do
		[ "$old" = "$obj" ] && continue
		if pgrep -f "$old/arch/x86/boot/bzImage" >/dev/null; then
			dmc_log "keeping $old: a VM runs from it"
			continue
		fi
		rm -rf "$old"
	done
fi

# The kernel's own warnings (not ours) would bury everything else: they go to
# a log, shown when the build fails.
dmc_log "building kernel ($KERNEL) in $obj (log: $obj/build.log)"
start=$(date +%s)
if ! "${DMC_KMAKE[@]}" -C "$src" O="$obj" -s bzImage modules >"$obj/build.log" 2>&1; then
	grep -E -B2 -A8 "error(\[E[0-9]+\])?:|Error [0-9]" "$obj/build.log" | tail -n 80 >&2
	dmc_die "kernel build failed; full log: $obj/build.log"
fi
dmc_log "kernel build took $(($(date +%s) - start)) s"

# Install modules for the guest only when the build produced new ones.
stamp=$obj/.dmc-modules-installed
if [ ! -e "$stamp" ] || [ -n "$(find "$obj" -name '*.ko' -newer "$stamp" -print -quit)" ]; then
	rm -rf "$obj/guest-modules"
	"${DMC_KMAKE[@]}" -C "$src" O="$obj" -s INSTALL_MOD_PATH="$obj/guest-modules" \
		INSTALL_MOD_STRIP=1 DEPMOD=/sbin/depmod modules_install >/dev/null
	touch "$stamp"
fi

# SPDX-License-Identifier: GPL-2.0
# Shared by series.sh and check.sh. Source it; do not run it.
source "$(dirname "${BASH_SOURCE[0]}")/../build/env.sh"

[ "$LINUX" = 7.3 ] ||
	dmc_die "the mainline series is against Linux 7.3 (LINUX=$LINUX): run it with LINUX=7.3"
SERIES_OUT=${SERIES_OUT:-$DMC_CACHE/series/7.3}

# The author and Signed-off-by of every patch: whoever runs it, never invented.
dmc_series_identity() {
	DMC_SERIES_NAME=$(git -C "$DMC_TOP" config user.name || true)
	DMC_SERIES_EMAIL=$(git -C "$DMC_TOP" config user.email || true)
	[ -n "$DMC_SERIES_NAME" ] ||
		dmc_die "git config user.name is not set: the series' author and Signed-off-by come from it (git config --global user.name 'Your Name')"
	[ -n "$DMC_SERIES_EMAIL" ] ||
		dmc_die "git config user.email is not set: the series' author and Signed-off-by come from it (git config --global user.email you@example.org)"
}

# The commit date of every patch: the last commit that changed what the series
# is made of, so regenerating from an unchanged source gives the same bytes.
dmc_series_date() {
	git -C "$DMC_TOP" log -1 --format=%cI -- rust/kernel rust/helpers rust/md \
		tools/kernel/patches/7.3 tools/series Documentation/admin-guide/device-mapper
}

# Pristine copies of the 7.3 files the series changes, extracted from the
# package's tarball (not from the overlaid source tree) in one tar pass, kept
# in the cache; prints their directory. Usage: dmc_series_pristine [files...]
# (default: the files steps.py changes).
dmc_series_pristine() {
	local dir=$DMC_CACHE/series/pristine-$(dmc_kernel_pkg_version | tr '~' '-')
	local files missing=() f top
	if [ $# -gt 0 ]; then files=$*; else files=$(python3 "$DMC_TOP/tools/series/series.py" files); fi
	for f in $files; do [ -e "$dir/$f" ] || missing+=("$f"); done
	if [ ${#missing[@]} -gt 0 ]; then
		[ -e "$DMC_KERNEL_TARBALL" ] ||
			dmc_die "$DMC_KERNEL_TARBALL is missing (run make deps LINUX=7.3)"
		dmc_log "series: extracting ${#missing[@]} pristine files from $(basename "$DMC_KERNEL_TARBALL")"
		top=$(tar -tJf "$DMC_KERNEL_TARBALL" 2>/dev/null | head -n1 || true)
		top=${top%%/*}
		[ -n "$top" ] || dmc_die "cannot read $DMC_KERNEL_TARBALL"
		mkdir -p "$dir"
		nice tar -xJf "$DMC_KERNEL_TARBALL" --strip-components=1 -C "$dir" \
			"${missing[@]/#/$top/}" ||
			dmc_die "$DMC_KERNEL_TARBALL lacks some of: ${missing[*]}"
	fi
	echo "$dir"
}

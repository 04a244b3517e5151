#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make series-check, the cheap form (no kernel build, no VM):
#  1. the series in $SERIES_OUT is current: regenerated from this repository it
#     is byte-identical but for the Date: lines (and the From <sha> lines, whose
#     hashes cover the dates);
#  2. `git am` applies every patch, in order, to a scratch repository holding the
#     pristine 7.3 versions of the files the patches change (from the package's
#     tarball); after each patch, what its added lines refer to is there (a
#     `mod x;` has its file, an include its header or helper, a Makefile line its
#     source and Kconfig symbol, a Kconfig dependency its symbol, and no Rust file
#     uses a type, trait, macro or path segment that only a later patch defines);
#  3. after the last patch, the kernel crate is what the out-of-tree build puts
#     in the tree: every file of rust/kernel and rust/helpers is the repo's, every
#     file tools/kernel/patches/7.3 changes is the pristine file with those
#     patches applied (as tools/build/overlay.sh does), and the targets' files
#     are the repo's, at their in-tree paths;
#  4. scripts/checkpatch.pl --strict (7.3's, run inside the 7.3 source tree) on
#     every patch: any ERROR fails; warnings and checks are counted and listed.
# Not done here (the full form, later): a build after every patch with CLIPPY=1
# W=1, rustfmtcheck, rustdoc, booting each result and running the selftests.
source "$(dirname "$0")/lib.sh"

dmc_series_identity
[ -e "$SERIES_OUT/0000-cover-letter.patch" ] ||
	dmc_die "no series in $SERIES_OUT: run make series first"
srctree=$(dmc_srctree)
[ -x "$srctree/scripts/checkpatch.pl" ] || [ -e "$srctree/scripts/checkpatch.pl" ] ||
	dmc_die "no 7.3 source tree at $srctree (run make kernel LINUX=7.3 once)"
work=$(mktemp -d /tmp/dmc-series-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0

# 1. Current.
dmc_log "series-check: is $SERIES_OUT what the repository generates?"
"$DMC_TOP/tools/series/series.sh" "$work/regen" >/dev/null
norm() { sed -E 's/^From [0-9a-f]{40} /From <sha> /; s/^Date: .*/Date: <date>/' "$1"; }
old=$(cd "$SERIES_OUT" && ls) new=$(cd "$work/regen" && ls)
if [ "$old" != "$new" ]; then
	echo "not ok: the series' files differ from a regeneration:"
	diff <(echo "$old") <(echo "$new") | sed 's/^/  /'
	fail=1
else
	stale=0
	for p in $new; do
		if ! diff -q <(norm "$SERIES_OUT/$p") <(norm "$work/regen/$p") >/dev/null; then
			echo "not ok: $p differs from a regeneration:"
			diff -u <(norm "$SERIES_OUT/$p") <(norm "$work/regen/$p") | sed -n '3,20s/^/  /p'
			stale=1
		fi
	done
	if [ $stale = 0 ]; then echo "ok: the series is current ($(echo "$new" | wc -l) files)"; else fail=1; fi
fi
patches=$(cd "$SERIES_OUT" && ls [0-9][0-9][0-9][0-9]-*.patch | grep -v '^0000-')

# 2. git am, patch by patch, onto the pristine files they change.
dmc_log "series-check: git am every patch onto the pristine 7.3 files"
# Files the patches change but do not create (a file created by one patch and
# changed by a later one is not the base's).
touched=$(cd "$SERIES_OUT" && awk '/^--- / { from = $2 } /^\+\+\+ b\// {
	f = substr($2, 3); if (from == "/dev/null") created[f] = 1; else if (!(f in created)) base[f] = 1 }
	END { for (f in base) print f }' $patches | sort)
pristine=$(dmc_series_pristine $touched)
repo=$work/am
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME="$DMC_SERIES_NAME" GIT_AUTHOR_EMAIL="$DMC_SERIES_EMAIL"
export GIT_COMMITTER_NAME="$DMC_SERIES_NAME" GIT_COMMITTER_EMAIL="$DMC_SERIES_EMAIL"
git init -q "$repo"
for f in $touched; do
	mkdir -p "$repo/$(dirname "$f")"
	cp "$pristine/$f" "$repo/$f"
done
git -C "$repo" add -A
git -C "$repo" commit -q -m "pristine 7.3 files the series changes"
am_ok=1 refs_ok=1
for p in $patches; do
	if ! out=$(git -C "$repo" am -q "$SERIES_OUT/$p" 2>&1); then
		echo "not ok: git am $p:"
		printf '%s\n' "$out" | sed 's/^/  /'
		fail=1 am_ok=0
		break
	fi
	if ! out=$(python3 "$DMC_TOP/tools/series/series.py" check-step --tree "$repo" \
		--srctree "$srctree" --patch "$SERIES_OUT/$p" --pristine "$pristine"); then
		echo "not ok: after $p the tree lacks what it refers to:"
		printf '%s\n' "$out" | sed 's/^/  /'
		fail=1 refs_ok=0
	fi
done
[ $am_ok = 0 ] || echo "ok: git am applies all $(echo "$patches" | wc -w) patches"
[ $am_ok = 0 ] || [ $refs_ok = 0 ] || echo "ok: after each patch, what its added lines refer to is there, and no name of a later patch is used"

# 3. The last step is what the out-of-tree build puts in the tree.
if [ $am_ok = 1 ]; then
	dmc_log "series-check: the final tree against the overlay's"
	stage=$work/overlay
	ovl=$DMC_TOP/tools/kernel/patches/7.3
	patched=$(cat "$ovl"/*.patch | sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' | sort -u)
	pristine=$(dmc_series_pristine $patched)
	for f in $patched; do mkdir -p "$stage/$(dirname "$f")"; cp "$pristine/$f" "$stage/$f"; done
	for p in "$ovl"/*.patch; do
		patch -s -p1 --fuzz=0 --forward --batch --no-backup-if-mismatch -r - -d "$stage" <"$p" ||
			dmc_die "$p does not apply to the pristine files"
	done
	bad=0 n=0
	same() { # same <expected file> <tree path>
		n=$((n + 1))
		if [ ! -e "$repo/$2" ]; then echo "not ok: $2 is not in the series' final tree"; bad=1
		elif ! cmp -s "$1" "$repo/$2"; then echo "not ok: $2 differs from ${1#"$DMC_TOP"/}"; bad=1; fi
	}
	for f in $patched; do same "$stage/$f" "$f"; done
	for f in $(cd "$DMC_TOP" && find rust/kernel rust/helpers -type f | sort); do same "$DMC_TOP/$f" "$f"; done
	same "$DMC_TOP/rust/md/dm_rlinear.rs" drivers/md/dm_rlinear.rs
	for f in $(cd "$DMC_TOP/rust/md/clone" && find . -name '*.rs' | sort); do
		same "$DMC_TOP/rust/md/clone/${f#./}" "drivers/md/dm-clone-rs/${f#./}"
	done
	# Nothing of ours in the tree that the repo does not have.
	for f in $(cd "$repo" && git ls-files rust/kernel rust/helpers drivers/md/dm-clone-rs | grep -v Makefile); do
		case $f in
		drivers/md/dm-clone-rs/*) g=rust/md/clone/${f#drivers/md/dm-clone-rs/} ;;
		*) g=$f ;;
		esac
		[ -e "$DMC_TOP/$g" ] || grep -qxF "$f" <<<"$patched" || git -C "$repo" cat-file -e "HEAD~$(echo "$patches" | wc -w):$f" 2>/dev/null ||
			{ echo "not ok: $f is in the series but not in the repository"; bad=1; }
	done
	if [ $bad = 0 ]; then echo "ok: the final tree equals the overlay's ($n files)"; else fail=1; fi
fi

# 4. checkpatch --strict.
dmc_log "series-check: scripts/checkpatch.pl --strict on every patch"
errors=0
printf '%-62s %6s %8s %6s\n' patch errors warnings checks
for p in $patches; do
	out=$(cd "$srctree" && perl scripts/checkpatch.pl --strict --show-types --no-summary \
		"$SERIES_OUT/$p" 2>&1 || true)
	printf '%s\n' "$out" >"$work/$p.checkpatch"
	e=$(grep -c '^ERROR:' <<<"$out" || true)
	w=$(grep -c '^WARNING:' <<<"$out" || true)
	c=$(grep -c '^CHECK:' <<<"$out" || true)
	printf '%-62s %6s %8s %6s\n' "${p:0:62}" "$e" "$w" "$c"
	errors=$((errors + e))
done
for p in $patches; do
	if grep -q '^\(ERROR\|WARNING\|CHECK\):' "$work/$p.checkpatch"; then
		echo "$p:"
		awk '/^(ERROR|WARNING|CHECK):/ { msg = $0; getline loc; sub(/^#[0-9]+: */, "", loc);
			printf "  %s\n      %s\n", msg, loc }' "$work/$p.checkpatch"
	fi
done
if [ "$errors" -gt 0 ]; then
	echo "not ok: checkpatch found $errors errors"
	fail=1
else
	echo "ok: checkpatch --strict: no errors"
fi

echo "not done here (the full series-check): a build after every patch (CLIPPY=1 W=1), rustfmtcheck, rustdoc, VM boot and selftests"
[ $fail = 0 ] || dmc_die "series-check failed"
echo "series-check (cheap form): passed"

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Builds variants of the C dm-clone target, to find where its per-bio cost on
# copied regions goes (tools/bench/c-per-bio.sh measures them against ours):
#   dm-clone-v0  the kernel's own source, built out of tree (same as in-tree)
#   dm-clone-v1  without the ios_in_flight atomic_inc/atomic_dec of every bio
#   dm-clone-v2  a bio to a copied region returned DM_MAPIO_REMAPPED (as ours)
#                instead of submitted by the target from map (remap_and_issue)
#   dm-clone-v3  both
# Output: the modules in $DMC_CACHE/c-variants (run with
#   tools/bench/c-variants.sh && DMC_EXTRA_MODULES=$DMC_CACHE/c-variants \
#   make vm-run SCRIPT=tools/bench/c-per-bio.sh).
# The variants differ from the kernel's file only where said; they are for
# measuring, never for use.
source "$(dirname "$0")/../build/env.sh"
set -euo pipefail
src=$(dmc_srctree)
obj=$(dmc_objtree)
out=$DMC_CACHE/c-variants
work=$out/build
rm -rf "$out"
mkdir -p "$work"
for v in v0 v1 v2 v3; do
	d=$work/$v
	mkdir -p "$d"
	cp "$src"/drivers/md/dm-clone-{target.c,metadata.c,metadata.h} "$d/"
	printf 'obj-m := dm-clone-%s.o\ndm-clone-%s-y := dm-clone-target.o dm-clone-metadata.o\nccflags-y := -I%s/drivers/md\n' \
		"$v" "$v" "$src" >"$d/Kbuild"
	python3 - "$d/dm-clone-target.c" "$v" <<'PY'
import sys
p, v = sys.argv[1], sys.argv[2]
s = open(p).read()
def sub(a, b):
    global s
    if a not in s:
        sys.exit(f"c-variants: the C source changed, cannot make {v}: {a[:40]!r}")
    s = s.replace(a, b, 1)
if v in ("v1", "v3"):
    sub("\tunsigned long region_nr;\n\n\tatomic_inc(&clone->ios_in_flight);\n",
        "\tunsigned long region_nr;\n\n")
    sub("\tstruct clone *clone = ti->private;\n\n\tatomic_dec(&clone->ios_in_flight);\n\n\treturn DM_ENDIO_DONE;",
        "\treturn DM_ENDIO_DONE;")
if v in ("v2", "v3"):
    sub("\tif (dm_clone_is_region_hydrated(clone->cmd, region_nr)) {\n\t\tremap_and_issue(clone, bio);",
        "\tif (dm_clone_is_region_hydrated(clone->cmd, region_nr)) {\n"
        "\t\tif (!bio_triggers_commit(clone, bio)) {\n"
        "\t\t\tremap_to_dest(clone, bio);\n"
        "\t\t\treturn DM_MAPIO_REMAPPED;\n\t\t}\n\t\tremap_and_issue(clone, bio);")
open(p, "w").write(s)
PY
	"${DMC_KMAKE[@]}" -C "$obj" M="$d" -s modules
	cp "$d/dm-clone-$v.ko" "$out/"
done
ls "$out"/*.ko

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Build the mainline patch series from this repository (see tools/series/steps.py).

The series is computed, never edited: each file the series touches has a *final*
content (a repo file for a new file; for an existing kernel file, its pristine
7.3 version with tools/kernel/patches/7.3/*.patch and tools/series/patches/*.patch
applied, as the out-of-tree overlay does), and steps.py says which step adds
which of its lines. A file's content after step k is its final content without
the lines of later steps. A step may also apply a patch file whole (a C change
with deletions). The commits are made in a scratch git repository holding only
the touched files (a sparse base), and `git format-patch --cover-letter` writes
the series.

Usage:
  series.py files                       the kernel files the series changes
  series.py generate --pristine DIR --out DIR --date DATE --name N --email E
"""

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERIES = os.path.join(TOP, "tools", "series")
OVERLAY_PATCHES = os.path.join(TOP, "tools", "kernel", "patches", "7.3")
SERIES_PATCHES = os.path.join(SERIES, "patches")

sys.dont_write_bytecode = True
sys.path.insert(0, SERIES)
import steps as S  # noqa: E402


def die(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def patch_files(path):
    """Tree paths a patch changes (its +++ b/ lines), and those it creates."""
    changed, created = [], []
    prev = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("--- "):
                prev = line[4:].split("\t")[0].strip()
            m = re.match(r"^\+\+\+ b/(\S+)", line)
            if m:
                changed.append(m.group(1))
                if prev == "/dev/null":
                    created.append(m.group(1))
    return changed, created


def listdir_patches(d):
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".patch"))


def overlay_patches():
    return listdir_patches(OVERLAY_PATCHES)


def series_patches():
    return listdir_patches(SERIES_PATCHES)


def whole_patches():
    """Patch files that steps apply whole, by absolute path."""
    out = [os.path.join(TOP, p) for st in S.STEPS for p in st.apply]
    for p in out:
        if not os.path.exists(p):
            die(f"tools/series/steps.py applies {os.path.relpath(p, TOP)}, which does not exist "
                "(renamed or dropped from tools/kernel/patches/7.3? update steps.py)")
    return out


def existing_files():
    """Kernel files the series changes (they must exist in the pristine tree)."""
    out = set()
    for p in overlay_patches() + series_patches() + whole_patches():
        changed, created = patch_files(p)
        out.update(f for f in changed if f not in created)
    return sorted(out)


def substitute(text, name, email):
    return text.replace("@NAME@", name).replace("@EMAIL@", email)


def run(cmd, cwd=None, env=None, input=None):
    r = subprocess.run(cmd, cwd=cwd, env=env, input=input, capture_output=True, text=True)
    if r.returncode != 0:
        die(f"{' '.join(cmd)} failed in {cwd}:\n{r.stdout}{r.stderr}")
    return r.stdout


def apply_patch(tree, patch_text, label):
    """patch -p1 --fuzz=0, as tools/build/overlay.sh applies the overlay."""
    r = subprocess.run(
        ["patch", "-p1", "--fuzz=0", "--forward", "--batch", "--no-backup-if-mismatch",
         "-r", "-", "-d", tree], input=patch_text, capture_output=True, text=True)
    if r.returncode != 0:
        die(f"{label} does not apply to the pristine 7.3 files:\n{r.stdout}{r.stderr}")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def final_contents(pristine, name, email):
    """{tree path: final text} for every file the line model covers, plus the set of
    files that whole-applied patches own."""
    whole_owned = set()
    for p in whole_patches():
        changed, _ = patch_files(p)
        whole_owned.update(changed)
    stage = tempfile.mkdtemp(prefix="dmc-series-final.")
    try:
        for f in existing_files():
            src = os.path.join(pristine, f)
            if not os.path.exists(src):
                die(f"{f} is not in the pristine files ({pristine})")
            write(os.path.join(stage, f), read(src))
        for p in overlay_patches() + series_patches():
            if p in whole_patches():
                continue
            changed, _ = patch_files(p)
            both = whole_owned.intersection(changed)
            if both:
                die(f"{p} changes {', '.join(sorted(both))}, which a whole-applied patch owns")
            apply_patch(stage, substitute(read(p), name, email), os.path.relpath(p, TOP))
        final = {}
        for f in existing_files():
            if f not in whole_owned:
                final[f] = read(os.path.join(stage, f))
    finally:
        shutil.rmtree(stage)
    for st in S.STEPS:
        for repo_path, tree_path in st.new_pairs():
            if tree_path in final:
                die(f"{tree_path}: new in step '{st.subject}' but also an existing file")
            final[tree_path] = read(os.path.join(TOP, repo_path))
    return final, whole_owned


def check_coverage():
    """Every file of the kernel crate's additions and of the targets is in a step."""
    placed = {r for st in S.STEPS for r, _ in st.new_pairs()}
    missing = []
    for d, pat in (("rust/kernel", None), ("rust/helpers", None), ("rust/md", ".rs")):
        for root, _, files in os.walk(os.path.join(TOP, d)):
            for f in files:
                rel = os.path.relpath(os.path.join(root, f), TOP)
                if (pat is None or f.endswith(pat)) and rel not in placed:
                    missing.append(rel)
    for r in sorted(placed):
        if not os.path.exists(os.path.join(TOP, r)):
            die(f"steps.py places {r}, which is not in the repository")
    if missing:
        die("no step of tools/series/steps.py adds: " + ", ".join(sorted(missing)))


class Model:
    """Every line of every final file, with the step that adds it (None: pristine)."""

    def __init__(self, pristine, name, email):
        check_coverage()
        self.final, self.whole_owned = final_contents(pristine, name, email)
        self.creator = {}  # new tree path -> step index
        for i, st in enumerate(S.STEPS):
            for _, tree_path in st.new_pairs():
                if tree_path in self.creator:
                    die(f"{tree_path} is created by two steps")
                self.creator[tree_path] = i
        self.lines = {f: t.splitlines(keepends=True) for f, t in self.final.items()}
        self.owner = {}
        self.eligible = {}
        for f, lines in self.lines.items():
            if f in self.creator:
                self.owner[f] = [self.creator[f]] * len(lines)
                self.eligible[f] = [True] * len(lines)
            else:
                base = read(os.path.join(pristine, f)).splitlines(keepends=True)
                owner = [None] * len(lines)
                elig = [False] * len(lines)
                sm = difflib.SequenceMatcher(None, base, lines, autojunk=False)
                for tag, i1, i2, j1, j2 in sm.get_opcodes():
                    if tag == "equal":
                        continue
                    if tag != "insert":
                        die(f"{f}: the overlay and series patches delete or change pristine "
                            "lines: apply that patch whole in its step (Step.apply)")
                    for j in range(j1, j2):
                        elig[j] = True
                slide_down(lines, elig)
                self.owner[f] = owner
                self.eligible[f] = elig
        self.resolve()

    def resolve(self):
        claimed = {f: [None] * len(l) for f, l in self.lines.items()}
        claims = []
        for i, st in enumerate(S.STEPS):
            for f, specs in st.adds.items():
                if f not in self.lines:
                    die(f"step {i + 1} '{st.subject}': {f} is not a file of the series")
                if f in self.creator and self.creator[f] >= i:
                    die(f"step {i + 1} '{st.subject}': claims lines of {f}, "
                        "which a later step (or itself) creates")
                for spec in specs:
                    claims.append((spec_rank(spec), i, f, spec))
        for rank, i, f, spec in sorted(claims, key=lambda c: c[0]):
            lines, elig, got = self.lines[f], self.eligible[f], claimed[f]
            where = f"step {i + 1} '{S.STEPS[i].subject}', {f}, {spec!r}"
            if spec is S.REST:
                idx = [j for j in range(len(lines)) if elig[j] and got[j] is None
                       and f not in self.creator]
                if f in self.creator:
                    die(f"{where}: REST is for existing files")
            elif isinstance(spec, str):
                idx = [j for j in range(len(lines)) if elig[j]
                       and re.search(spec, lines[j].rstrip("\n"))]
                taken = [j for j in idx if got[j] is not None]
                if taken:
                    die(f"{where}: line {taken[0] + 1} is claimed twice")
            else:
                idx = spec.select(lines, where)
                idx = [j for j in idx if got[j] is None]
                bad = [j for j in idx if not elig[j]]
                if bad:
                    die(f"{where}: line {bad[0] + 1} is a pristine line")
            if not idx:
                die(f"{where}: matches no line the series adds")
            for j in idx:
                got[j] = i
        for f, lines in self.lines.items():
            for j in range(len(lines)):
                if claimed[f][j] is not None:
                    self.owner[f][j] = claimed[f][j]
                elif f not in self.creator and self.eligible[f][j]:
                    die(f"{f}:{j + 1}: no step adds this line: {lines[j].rstrip()}")

    def content(self, f, k):
        """The text of f after step k (None: absent)."""
        if f in self.creator and self.creator[f] > k:
            return None
        return "".join(l for l, o in zip(self.lines[f], self.owner[f]) if o is None or o <= k)


def slide_down(lines, elig):
    """Moves each run of added lines down as far as the same text allows, so that an
    entry added with its blank separator ends with the blank (as diff tools show it)
    rather than starting with it, whatever the alignment difflib chose."""
    n, a = len(lines), 0
    while a < n:
        if not elig[a]:
            a += 1
            continue
        b = a
        while b < n and elig[b]:
            b += 1
        while b < n and not elig[b] and lines[a] == lines[b]:
            elig[a], elig[b] = False, True
            a, b = a + 1, b + 1
        a = b


def spec_rank(spec):
    if isinstance(spec, str):
        return 0
    if spec is S.REST:
        return 2
    return 1


def git(repo, *args, env=None, input=None):
    return run(["git", "-C", repo] + list(args), env=env, input=input)


def generate(args):
    name, email = args.name, args.email
    m = Model(args.pristine, name, email)
    repo = tempfile.mkdtemp(prefix="dmc-series-repo.")
    try:
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("GIT_"):
                del env[k]
        env.update({
            "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email,
            "GIT_AUTHOR_DATE": args.date, "GIT_COMMITTER_DATE": args.date,
            "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
        })
        run(["git", "init", "-q", "-b", "base", repo], env=env)
        for f in existing_files():
            write(os.path.join(repo, f), read(os.path.join(args.pristine, f)))
        git(repo, "add", "-A", env=env)
        git(repo, "commit", "-q", "-m", "pristine files of Linux 7.3 that the series changes",
            env=env)
        git(repo, "tag", "pristine", env=env)
        for k, st in enumerate(S.STEPS):
            for f in m.lines:
                text = m.content(f, k)
                path = os.path.join(repo, f)
                if text is None:
                    continue
                if not os.path.exists(path) or read(path) != text:
                    write(path, text)
            for p in st.apply:
                git(repo, "apply", "--whitespace=nowarn", os.path.join(TOP, p), env=env)
            git(repo, "add", "-A", env=env)
            if not git(repo, "status", "--porcelain", env=env).strip():
                die(f"step {k + 1} '{st.subject}' changes nothing")
            long = [l for l in st.message.splitlines() if len(l) > 75]
            if long:
                die(f"step {k + 1} '{st.subject}': message line over 75 columns: {long[0]}")
            msg = f"{st.subject}\n\n{st.message.strip()}\n\nSigned-off-by: {name} <{email}>\n"
            git(repo, "commit", "-q", "-F", "-", env=env, input=msg)
        # The last step's tree must be the final content of every file.
        for f in m.lines:
            if read(os.path.join(repo, f)) != m.final[f]:
                die(f"{f}: the series' last step differs from its final content")
        out = args.out
        if os.path.isdir(out):
            # Emptied first, but only if it holds nothing but a series.
            other = [f for f in os.listdir(out) if not re.match(r"^\d{4}-.*\.patch$", f)]
            if other:
                die(f"{out} holds other files than a series ({other[0]}, ...): not emptying it")
            shutil.rmtree(out)
        os.makedirs(out)
        git(repo, "-c", "core.abbrev=12", "-c", "diff.renames=false",
            "format-patch", "-q", "--cover-letter", "--no-signature", "--no-numbered-files",
            "--summary", "--stat=80", "-o", out, "pristine..HEAD", env=env)
        fill_cover(out, name, email)
    finally:
        if not args.keep:
            shutil.rmtree(repo)
        else:
            print(f"scratch repository kept: {repo}", file=sys.stderr)


def patch_number(text):
    """The number of the patch whose subject contains text (@N(text)@ in the cover)."""
    hits = [i + 1 for i, st in enumerate(S.STEPS) if text in st.subject]
    if len(hits) != 1:
        die(f"cover-letter.txt: @N({text})@ matches {len(hits)} patch subjects, not one")
    return str(hits[0])


def fill_cover(out, name, email):
    path = os.path.join(out, "0000-cover-letter.patch")
    text = read(path)
    tpl = substitute(read(os.path.join(SERIES, "cover-letter.txt")), name, email)
    subject, _, blurb = tpl.partition("\n")
    blurb = "".join(l for l in blurb.splitlines(keepends=True) if not l.startswith("#"))
    if "*** SUBJECT HERE ***" not in text or "*** BLURB HERE ***" not in text:
        die("the cover letter has no *** SUBJECT HERE *** / *** BLURB HERE ***")
    blurb = re.sub(r"@N\(([^)]*)\)@", lambda m: patch_number(m.group(1)), blurb)
    text = text.replace("*** SUBJECT HERE ***", subject.strip())
    text = text.replace("*** BLURB HERE ***", blurb.strip("\n"))
    write(path, text)


def patch_added(patch_text):
    """{tree path: [added lines]} of a patch."""
    out, cur = {}, None
    for line in patch_text.splitlines():
        m = re.match(r"^\+\+\+ b/(\S+)", line)
        if m:
            cur = out.setdefault(m.group(1), [])
        elif line.startswith("+++ ") or line.startswith("diff --git"):
            cur = None
        elif cur is not None and line.startswith("+"):
            cur.append(line[1:])
    return out


def kconfig_symbols(tree, src, subdirs):
    """Symbols of the sparse tree's Kconfig files, and of the full source tree's
    others (where the sparse tree has the file, its version counts)."""
    syms = set()
    for t in [tree] + [os.path.join(src, d) for d in subdirs]:
        for root, dirs, files in os.walk(t):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for f in files:
                rel = os.path.relpath(os.path.join(root, f), src if t != tree else tree)
                if t != tree and os.path.exists(os.path.join(tree, rel)):
                    continue
                if f.startswith("Kconfig"):
                    try:
                        text = read(os.path.join(root, f))
                    except (UnicodeDecodeError, OSError):
                        continue
                    syms.update(re.findall(r"^\s*(?:menu)?config\s+(\w+)", text, re.M))
    return syms


DEF_RE = re.compile(r"\b(?:fn|struct|enum|trait|type|const|static|mod|union)\s+(?:mut\s+)?"
                    r"([A-Za-z_][A-Za-z0-9_]*)|macro_rules!\s*([A-Za-z_][A-Za-z0-9_]*)")


def rs_defs(text):
    return {a or b for a, b in DEF_RE.findall(text)}


def rs_code(text):
    """The code of a Rust file: its lines without comments, plus the code of its
    doc tests (which are compiled)."""
    out, in_test = [], False
    for line in text.splitlines():
        t = line.strip()
        m = re.match(r"^//[/!]\s?(.*)$", t)
        if m:
            doc = m.group(1)
            if doc.startswith("```"):
                in_test = not in_test and doc[3:].strip() in ("", "rust", "no_run")
                continue
            if in_test and not doc.startswith("# "):
                out.append(doc)
            elif in_test:
                out.append(doc[2:])
            continue
        if t.startswith("//"):
            continue
        out.append(re.sub(r'"(?:[^"\\]|\\.)*"', '""', line.split("//")[0]))
    return "\n".join(out)


def walk_rs(root):
    for r, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            if f.endswith(".rs"):
                yield os.path.join(r, f)


def check_names(tree, src, pristine):
    """Names new with this series (in no 7.3 Rust file), used in the tree before the
    patch that defines them: a forward reference to a later patch. A cheap stand-in
    for the per-patch build, which proves the rest."""
    ovl = os.path.join(src, ".dmc-overlay")
    if not os.path.exists(os.path.join(ovl, "patched")):
        return [f"{src} has no .dmc-overlay: cannot tell 7.3's names from ours"]
    ours_files = set(read(os.path.join(ovl, "files")).split())
    patched = set(read(os.path.join(ovl, "patched")).split())
    known = set()
    for path in walk_rs(os.path.join(src, "rust")):
        rel = os.path.relpath(path, src)
        if rel in ours_files:
            continue
        if rel in patched:
            path = os.path.join(pristine, rel)
        if os.path.exists(path):
            known |= set(re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", read(path)))
    ours = {}
    for d in ("rust/kernel", "rust/md"):
        for path in sorted(walk_rs(os.path.join(TOP, d))):
            for name in rs_defs(read(path)) - known:
                ours.setdefault(name, os.path.relpath(path, TOP))
    texts = {os.path.relpath(p, tree): read(p) for p in walk_rs(tree)}
    defined = set()
    for t in texts.values():
        defined |= rs_defs(t)
    problems = []
    for rel, t in sorted(texts.items()):
        code = rs_code(t)
        # Types and traits (capitalised), macros (name!) and path segments (::name):
        # not local variables, which may share a later patch's function names.
        words = set(re.findall(r"\b[A-Z][A-Za-z0-9_]*\b", code))
        words |= set(re.findall(r"\b([a-z_][a-z0-9_]*)!", code))
        words |= set(re.findall(r"::([a-z_][a-z0-9_]*)\b", code))
        for w in sorted(words):
            if w in ours and w not in defined:
                problems.append(f"{rel}: uses {w}, which {ours[w]} defines in a later patch")
    return problems


def check_step(args):
    """The tree after one patch holds what that patch's added lines refer to."""
    tree, src = args.tree, args.srctree
    added = patch_added(read(args.patch))
    problems = []

    # The source tree is pristine but for what the overlay put in: ours, not 7.3's.
    ovl = os.path.join(src, ".dmc-overlay", "files")
    ours = set(read(ovl).split()) if os.path.exists(ovl) else set()

    def exists(rel):
        if os.path.exists(os.path.join(tree, rel)):
            return True
        return rel not in ours and os.path.exists(os.path.join(src, rel))

    syms = None
    for f, lines in added.items():
        d = os.path.dirname(f)
        for l in lines:
            m = re.match(r"^\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+(\w+);", l)
            if f.endswith(".rs") and m:
                base = os.path.basename(f)
                crate_root = base in ("lib.rs", "mod.rs") or any(
                    re.search(rf"\b{re.escape(base[:-3])}\.o\b", read(mk))
                    for mk in [os.path.join(tree, d, "Makefile")] if os.path.exists(mk))
                mdir = d if crate_root else f[:-3]
                name = m.group(1)
                if not (exists(f"{mdir}/{name}.rs") or exists(f"{mdir}/{name}/mod.rs")):
                    problems.append(f"{f}: 'mod {name};' but no {mdir}/{name}.rs")
            m = re.match(r'^#include "(.+)"', l)
            if m and f.endswith((".c", ".h")):
                rel = os.path.normpath(os.path.join(d, m.group(1)))
                if not exists(rel):
                    problems.append(f"{f}: includes {m.group(1)}, which is not there")
            m = re.match(r"^#include <(.+)>", l)
            if m and not exists(f"include/{m.group(1)}"):
                problems.append(f"{f}: includes <{m.group(1)}>, which is not in include/")
            m = re.match(r"^obj-\$\(CONFIG_(\w+)\)\s*\+=\s*(.*)", l)
            if m and os.path.basename(f) == "Makefile":
                for o in m.group(2).split():
                    if o.endswith("/"):
                        if not exists(f"{d}/{o}Makefile"):
                            problems.append(f"{f}: {o} has no Makefile")
                    elif not (exists(f"{d}/{o[:-2]}.c") or exists(f"{d}/{o[:-2]}.rs")):
                        problems.append(f"{f}: {o} has no source")
                if syms is None:
                    syms = kconfig_symbols(tree, src, ["drivers", "init", "block"])
                if m.group(1) not in syms:
                    problems.append(f"{f}: CONFIG_{m.group(1)} is not defined by any Kconfig")
            m = re.match(r"^\s*(?:depends on|select)\s+(.*)", l)
            if m and os.path.basename(f).startswith("Kconfig"):
                if syms is None:
                    syms = kconfig_symbols(tree, src, ["drivers", "init", "block"])
                for sym in re.findall(r"\b([A-Z][A-Z0-9_]+)\b", m.group(1)):
                    if sym not in syms:
                        problems.append(f"{f}: {sym} is not defined by any Kconfig")
    if args.pristine:
        problems += check_names(tree, src, args.pristine)
    for p in problems:
        print(p)
    return 1 if problems else 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("files")
    g = sub.add_parser("generate")
    g.add_argument("--pristine", required=True)
    g.add_argument("--out", required=True)
    g.add_argument("--date", required=True)
    g.add_argument("--name", required=True)
    g.add_argument("--email", required=True)
    g.add_argument("--keep", action="store_true")
    c = sub.add_parser("check-step")
    c.add_argument("--tree", required=True)
    c.add_argument("--srctree", required=True)
    c.add_argument("--patch", required=True)
    c.add_argument("--pristine", help="pristine files, to check names across patches")
    args = ap.parse_args()
    if args.cmd == "files":
        print("\n".join(existing_files()))
    elif args.cmd == "generate":
        generate(args)
    elif args.cmd == "check-step":
        sys.exit(check_step(args))


if __name__ == "__main__":
    main()

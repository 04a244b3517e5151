#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Tests of the harness itself, run on the host by `make check` before the VM
# boots. Prints KTAP: the plan, then one line per test ("host: ..."); exit 1 if
# any failed. summary.sh counts a planned test that never reported as failed,
# so a crash of this script shows.
# runs/ holds the runs the summary is tested on (runs/README): clean/ and
# warn-on/ are real, the others are synthetic, one case each.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vm=$here/..
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The number of tests below: change it with them (checked at the end).
plan=31
echo "KTAP version 1"
echo "1..$plan"
n=0
failed=0
result() { # result <0|1> <description>; no "#" in it (KTAP: a directive)
	n=$((n + 1))
	case "$2" in *"#"*) set -- 1 "$2 (has a #)" ;; esac
	if [ "$1" = 0 ]; then echo "ok $n host: $2"; else echo "not ok $n host: $2"; failed=1; fi
}
check() { local d=$1; shift; "$@" >"$tmp/out" 2>&1; result $? "$d" || true; }

# Log checker.
check "logcheck passes the kernel log of a clean run" \
	"$vm/logcheck.sh" "$here/runs/clean/kernel.log"
"$vm/logcheck.sh" "$here/runs/warn-on/kernel.log" >"$tmp/lc" 2>&1
rc=$?
[ $rc = 1 ] && grep -q "report during dm-clone/provoke.sh" "$tmp/lc" &&
	grep -q "WARNING: CPU: 0 PID: .* at .*warn_provoke.c" "$tmp/lc"
result $? "logcheck fails on a WARN_ON and names the test that was running"
# upstream-known/: 7.3's own hrtimer doctest on the debug kernel (a known
# upstream report): ignored, and said so. The same report from another caller,
# or with another report inside its window, still fails.
"$vm/logcheck.sh" "$here/runs/upstream-known/kernel.log" >"$tmp/lc" 2>"$tmp/lc.err"
[ $? = 0 ] && [ ! -s "$tmp/lc" ] &&
	grep -q "known upstream report during (boot), ignored: ODEBUG" "$tmp/lc.err"
result $? "logcheck ignores a known upstream report (mainline's hrtimer doctest), saying so on stderr"
sed 's/rust_doctest_kernel_time_hrtimer_rs_[0-9]*/dm_clone_rs_worker/' \
	"$here/runs/upstream-known/kernel.log" >"$tmp/other.log"
"$vm/logcheck.sh" "$tmp/other.log" >/dev/null 2>&1
result $([ $? = 1 ] && echo 0 || echo 1) "logcheck fails on the same report from another caller"
sed '20a [   11.790000] BUG: KASAN: slab-use-after-free in dm_clone_rs_worker+0x10/0x20' \
	"$here/runs/upstream-known/kernel.log" >"$tmp/inside.log"
"$vm/logcheck.sh" "$tmp/inside.log" >/dev/null 2>&1
result $([ $? = 1 ] && echo 0 || echo 1) "logcheck fails on a report inside a known report's lines"

# Summary: counts, exit status, tests the VM never reported.
# summary <run dir> [problem...] -> the last line; the whole summary in
# $tmp/sum, its exit status in $tmp/rc. The run's files (out.log, kernel.log,
# host.ktap if any) are copied: summary.sh writes into its run directory.
summary() {
	rm -rf "$tmp/run"
	mkdir "$tmp/run"
	cp "$1"/* "$tmp/run/"
	"$vm/logcheck.sh" "$tmp/run/kernel.log" >"$tmp/run/logcheck.txt"
	shift
	"$vm/summary.sh" "$tmp/run" "$@" >"$tmp/sum" 2>&1
	echo $? >"$tmp/rc"
	tail -n1 "$tmp/sum"
}
# The tests named in the last summary's "# failed:" list, one a line.
failed_list() { sed -n '/^# failed:$/,/^# logs: /s/^#   //p' "$tmp/sum"; }
# summary_is <run dir> <last line> <exit status> [failed test...]: the summary
# of the run ends with that line, exits with that status, and its "# failed:"
# list holds exactly those tests, in that order.
summary_is() {
	local run=$1 last=$2 rc=$3
	shift 3
	[ "$(summary "$run")" = "$last" ] && [ "$(cat "$tmp/rc")" = "$rc" ] &&
		[ "$(failed_list)" = "$(printf '%s\n' "$@" | sed '/^$/d')" ]
}
[ "$(summary "$here/runs/clean")" = "5 passed, 0 failed, 0 skipped" ] && [ "$(cat "$tmp/rc")" = 0 ]
result $? "summary of a clean run: 5 passed, exit 0"
[ "$(summary "$here/runs/warn-on")" = "2 passed, 1 failed, 0 skipped" ] && [ "$(cat "$tmp/rc")" != 0 ]
result $? "summary of a run with a kernel warning: 1 failed, non-zero exit"
mkdir -p "$tmp/cut"
cp "$here/runs/clean/kernel.log" "$tmp/cut/"
grep -v "copy_data.sh" "$here/runs/clean/out.log" >"$tmp/cut/out.log"
[ "$(summary "$tmp/cut" "the VM stopped before its program finished (crash or panic?)")" = \
	"4 passed, 2 failed, 0 skipped" ]
result $? "summary counts a test the VM never reported, and the crash, as failed"

# The synthetic runs (runs/README): one case each.
summary_is "$here/runs/selftest-fail" "3 passed, 1 failed, 0 skipped" 1 \
	"selftests: dm-clone: bad_table.sh # exit=1" &&
	grep -A2 -x "not ok 3 selftests: dm-clone: bad_table.sh # exit=1" "$tmp/sum" | tail -n 2 |
	cmp -s - <(printf '%s\n' "# dmsetup create accepted: 0 131072 clone /dev/ram0 /dev/ram1 /dev/ram2 8" \
		"# not ok 7 target longer than the source")
result $? "summary of a selftest that fails (exit=1): 1 failed, named with its failed check, exit 1"
summary_is "$here/runs/selftest-skip" "3 passed, 0 failed, 1 skipped" 0 &&
	grep -qx "ok 3 selftests: dm-kcopyd: kcopyd.sh # SKIP" "$tmp/sum"
result $? "summary of a selftest that skips: 1 skipped, exit 0"
summary_is "$here/runs/selftest-timeout" "3 passed, 1 failed, 0 skipped" 1 \
	"selftests: dm-clone: copy_data.sh # TIMEOUT 300s"
result $? "summary of a selftest killed by its timeout: 1 failed, named, exit 1"
summary_is "$here/runs/kunit-case-fail" "2 passed, 2 failed, 0 skipped" 1 \
	"kunit: rust_doctests_kernel" "kunit: dmc_synthetic_ok_with_failed_case"
result $? "summary fails a KUnit suite with a failed case, even one whose line says ok"
summary_is "$here/runs/kunit-skip" "3 passed, 0 failed, 2 skipped" 0 &&
	grep -qx "ok 2 kunit: dmc_synthetic_skipped # SKIP" "$tmp/sum" &&
	grep -qx "ok 3 kunit: dmc_synthetic_ok_all_skipped # SKIP" "$tmp/sum"
result $? "summary skips a skipped KUnit suite, and one whose every case skipped"

# The host's tests (this script's KTAP, host.ktap in a run): plan and results.
mkdir -p "$tmp/host"
cp "$here"/runs/clean/* "$tmp/host/"
printf 'KTAP version 1\n1..2\nok 1 host: one\nok 2 host: two\n' >"$tmp/host/host.ktap"
summary_is "$tmp/host" "7 passed, 0 failed, 0 skipped" 0
result $? "summary counts the host tests of a complete plan"
printf 'KTAP version 1\n1..3\nok 1 host: one\nok 2 host: two\n' >"$tmp/host/host.ktap"
summary_is "$tmp/host" "7 passed, 1 failed, 0 skipped" 1 "host: 1 of 3 tests never reported"
result $? "summary counts a host test that never reported as failed"
printf 'ok 1 host: one\nharness.sh: line 9: x: unbound variable\n' >"$tmp/host/host.ktap"
summary_is "$tmp/host" "6 passed, 1 failed, 0 skipped" 1 "host: the harness printed no plan"
result $? "summary fails a host.ktap without a plan"
: >"$tmp/host/host.ktap"
summary_is "$tmp/host" "5 passed, 1 failed, 0 skipped" 1 "host: the harness printed no plan"
result $? "summary fails an empty host.ktap"
[ "$(summary "$here/runs/clean" "host: the harness exited with status 2")" = \
	"5 passed, 1 failed, 0 skipped" ] && [ "$(cat "$tmp/rc")" = 1 ] &&
	[ "$(failed_list)" = "host: the harness exited with status 2" ]
result $? "summary reports run.sh's host problem as failed, under its own name"

# The userspace tools' cargo tests (cargo.txt in a run): one result per test,
# named by crate; a failed test fails; a build error with no test run fails.
mkdir -p "$tmp/cargo"
cp "$here"/runs/clean/* "$tmp/cargo/"
cat >"$tmp/cargo/cargo.txt" <<'C'
     Running unittests src/lib.rs (/c/target/debug/deps/clone_metadata-3e186f3bd19d9857)
test checksum::tests::names ... ok
test checksum::tests::seal ... FAILED
     Running unittests src/lib.rs (/c/target/debug/deps/dmc_replay_log-c5b3e3bc3dca2e35)
test tests::lists ... ok
test tests::slow ... ignored
cargo test exited with status 101
C
summary_is "$tmp/cargo" "7 passed, 1 failed, 1 skipped" 1 "cargo: clone_metadata: checksum::tests::seal" &&
	grep -qx "ok 3 cargo: dmc_replay_log: tests::lists" "$tmp/sum"
result $? "summary counts cargo tests by crate: a failed one fails, an ignored one skips"
printf 'error[E0425]: cannot find value `x`\ncargo test exited with status 101\n' >"$tmp/cargo/cargo.txt"
summary_is "$tmp/cargo" "5 passed, 1 failed, 0 skipped" 1 "cargo: the tools build and their tests run"
result $? "summary fails a cargo run that built nothing"

# The in-guest runner, on fake selftests: pass, skip (4), fail (1), and one
# killed by the timeout of its directory's settings (137). DMC_KMSG keeps the
# markers off the host's /dev/kmsg.
st=$tmp/selftests
mkdir -p "$st/fake" "$st/slow"
printf '#!/bin/sh\necho passing\n' >"$st/fake/pass.sh"
printf '#!/bin/sh\necho "1..0 # SKIP nothing to do"\nexit 4\n' >"$st/fake/skip.sh"
printf '#!/bin/sh\necho failing >&2\nexit 1\n' >"$st/fake/fail.sh"
printf '#!/bin/sh\necho sleeping\nsleep 5\n' >"$st/slow/sleep.sh"
echo timeout=1 >"$st/slow/settings"
chmod +x "$st"/*/*.sh
runner() { # runner <test>... -> output in $tmp/rn, kmsg in $tmp/kmsg, status in $tmp/rc
	: >"$tmp/kmsg"
	(cd / && DMC_SELFTESTS=$st DMC_KMSG=$tmp/kmsg TMPDIR=$tmp "$vm/runner.sh" "$@") >"$tmp/rn" 2>&1
	echo $? >"$tmp/rc"
}
# The KTAP lines are compared exactly; the diagnostics ("# ...") must hold
# each test's output (the shell may add a line of its own, "Killed").
runner fake/pass.sh fake/skip.sh fake/fail.sh slow/sleep.sh
cat >"$tmp/want" <<'W'
KTAP version 1
1..4
ok 1 selftests: fake: pass.sh
ok 2 selftests: fake: skip.sh # SKIP
not ok 3 selftests: fake: fail.sh # exit=1
not ok 4 selftests: slow: sleep.sh # TIMEOUT 1s
W
grep -v '^# ' "$tmp/rn" | cmp -s "$tmp/want" - && [ "$(cat "$tmp/rc")" = 1 ] &&
	[ "$(grep -x -e '# passing' -e '# 1\.\.0 # SKIP nothing to do' -e '# failing' \
		-e '# sleeping' "$tmp/rn" | wc -l)" = 4 ]
result $? "runner: pass, skip, exit=1 and TIMEOUT 1s lines, plan 1..4, exit 1"
for t in fake/pass.sh fake/skip.sh fake/fail.sh slow/sleep.sh; do
	printf 'dmc-selftest: begin %s\ndmc-selftest: end %s\n' "$t" "$t"
done >"$tmp/want"
cmp -s "$tmp/want" "$tmp/kmsg" && [ -z "$(find "$tmp" -maxdepth 1 -name '.dmc-rc*')" ]
result $? "runner: a begin and an end marker per test in DMC_KMSG, no status file left"
mkdir -p "$tmp/rrun"
cp "$here/runs/clean/kernel.log" "$tmp/rrun/"
{ cat "$tmp/rn"; echo "DMC-VM-EXIT 1"; } >"$tmp/rrun/out.log"
summary_is "$tmp/rrun" "3 passed, 2 failed, 1 skipped" 1 \
	"selftests: fake: fail.sh # exit=1" "selftests: slow: sleep.sh # TIMEOUT 1s"
result $? "summary of the runner's output: the failure and the timeout failed, the skip skipped"
runner fake/pass.sh fake/skip.sh
[ "$(sed -n 2p "$tmp/rn")" = "1..2" ] && [ "$(cat "$tmp/rc")" = 0 ]
result $? "runner exits 0 when every test passed or skipped"
# A test's own KTAP overrides its exit status 0: a "not ok" line, or fewer
# results than its plan (a script without ktap_finished exits with its last
# command's status); a plan fully reported, skips included, passes.
printf '#!/bin/sh\necho 1..2\necho "not ok 1 a"\necho "ok 2 b"\n' >"$st/fake/liar.sh"
printf '#!/bin/sh\necho 1..3\necho "ok 1 a"\necho "# ok 2 nested"\n' >"$st/fake/short.sh"
printf '#!/bin/sh\necho 1..2\necho "ok 1 a"\necho "ok 2 b # SKIP"\necho "# not ok 1 nested"\n' \
	>"$st/fake/full.sh"
chmod +x "$st"/fake/*.sh
runner fake/liar.sh fake/short.sh fake/full.sh
cat >"$tmp/want" <<'W'
KTAP version 1
1..3
not ok 1 selftests: fake: liar.sh # exit=0 but 1 of its tests failed
not ok 2 selftests: fake: short.sh # exit=0 but 1 of its 3 planned tests reported
ok 3 selftests: fake: full.sh
W
grep -v '^# ' "$tmp/rn" | cmp -s "$tmp/want" - && [ "$(cat "$tmp/rc")" = 1 ] &&
	[ -z "$(find "$tmp" -maxdepth 1 -name '.dmc-*')" ]
result $? "runner: a test exiting 0 fails on a not ok line or a short plan"

# Overlay: a scratch repo and a scratch kernel tree.
repo=$tmp/repo ktree=$tmp/linux
P=$repo/tools/kernel/patches/6.12
mkdir -p "$repo/tools/build" "$P" "$repo/rust/kernel" "$ktree/rust/kernel"
cp "$vm/../build/env.sh" "$vm/../build/overlay.sh" "$repo/tools/build/"
printf 'pub mod a;\n' >"$ktree/rust/kernel/lib.rs"
printf '// new\n' >"$repo/rust/kernel/new.rs"
cat >"$P/0001-lib.patch" <<'P'
--- a/rust/kernel/lib.rs
+++ b/rust/kernel/lib.rs
@@ -1 +1,2 @@
 pub mod a;
+pub mod new;
P
overlay() { LINUX=${1:-6.12} DMC_CACHE=$tmp/cache "$repo/tools/build/overlay.sh" "$ktree" >"$tmp/ov" 2>&1; }
overlay && cmp -s "$repo/rust/kernel/new.rs" "$ktree/rust/kernel/new.rs" &&
	[ "$(cat "$ktree/rust/kernel/lib.rs")" = "$(printf 'pub mod a;\npub mod new;')" ]
result $? "overlay copies new files and applies patches"
touch -d '2001-01-01' "$ktree/rust/kernel/lib.rs" "$ktree/rust/kernel/new.rs"
overlay && [ -z "$(find "$ktree/rust/kernel" -type f -newermt 2002-01-01)" ]
result $? "overlay run again changes nothing (keeps the build incremental)"
rm "$repo/rust/kernel/new.rs" "$P/0001-lib.patch"
overlay && [ ! -e "$ktree/rust/kernel/new.rs" ] &&
	[ "$(cat "$ktree/rust/kernel/lib.rs")" = "pub mod a;" ]
result $? "overlay removes dropped files and restores unpatched ones"
printf -- '--- a/rust/kernel/lib.rs\n+++ b/rust/kernel/lib.rs\n@@ -1 +1 @@\n-pub mod zzz;\n+pub mod b;\n' \
	>"$P/0002-bad.patch"
! overlay && grep -q "0002-bad.patch does not apply" "$tmp/ov"
result $? "overlay fails loudly on a patch that does not apply"
rm "$P/0002-bad.patch"
mkdir -p "$repo/compat/6.12/rust/kernel"
printf '// 6.12 only\n' >"$repo/compat/6.12/rust/kernel/layer.rs"
overlay && cmp -s "$repo/compat/6.12/rust/kernel/layer.rs" "$ktree/rust/kernel/layer.rs" &&
	overlay 7.3 && [ ! -e "$ktree/rust/kernel/layer.rs" ] && [ "$(cat "$ktree/rust/kernel/lib.rs")" = "pub mod a;" ]
result $? "overlay lays compat/<kernel> over that kernel only (and 7.3 gets none of 6.12's patches)"
rm -r "$repo/compat"
printf '// mine\n' >"$repo/rust/kernel/lib.rs"
! overlay && grep -q "exists in the kernel tree" "$tmp/ov" && [ "$(cat "$ktree/rust/kernel/lib.rs")" = "pub mod a;" ]
result $? "overlay refuses to replace an existing kernel file"

# The plan must match the tests above.
if [ "$n" != "$plan" ]; then
	echo "not ok $((n + 1)) host: the harness ran $n tests, its plan says $plan"
	failed=1
fi
exit $failed

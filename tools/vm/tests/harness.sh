#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Tests of the harness itself, run on the host by `make check` before the VM
# boots. Prints one KTAP line per test ("host: ..."); exit 1 if any failed.
# The recorded runs in runs/ are real: clean/ is a green `make check`, warn-on/
# is a run in which a test module hit WARN_ON(1) (kept to prove the checker).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vm=$here/..
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0
result() { # result <0|1> <description>
	n=$((n + 1))
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

# Summary: counts, exit status, tests the VM never reported.
summary() { # summary <run dir> [problem...] -> last line, exit status in $tmp/rc
	cp "$1"/{out.log,kernel.log} "$tmp/run/"
	"$vm/logcheck.sh" "$tmp/run/kernel.log" >"$tmp/run/logcheck.txt"
	shift
	"$vm/summary.sh" "$tmp/run" "$@" >"$tmp/sum" 2>&1
	echo $? >"$tmp/rc"
	tail -n1 "$tmp/sum"
}
mkdir -p "$tmp/run"
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

# Overlay: a scratch repo and a scratch kernel tree.
repo=$tmp/repo ktree=$tmp/linux
mkdir -p "$repo/tools/build" "$repo/tools/kernel/patches" "$repo/rust/kernel" "$ktree/rust/kernel"
cp "$vm/../build/env.sh" "$vm/../build/overlay.sh" "$repo/tools/build/"
printf 'pub mod a;\n' >"$ktree/rust/kernel/lib.rs"
printf '// new\n' >"$repo/rust/kernel/new.rs"
cat >"$repo/tools/kernel/patches/0001-lib.patch" <<'P'
--- a/rust/kernel/lib.rs
+++ b/rust/kernel/lib.rs
@@ -1 +1,2 @@
 pub mod a;
+pub mod new;
P
overlay() { DMC_CACHE=$tmp/cache "$repo/tools/build/overlay.sh" "$ktree" >"$tmp/ov" 2>&1; }
overlay && cmp -s "$repo/rust/kernel/new.rs" "$ktree/rust/kernel/new.rs" &&
	[ "$(cat "$ktree/rust/kernel/lib.rs")" = "$(printf 'pub mod a;\npub mod new;')" ]
result $? "overlay copies new files and applies patches"
touch -d '2001-01-01' "$ktree/rust/kernel/lib.rs" "$ktree/rust/kernel/new.rs"
overlay && [ -z "$(find "$ktree/rust/kernel" -type f -newermt 2002-01-01)" ]
result $? "overlay run again changes nothing (keeps the build incremental)"
rm "$repo/rust/kernel/new.rs" "$repo/tools/kernel/patches/0001-lib.patch"
overlay && [ ! -e "$ktree/rust/kernel/new.rs" ] &&
	[ "$(cat "$ktree/rust/kernel/lib.rs")" = "pub mod a;" ]
result $? "overlay removes dropped files and restores unpatched ones"
printf -- '--- a/rust/kernel/lib.rs\n+++ b/rust/kernel/lib.rs\n@@ -1 +1 @@\n-pub mod zzz;\n+pub mod b;\n' \
	>"$repo/tools/kernel/patches/0002-bad.patch"
! overlay && grep -q "0002-bad.patch does not apply" "$tmp/ov"
result $? "overlay fails loudly on a patch that does not apply"
rm "$repo/tools/kernel/patches/0002-bad.patch"
printf '// mine\n' >"$repo/rust/kernel/lib.rs"
! overlay && grep -q "exists in the kernel tree" "$tmp/ov" && [ "$(cat "$ktree/rust/kernel/lib.rs")" = "pub mod a;" ]
result $? "overlay refuses to replace an existing kernel file"

exit $failed

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Boot the test VM (QEMU, TCG) with the current flavour's kernel and modules.
#   run.sh check [test-name...]  selftests + boot-time KUnit + log check; prints
#                                KTAP and "N passed, N failed, N skipped"
#   run.sh demo                  the demo (tools/vm/demo.sh)
#   run.sh run <script>          any script, run in the VM from /dmc
#   run.sh shell                 an interactive shell
# Environment: VM_TIMEOUT (seconds, default 2400; 3600 for the debug kernel,
# whose make check takes about 2200 s alone and more on a busy machine), VM_MEM (default 2G),
# DMC_KVM=1 to use KVM instead of TCG (broken on this project's machines).
source "$(dirname "$0")/../build/env.sh"
if [ "$KERNEL" = debug ]; then VM_TIMEOUT=${VM_TIMEOUT:-3600}; else VM_TIMEOUT=${VM_TIMEOUT:-2400}; fi

mode=${1:?usage: run.sh check|demo|run|shell [args]}
shift
obj=$(dmc_objtree)
src=$(dmc_srctree)
base=$("$DMC_TOP/tools/vm/mkinitramfs.sh")
release=$(cat "$obj/include/config/kernel.release")

rundir=$obj/runs/$mode
rm -rf "$rundir"
mkdir -p "$rundir/root/dmc" "$rundir/root/selftests/kselftest" \
	"$rundir/root/lib/modules/$release/extra"

# The per-run archive: /init, guest scripts, selftests, our modules and tools.
install -m755 "$DMC_TOP/tools/vm/init" "$rundir/root/init"
install -m755 "$DMC_TOP"/tools/vm/{runner.sh,demo.sh} "$rundir/root/dmc/"
cp "$src/tools/testing/selftests/kselftest/ktap_helpers.sh" "$rundir/root/selftests/kselftest/"
cp -r "$DMC_TOP"/selftests/* "$rundir/root/selftests/"
if [ -n "$(find "$DMC_TOP/rust" "$DMC_TOP/selftests" -name '*.ko' -print -quit)" ] &&
	[ "$(cat "$DMC_TOP/.modules-built-for" 2>/dev/null)" != "$obj" ]; then
	dmc_die "our modules were not built for the $KERNEL kernel: make modules KERNEL=$KERNEL"
fi
find "$DMC_TOP/rust" "$DMC_TOP/selftests" -name '*.ko' -exec cp {} "$rundir/root/lib/modules/$release/extra/" \;
# Modules a benchmark brings (e.g. tools/bench/c-variants.sh), by directory.
if [ -n "${DMC_EXTRA_MODULES:-}" ]; then
	cp "$DMC_EXTRA_MODULES"/*.ko "$rundir/root/lib/modules/$release/extra/"
fi

# The userspace tools (tools/Cargo.toml), with any library the base lacks.
bindir=$("$DMC_TOP/tools/build/userspace.sh" build)
for tool in dmc-replay-log dmc-write dmc-meta-csum clone_check clone_dump clone_restore clone_repair \
	clone_metadata_size clonectl; do
	install -D -m755 "$bindir/$tool" "$rundir/root/usr/bin/$tool"
	for lib in $(ldd "$bindir/$tool" | awk '/=> \//{print $3}'); do
		install -D -m755 "$(readlink -f "$lib")" "$rundir/root$lib"
	done
done

# Selftests in run order: each directory's Makefile lists TEST_PROGS.
all_tests() {
	local mk dir t
	for mk in "$DMC_TOP"/selftests/*/Makefile; do
		dir=$(basename "$(dirname "$mk")")
		for t in $(make -s -C "$(dirname "$mk")" -f Makefile -f - print-tests <<<'print-tests: ; @echo $(TEST_PROGS)' 2>/dev/null); do
			echo "$dir/$t"
		done
	done
}
tests=""
script=""
case "$mode" in
check)
	for t in $(all_tests); do
		if [ $# -eq 0 ]; then
			tests="$tests $t"
		else
			for want in "$@"; do
				case "$t" in */"$want"|*/"$want".sh|"$want") tests="$tests $t" ;; esac
			done
		fi
	done
	[ -n "$tests" ] || dmc_die "no selftest matches '$*' (have: $(all_tests | xargs))"
	;;
run)
	[ $# -ge 1 ] && [ -r "$1" ] || dmc_die "run: give a readable script (SCRIPT=path)"
	script=user-script.sh
	install -m755 "$1" "$rundir/root/dmc/$script"
	;;
demo|shell) ;;
*) dmc_die "unknown mode $mode" ;;
esac
printf 'DMC_MODE=%s\nDMC_TESTS="%s"\nDMC_SCRIPT=%s\nDMC_KERNEL=%s\n' "$mode" "$tests" "$script" \
	"$KERNEL" >"$rundir/root/dmc/run.conf"
(cd "$rundir/root" && find . -print0 | cpio --null -o -H newc --quiet) >"$rundir/run.cpio"
cat "$base" "$rundir/run.cpio" >"$rundir/initramfs.cpio"

# Check mode first tests the harness itself on the host (tools/vm/tests) and
# the userspace tools (cargo test). The
# VM runs whatever its status (env.sh sets -e: hence the ||); a failure is
# reported with the run's other problems by summary.sh.
host_rc=0
if [ "$mode" = check ]; then
	"$DMC_TOP/tools/vm/tests/harness.sh" >"$rundir/host.ktap" 2>&1 || host_rc=$?
	# The userspace tools' own tests (summary.sh counts them as "cargo: ...").
	"$DMC_TOP/tools/build/userspace.sh" test >"$rundir/cargo.txt" 2>&1 ||
		echo "cargo test exited with status $?" >>"$rundir/cargo.txt"
fi

accel=(-accel tcg -cpu max)
[ "${DMC_KVM:-0}" = 1 ] && accel=(-accel kvm -cpu host)
qemu=(qemu-system-x86_64 "${accel[@]}" -smp 2 -m "${VM_MEM:-2G}" -no-reboot
	-kernel "$obj/arch/x86/boot/bzImage" -initrd "$rundir/initramfs.cpio"
	-display none -vga none -monitor none -nodefaults)
cmdline="console=ttyS0 panic=-1 oops=panic loglevel=7 rdinit=/init"

if [ "$mode" = shell ]; then
	exec "${qemu[@]}" -serial mon:stdio -append "$cmdline"
fi

# ttyS0: the kernel console, to kernel.log. ttyS1: the programs' output, to us.
out=$rundir/out.log
dmc_log "booting the VM ($KERNEL kernel, $mode); kernel log: $rundir/kernel.log"
set +e
timeout -k 10 "$VM_TIMEOUT" "${qemu[@]}" \
	-serial "file:$rundir/kernel.log" -serial stdio -append "$cmdline" </dev/null |
	tr -d '\r' | tee "$out" | if [ "$mode" = check ]; then sed -u 's/^/# /'; else cat; fi
qemu_rc=${PIPESTATUS[0]}
set -e

vm_status=$(sed -n 's/^DMC-VM-EXIT \([0-9]*\)$/\1/p' "$out" | tail -n1)
problems=()
# (A failed host test already counts; a failure status with none is a crash.)
if [ "$host_rc" != 0 ] && ! grep -q '^not ok ' "$rundir/host.ktap"; then
	problems+=("host: the harness exited with status $host_rc")
fi
if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
	problems+=("the VM did not finish within $VM_TIMEOUT s")
elif [ -z "$vm_status" ]; then
	problems+=("the VM stopped before its program finished (crash or panic?)")
fi
if ! "$DMC_TOP/tools/vm/logcheck.sh" "$rundir/kernel.log" >"$rundir/logcheck.txt"; then
	problems+=("the kernel log has bug reports")
fi

if [ "$mode" != check ]; then
	cat "$rundir/logcheck.txt"
	for p in "${problems[@]}"; do echo "error: $p" >&2; done
	tail -n 40 "$rundir/kernel.log" | grep -E "Kernel panic|Call Trace|RIP" >&2 || true
	[ ${#problems[@]} -eq 0 ] && [ "${vm_status:-1}" = 0 ]
	exit $?
fi

exec "$DMC_TOP/tools/vm/summary.sh" "$rundir" "${problems[@]}"

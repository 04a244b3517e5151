# SPDX-License-Identifier: GPL-2.0
# Stand-in for the kernel's tools/testing/selftests/lib.mk: our tests are
# scripts that run in the VM (tools/vm/run.sh reads TEST_PROGS), so there is
# nothing to build. `make -C selftests/<dir> run_tests` runs them on the host
# that has the modules loaded, as kselftest would.
all:
run_tests:
	@for t in $(TEST_PROGS); do ./$$t || exit 1; done
.PHONY: all run_tests

# SPDX-License-Identifier: GPL-2.0
# dm-clone-rs: the device-mapper `clone` target in Rust.
#
#   make check            build what is missing, run every test in the VM
#   make check T=name     run one selftest (e.g. T=copy_data)
#   make demo             show a clone at work in the VM
#   make vm-run SCRIPT=f  run a script in the VM with our modules
#   make shell            interactive shell in the VM
#   make modules          build our modules (CLIPPY=1, W=1 pass through)
#   make lint             rustfmt, clippy and W=1 over our Rust (FIX=1 formats)
#   make series           write the mainline patch series (7.3) to SERIES_OUT
#   make series-check     check it: git am, final tree, checkpatch, up to date
#   make clean            remove what the build left in the checkout
#   make distclean        also remove the cached kernel builds
#
# KERNEL=debug selects the debug kernel (KASAN, lockdep, kmemleak, ...);
# LINUX=6.12 builds and tests on 6.12 LTS instead of mainline 7.3 (the default).
# (When kbuild builds our modules it reads ./Kbuild, not this file.)

KERNEL ?= fast
LINUX ?= 7.3
export KERNEL LINUX
CACHE := $(or $(DMC_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/dm-clone-rs)
KBUILD_ARGS := $(if $(CLIPPY),CLIPPY=$(CLIPPY)) $(if $(W),W=$(W))

.PHONY: all deps kernel modules lint check demo vm-run shell series series-check clean distclean help
all: modules

help:
	@sed -n '2,20s/^# \{0,1\}//p' Makefile

deps:
	@tools/build/deps.sh

kernel: deps
	@tools/build/kernel.sh

modules: kernel
	@tools/build/modules.sh $(KBUILD_ARGS) modules

lint: kernel
	@tools/build/lint.sh $(if $(FIX),--fix)

check: modules
	@tools/vm/run.sh check $(T)

demo: modules
	@tools/vm/run.sh demo

vm-run: modules
	@test -n "$(SCRIPT)" || { echo "usage: make vm-run SCRIPT=path/to/script.sh"; exit 2; }
	@tools/vm/run.sh run $(SCRIPT)

shell: modules
	@tools/vm/run.sh shell

# The series is against mainline only (tools/series/lib.sh refuses LINUX=6.12).
# SERIES_OUT: where it goes (default $(CACHE)/series/7.3, emptied first).
series:
	@$(if $(SERIES_OUT),SERIES_OUT=$(SERIES_OUT)) tools/series/series.sh

series-check:
	@$(if $(SERIES_OUT),SERIES_OUT=$(SERIES_OUT)) tools/series/check.sh

clean:
	rm -f *.o .module-common.o *.ko *.mod *.mod.c *.mod.o .*.cmd modules.order Module.symvers *.rmeta .modules-built-for
	rm -rf .tmp_versions
	find rust \( -name "*.o" -o -name ".*.cmd" -o -name "*.mod" -o -name "*.mod.c" -o -name "*.ko" -o -name "*.rmeta" \) -delete

distclean: clean
	rm -rf $(CACHE)

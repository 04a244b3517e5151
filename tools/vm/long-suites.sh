#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The long forms of the crash-consistency suites (DMC_LONG=1): every flush
# point of the replays, 100 power cuts, every damaged metadata image loaded by
# both targets, every window of the grow, every state of a 2^24-region
# discard's commit. Run in the VM: make vm-run SCRIPT=tools/vm/long-suites.sh VM_TIMEOUT=7200
# (SUITES="crash_replay fs_ext4" in the script's environment picks some.)
export DMC_LONG=1
status=0
for t in ${SUITES:-crash_replay crash_power crash_discard metadata_corrupt fs_ext4 grow}; do
	echo "=== $t (long form) ==="
	start=$(date +%s)
	(cd /selftests/dm-clone && ./$t.sh) || status=1
	echo "=== $t: $(($(date +%s) - start)) s ==="
done
exit $status

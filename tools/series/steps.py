# SPDX-License-Identifier: GPL-2.0
"""The mainline series, one Step per patch, in the order a reviewer reads it.

This file is the only description of the split; tools/series/series.py turns it
into commits. Each file the series touches has a final content:
  - a new file: the repo file named in `new` (its content is never changed, only
    its place in the tree: rust/md/... goes to drivers/md/...);
  - an existing kernel file: pristine 7.3 + tools/kernel/patches/7.3/*.patch (what
    the out-of-tree build applies) + tools/series/patches/*.patch (what only the
    series needs: Kconfig, Makefile, MAINTAINERS, the documentation index).
A step adds, in `adds`, lines of those final contents, per tree file:
  - a regex (str): every line the series adds that matches it;
  - Range(...): the lines from one match to another (see Range);
  - REST: every line of that existing file no other step claims.
Regexes win over ranges, ranges over REST. A new file appears in its `new` step
with every line no later step claims; an existing file gets each line with the
step that claims it, and a line the series adds that no step claims is an
error. `apply` applies a patch file whole (a C change that deletes lines).
Messages: what and why, then how it was tested. The Signed-off-by is added from
the git configuration of whoever runs `make series`.
"""


class _Rest:
    def __repr__(self):
        return "REST"


REST = _Rest()


class Range:
    """Lines from the first match of `start` to the first match of `end` after it.

    `from_`/`after` give the start (inclusive/exclusive), `to`/`before` the end
    (inclusive/exclusive); each is a regex matched against whole lines.
    """

    def __init__(self, from_=None, after=None, to=None, before=None):
        assert (from_ is None) != (after is None) and (to is None) != (before is None)
        self.start, self.start_incl = (from_, True) if from_ is not None else (after, False)
        self.end, self.end_incl = (to, True) if to is not None else (before, False)

    def __repr__(self):
        return (f"Range({'from_' if self.start_incl else 'after'}={self.start!r}, "
                f"{'to' if self.end_incl else 'before'}={self.end!r})")

    def select(self, lines, where):
        import re
        text = [l.rstrip("\n") for l in lines]
        s = next((i for i, l in enumerate(text) if re.search(self.start, l)), None)
        if s is None:
            raise SystemExit(f"error: {where}: the start matches no line")
        first = s if self.start_incl else s + 1
        e = next((i for i in range(first, len(text)) if re.search(self.end, text[i])), None)
        if e is None:
            raise SystemExit(f"error: {where}: the end matches no line after the start")
        last = e if self.end_incl else e - 1
        return list(range(first, last + 1))


class Step:
    def __init__(self, subject, message, new=(), adds=None, apply=()):
        self.subject = subject
        self.message = message
        self.new = list(new)
        self.adds = dict(adds or {})
        self.apply = list(apply)

    def new_pairs(self):
        """(repo path, tree path) of the files this step creates."""
        out = []
        for n in self.new:
            out.append(n if isinstance(n, tuple) else (n, n))
        return out


BH = "rust/bindings/bindings_helper.h"
HC = "rust/helpers/helpers.c"
DM = "rust/kernel/device_mapper.rs"
MT = "MAINTAINERS"
KC = "drivers/md/Kconfig"
MK = "drivers/md/Makefile"
CLONE = "rust/md/clone"
CLONE_TREE = "drivers/md/dm-clone-rs"
CLONE_FILES = [
    "dm_clone_rs.rs", "per_bio.rs", "config.rs", "geometry.rs", "metadata.rs",
    "regions.rs", "regions/marks.rs", "failures.rs", "hints.rs",
    "copy_control.rs", "copy_control/controller.rs",
    "clone.rs", "clone/io.rs", "clone/copier.rs", "clone/commit.rs", "clone/worker.rs",
    "clone/lifecycle.rs", "clone/report.rs", "clone/limits.rs", "clone/settings.rs",
    "clone/usage.rs",
]
GUIDE = "Documentation/admin-guide/device-mapper"
TOOLS_DOCS = ["index.rst", "clone_check.rst", "clone_dump.rst", "clone_restore.rst",
              "clone_repair.rst", "clone_metadata_size.rst", "clonectl.rst"]

STEPS = [
    Step(
        "rust: alloc: add GFP_NOIO",
        """\
Allocations in the I/O path of a block device must not start I/O from
reclaim: reclaim may be writing through the very device, and would wait
for itself. C uses GFP_NOIO there; the kernel crate has no such flag.

Add Flags::GFP_NOIO and its binding. The first users are AtomicBitmap
(added later in this series), which a device-mapper target allocates
while a table is loaded, and the clone target's in-core maps.

Tested: the clone target allocates its maps with it; the clone selftests
(scale.sh: 2^24 regions, memory.sh) run on 7.3 and 6.12, with KASAN and
kmemleak on the debug kernel.""",
        adds={BH: [r"GFP_NOIO"], "rust/kernel/alloc.rs": [REST]},
    ),
    Step(
        "rust: task: add cond_resched()",
        """\
A loop over millions of items in process context (clearing a bitmap of
2^31 bits, rewriting an on-disk bitset) holds the CPU for seconds on a
kernel without preemption, and stalls RCU. C calls cond_resched() in
such loops; Rust code has no way to.

Add kernel::task::cond_resched() and its helper (cond_resched() is a
macro in C).

Tested: AtomicBitmap::new_with and DiskBitset::rewrite (later in this
series) call it every 2^16 and 2^14 words; scale.sh (2^28 to 2^31
regions) no longer triggers the scheduler's LATENCY_WARN on
PREEMPT_NONE.""",
        adds={"rust/helpers/task.c": [REST], "rust/kernel/task.rs": [REST]},
    ),
    Step(
        "rust: time: add ktime_get_ns()",
        """\
Instant<Monotonic> does not give its nanoseconds out, but a controller
that keeps its own arithmetic on rates and latencies (the clone target's
copy controller, later in this series) needs plain nanoseconds of the
monotonic clock, as C code reads them with ktime_get_ns().

Add kernel::time::ktime_get_ns().

Tested: the clone target's copy controller (copy_engine.sh selftest,
tools/bench/copy-engine.sh) and the owned-workqueue doctest, which
times a work item with it.""",
        adds={"rust/kernel/time.rs": [REST]},
    ),
    Step(
        "rust: sync: add WaitCount",
        """\
A count of things in flight that a thread waits to reach zero (jobs of a
kcopyd client, bios of a target being destroyed) is written in C as an
atomic_t with wait_var_event()/wake_up_var(). In Rust it took a mutex, a
condition variable and a counter.

Add kernel::sync::WaitCount on wait_var_event()/wake_up_var(), through
helpers (both are macros), with the barriers the waker and the waiter
need spelled out in the helpers. The helper file also holds
wait_var_event_bits_ne, which the device-mapper per-bio header (later in
this series) waits with.

Tested: its KUnit doctest; the kcopyd abstraction waits for its jobs
with it, and a target's destructor for the device handles it still
holds (kcopyd.sh, target.sh and every clone selftest, with lockdep and
KASAN on the debug kernel).""",
        new=["rust/kernel/sync/wait_count.rs", "rust/helpers/wait_var.c"],
        adds={"rust/kernel/sync.rs": [REST], HC: [r'"wait_var\.c"']},
    ),
    Step(
        "rust: sync: rcu: add RcuBox",
        """\
A device-mapper target drops in-core maps it no longer needs (every
region of a clone is copied) while bios in flight may still be reading
them in map(), in any context. C does this with rcu_assign_pointer() and
kfree_rcu(); mainline's Revocable also drops its value after a grace
period, but gives the owner no sleeping access and does not hand the
value back.

Add RcuBox: an optional KBox that readers reach under an RCU Guard
without a lock, and that its owner, serialised by a mutex, may read
while sleeping and retire; the value is dropped after a grace period.

Tested: the clone target frees its maps with it once everything is
copied (memory.sh checks the memory comes back; the debug kernel's
KASAN and lockdep watch every clone selftest).""",
        new=["rust/kernel/sync/rcu/rcu_box.rs"],
        adds={"rust/kernel/sync/rcu.rs": [REST]},
    ),
    Step(
        "rust: workqueue: add owned workqueues and the per-CPU system queue",
        """\
A driver that must not wait behind other users' work (a device-mapper
target's worker, which commits metadata that bios wait for) allocates
its own workqueue, often WQ_MEM_RECLAIM. The kernel crate can only use
the system queues, and system_wq, the one workqueue::system() returns,
is deprecated in 7.3 (queueing on it warns).

Add OwnedQueue (alloc_workqueue()/destroy_workqueue(), with the name
passed as an argument through a helper: alloc_workqueue() is a macro in
7.3), QueueFlags, and system_percpu() for system_percpu_wq.

Tested: its KUnit doctest; the clone target runs its worker and copier
on owned queues (every clone selftest, teardown.sh removes clones with
work queued).""",
        new=["rust/kernel/workqueue/owned.rs", "rust/helpers/workqueue_owned.c"],
        adds={"rust/kernel/workqueue.rs": [r"^mod owned;$", r"^pub use owned::", r"^$"],
              HC: [r'"workqueue_owned\.c"']},
    ),
    Step(
        "rust: workqueue: add cancelling and disabling delayed work",
        """\
A delayed work item queued as an Arc holds a reference that its run()
takes back. Cancelled before it ran, nothing would: the reference
leaks. Mainline's DelayedWork has no cancel at all, so a driver cannot
stop its timers when a device is torn down.

Add DelayedWork::cancel_sync() and disable_sync() over
cancel_delayed_work_sync() and disable_delayed_work_sync(), which hand
the reference of a cancelled item back.

Tested: its KUnit doctest; the clone target's periodic commit and copy
timers are cancelled at suspend and destroy (suspend_resume.sh,
teardown.sh; kmemleak on the debug kernel finds no leaked Arc).""",
        new=["rust/kernel/workqueue/delayed_sync.rs"],
        adds={"rust/kernel/workqueue.rs": [r"^mod delayed_sync;$"]},
    ),
    Step(
        "rust: bitmap: add AtomicBitmap",
        """\
Mainline's Bitmap has no test-and-set and no word access, needs &mut to
change a bit, and holds at most i32::MAX bits in kmalloc memory. A
device-mapper target keeps per-region state that map() sets and tests
from many CPUs at once, in any context, for up to 2^31 regions.

Add AtomicBitmap: a fixed-size bitmap of atomic 64-bit words in kvmalloc
memory (up to 2^32 - 1 bits), with the names of the C bitmap and bit
operations. Its constructor offers the CPU while it clears a big map
(cond_resched()).

Tested: its KUnit doctest; the clone target's copied map and its
transaction maps (dm_marks_test with marks.sh, scale.sh up to 2^31
regions, memory.sh).""",
        new=["rust/kernel/bitmap/atomic.rs"],
        adds={"rust/kernel/bitmap.rs": [REST]},
    ),
    Step(
        "rust: block: add queue limits",
        """\
Stacking drivers read the limits of the devices below them and adjust
their own (a device-mapper target's io_hints: discard granularity, I/O
sizes). The kernel crate has no view of struct queue_limits.

Add kernel::block::limits::QueueLimits, handed out by &mut only where
the caller may change it.

Tested: the device-mapper abstraction (later in this series) reads a
device's limits and passes io_hints through it; the clone target sets
its discard limits (discard.sh checks them in sysfs).""",
        new=["rust/kernel/block/limits.rs"],
        adds={"rust/kernel/block.rs": [r"^pub mod limits;$"]},
    ),
    Step(
        "rust: block: add bios for stacking drivers",
        """\
A stacking driver receives a bio, and must then do exactly one of: send
it on, give it back to whoever handed it over, or end it with a status.
A lost bio hangs its submitter; one ended twice corrupts memory. There
is no Rust abstraction for bios yet.

Add kernel::block::bio: Bio is that obligation as a value. Its methods
that send, return or end it consume it, and dropping it ends it with an
I/O error. BioList is a bio_list of owned bios. Op and Status are the
operation and status. A bio handed to a device-mapper target carries
the target's per-bio data behind a small header the kernel crate keeps
(device_mapper::per_bio, added here because Bio<P> reaches its data
through it): which target mapped the bio, so that it goes only to that
target's devices, and whether it is inside its own end_io, so that a bio
ended there completes when end_io returns instead of re-entering it.
This adds the device_mapper module with only that header; the target
API follows in the next patch.

Bindings: linux/bio.h and linux/device-mapper.h, the REQ_ and BLK_STS_
constants the bindings cannot see, and helpers for bio_set_dev() and the
bio_list functions (inline in C).

Tested: through the device-mapper abstraction: target.sh (dm_target_test
drops and ends bios inside end_io and sends them to devices it dropped:
each completes once), the rlinear selftests (fio with crc32c
verification, flush and discard pass-through, byte-for-byte against
dm-linear), every clone selftest; on 7.3 and 6.12, with KASAN, lockdep
and kmemleak on the debug kernel.""",
        new=["rust/kernel/block/bio.rs", "rust/kernel/device_mapper/per_bio.rs", DM,
             "rust/helpers/bio.c"],
        adds={
            "rust/kernel/block.rs": [r"^// Bios for stacking drivers", r"^#\[cfg\(CONFIG_BLK_DEV_DM",
                                     r"^pub mod bio;$"],
            "rust/kernel/lib.rs": [REST],
            BH: [r"<linux/bio\.h>", r"<linux/device-mapper\.h>", r"REQ_FUA", r"REQ_OP_MASK",
                 r"REQ_PREFLUSH", r"BLK_STS_"],
            HC: [r'"bio\.c"'],
            MT: [Range(from_=r"^RUST \[DEVICE-MAPPER\]$", to=r"^S:"),
                 r"^F:\trust/kernel/device_mapper", Range(after=r"^F:\trust/kernel/device_mapper/$",
                                                          to=r"^$")],
        },
    ),
    Step(
        "rust: device-mapper: add targets",
        """\
Add the abstraction a device-mapper target is written with, in safe
Rust: a target implements TargetOperations (ctr, map, end_io, status,
message, presuspend/postsuspend/resume, iterate_devices, io_hints), and
its module declares it with module_dm_target!, which keeps the target
type's Registration while the module is loaded. The constructor parses
its Args, opens its Devices and returns the target's private data, which
every other callback borrows (map() runs on many CPUs, so shared only)
and the destructor drops. StatusWriter writes status, table and IMA
lines; TargetError carries the errno and the text device-mapper shows.

What safe code cannot break: a bio is sent only to a device of the
target that mapped it; a Device stays open until the target is
destroyed, after its last bio completed, whatever the target does with
the handle; a bio ended in its own end_io completes once; the
destructor waits for every bio in flight.

Bindings: BLK_OPEN_READ/WRITE, and helpers for the block device inlines
(bdev_nr_sectors() and friends).

Tested: KUnit doctests of the module, Args and StatusWriter; target.sh
(dm_target_test misuses the API on purpose and shows the guarantees
above hold); rlinear (next patch) and the clone target; on 7.3 and 6.12,
fast and debug kernels.""",
        new=["rust/kernel/device_mapper/args.rs", "rust/kernel/device_mapper/device.rs",
             "rust/kernel/device_mapper/status.rs", "rust/kernel/device_mapper/target.rs",
             "rust/helpers/blkdev.c"],
        adds={
            DM: [Range(after=r"^//! C header:", before=r"^$"),
                 r"^mod args;$", r"^mod device;$", r"^mod status;$", r"^mod target;$",
                 Range(after=r"^mod target;$", to=r"^\};$")],
            BH: [r"BLK_OPEN_"],
            HC: [r'"blkdev\.c"'],
        },
    ),
    Step(
        "dm rlinear: add dm-linear in Rust as the first user of the target API",
        """\
rlinear is dm-linear written on the Rust device-mapper abstraction: the
smallest target that does real I/O end to end, and the baseline that
measures what the abstraction costs. Its table, status and table output
are dm-linear's. It is a reference driver, not a replacement: the
Kconfig option says so.

Kconfig: DM_RUST_LINEAR, tristate, depends on RUST and BLK_DEV_DM=y
(the kernel crate's device-mapper module is built only when
device-mapper is built in).

Tested: the rlinear selftests (load_unload.sh: 20 loads and unloads with
a device in use; bad_table.sh; fio_verify.sh: random writes with crc32c
verification; flush_discard.sh: flushes reach a volatile-cache device
and discards pass through; io_vs_linear.sh: byte-for-byte against
dm-linear over the same area); tools/bench/rlinear-vs-linear.sh
measures it at parity with dm-linear's IOPS.""",
        new=[("rust/md/dm_rlinear.rs", "drivers/md/dm_rlinear.rs")],
        adds={KC: [Range(from_=r"^config DM_RUST_LINEAR$", before=r"^config DM_INIT$")],
              MK: [r"DM_RUST_LINEAR"],
              MT: [r"^F:\tdrivers/md/dm_rlinear\.rs$"]},
    ),
    Step(
        "rust: module_param: add range-checked unsigned parameters",
        """\
A C driver declares a module parameter that is writable through sysfs
and refuses values outside a range (param_set_uint_minmax()), stored in
a variable of its own: dm-kcopyd's throttle
(DECLARE_DM_KCOPYD_THROTTLE_WITH_MODULE_PARM) is one, a field of a C
structure that kcopyd reads. Mainline's Rust module parameters are set
at load time only, have no sysfs file and no range, and keep their own
storage.

Add UintParam and UintRange, placed in the module's __param section by a
hidden macro that safe macros declaring the variable build on, and the
modinfo strings that modinfo -p prints.

Tested: the kcopyd throttle of the clone target (copy_engine.sh:
copy_throttle and its alias clone_hydration_throttle exist, 100 by
default, refuse 0, 101 and a word through sysfs and keep their value,
and the alias sets the same percentage).""",
        new=["rust/kernel/module_param/uint.rs"],
        adds={"rust/kernel/module_param.rs": [REST]},
    ),
    Step(
        "rust: device-mapper: add kcopyd",
        """\
dm-kcopyd copies and zeroes ranges of block devices in the background;
dm-clone, dm-cache, dm-thin, dm-raid1 and dm-snapshot are built on it.

Add device_mapper::kcopyd: a Client runs copy jobs (one source, up to
eight destinations) and zero jobs. Each job owns a pointer of the
caller's choice (Arc or KBox), given to C with into_foreign when it
starts and handed back exactly once to CopyDone::copy_done with the
result. The client holds a reference to every Device it may use and
refuses regions on others; dropping it waits for its jobs (WaitCount)
before it lets go of the devices. declare_kcopyd_throttle! declares the
throttle as a range-checked module parameter, as
DECLARE_DM_KCOPYD_THROTTLE_WITH_MODULE_PARM does in C.

Bindings: linux/dm-io.h and linux/dm-kcopyd.h.

Tested: kcopyd.sh (dm_kcopyd_test: many concurrent copies produce the
source's bytes, a zero job zeroes exactly its range, a read error from a
dm-dust bad block reaches the completion, removing the device while
jobs run waits for them); the clone target's copier (copy_data.sh,
copy_errors.sh, copy_engine.sh); KASAN and kmemleak on the debug kernel.""",
        new=["rust/kernel/device_mapper/kcopyd.rs"],
        adds={DM: [r"^pub mod kcopyd;$"], BH: [r"<linux/dm-io\.h>", r"<linux/dm-kcopyd\.h>"]},
    ),
    Step(
        "dm persistent-data: let Rust's kernel crate build the library in",
        """\
The kernel crate is built into the kernel, so the persistent-data
library that its abstractions (next patch) call must be built in too.
DM_PERSISTENT_DATA is a tristate without a prompt, selected by the
targets that use it; a bool that selects it builds it in.

Add DM_PERSISTENT_DATA_RUST. With it set the library is no longer a
module; dm-thin, dm-cache, dm-era and dm-clone use it as before.

Tested: 7.3 and 6.12 kernels built with it, the C dm-clone and the Rust
clone target loaded side by side on the same library
(format_compat.sh, metadata_corrupt.sh).""",
        adds={"drivers/md/persistent-data/Kconfig": [REST]},
    ),
    Step(
        "rust: device-mapper: add the persistent-data block manager",
        """\
persistent-data is the transactional on-disk metadata library of
dm-thin, dm-cache, dm-era and dm-clone. Its bottom layer, the block
manager, reads and writes fixed-size metadata blocks through dm-bufio,
locked for reading or writing, checked and prepared by validators.

Add device_mapper::persistent_data with block_manager: BlockManager,
read and write locks whose exclusion the types enforce (the block
manager's own locks are no-ops without
DM_DEBUG_BLOCK_MANAGER_LOCKING: read locks borrow the manager shared,
write locks borrow it mutably), validators (a bad block becomes an
error, not an oops) and persistent-data's checksum; and le, which
reads and writes the little-endian fields of superblocks by offset.

The library's headers are private to drivers/md/persistent-data/;
bindings_helper.h includes them by relative path (as it already does
drivers/base/base.h) rather than moving them to include/. The module
is built only with DM_PERSISTENT_DATA=y, which DM_PERSISTENT_DATA_RUST
(previous patch) selects.

Tested: KUnit doctests of the checksum (CRC-32C's check value), the
validators and le; pdata.sh (dm_pdata_test formats a zeroed device and
refuses a device full of random bytes with an error, no oops);
metadata_corrupt.sh on the clone target.""",
        new=["rust/kernel/device_mapper/persistent_data.rs",
             "rust/kernel/device_mapper/persistent_data/block_manager.rs",
             "rust/kernel/device_mapper/persistent_data/le.rs"],
        adds={DM: [r"^#\[cfg\(CONFIG_DM_PERSISTENT_DATA", r"^pub mod persistent_data;$"],
              BH: [Range(from_=r"^/\* persistent-data:", to=r"^$")]},
    ),
    Step(
        "rust: device-mapper: add the persistent-data transaction manager",
        """\
The transaction manager makes metadata changes copy-on-write
("shadowing") over the metadata space map, so that a commit switches
atomically from one consistent state to the next.

Add persistent_data::transaction_manager: TransactionManager, created on
a new device or opened from a saved space map root, shadowing and new
blocks, and the two-step commit: pre_commit() writes every changed
block but the superblock, then the caller fills its superblock (with
space_map_root() and its own roots) and commit() writes it last. A
space map root read from disk is bounds-checked before C trusts it (a
root that checks out but lies would make the space map index out of
bounds).

Bindings: dm-space-map.h and dm-transaction-manager.h (by path, as in
the previous patch), and helpers for the space map's static inline
functions.

Tested: pdata.sh (dm_pdata_test: changes committed survive reopening,
uncommitted ones do not, a crash between pre-commit and commit, made
by dm-flakey dropping the superblock write, leaves the last committed
state readable); the clone target's metadata (metadata.sh,
metadata_corrupt.sh: a space map root that contradicts itself or the
device is refused where C loads it; crash_replay.sh, crash_power.sh,
format_compat.sh against the C dm-clone).""",
        new=["rust/kernel/device_mapper/persistent_data/transaction_manager.rs",
             "rust/helpers/persistent_data.c"],
        adds={"rust/kernel/device_mapper/persistent_data.rs": [r"^pub mod transaction_manager;$"],
              BH: [r"dm-space-map\.h", r"dm-transaction-manager\.h"],
              HC: [r'"persistent_data\.c"'],
              MT: [r"^F:\trust/helpers/persistent_data\.c$"]},
    ),
    Step(
        "rust: device-mapper: add persistent-data on-disk bitsets",
        """\
dm-clone records which regions are copied in an on-disk bitset
(dm-bitset, an array of little-endian 64-bit words in a btree).

Add persistent_data::bitset: DiskBitset, one bitset with its root
(which changes with every change) and its length, which the caller
saves in its superblock. Single bits are cached and written by flush()
before a commit; many bits are best written a word at a time
(set_word(), for_each_word() over a dm_array cursor), and rewrite()
writes every word anew a whole array block at a time (dm_array_new())
for a change of many words, offering the CPU as it goes. A resize runs
in steps of 2^20 bits. Indices are checked against the length; the
length is kept with the root because dm-array's resize BUG_ON()s when
told a wrong old length (a superblock that checks but lies about it can
still reach that, as in C).

Bindings: dm-bitset.h (by path).

Tested: pdata.sh (dm_pdata_test: bits set across several commits
survive reopening, words written whole, a resize in steps grown over
three steps with new words set, rewrites read back right, the last word
masked, five rewrites leak no block); the clone target's copied map
(metadata.sh, grow.sh, crash_discard.sh, scale.sh: the dump of a
rewritten map is exact at 2^24 regions).""",
        new=["rust/kernel/device_mapper/persistent_data/bitset.rs"],
        adds={"rust/kernel/device_mapper/persistent_data.rs": [
                  r"^pub mod bitset;$", Range(from_=r"^//! Layers, as in C", to=r"^//!$")],
              BH: [r"dm-bitset\.h"]},
    ),
    Step(
        "dm persistent-data: free the shadow table outside the lock, offering the CPU",
        """\
dm_tm_commit() frees one record per block shadowed in the transaction,
all under the transaction manager's spinlock. A commit that shadows much
of the metadata (a whole-device discard of 2^30 clone regions rewrites
some 33,000 blocks) then holds the lock, and the CPU, for as long as the
kfree()s take: over a second with kmemleak (the scheduler's LATENCY_WARN
fired in dm_tm_commit -> wipe_shadow_table). Take each bucket off the
table under the lock, free it outside, and cond_resched() between
buckets. Every caller (dm_tm_commit, dm_tm_destroy) may sleep: the block
manager flush or destroy that follows does.

This is a C change that helps every persistent-data user (dm-thin,
dm-cache, the C dm-clone); the Rust clone target found it.

Tested: scale.sh at 2^30 and 2^31 regions (a whole-device discard and
its commit) on the debug kernel: no LATENCY_WARN; the crash-consistency
suites (crash_replay.sh, crash_power.sh, crash_discard.sh) on both
targets, C and Rust.""",
        apply=["tools/kernel/patches/7.3/0010-dm-persistent-data-wipe-shadow-table.patch"],
    ),
    Step(
        "dm clone: add the clone target in Rust",
        """\
Add dm_clone_rs, the device-mapper clone target written in safe Rust on
the abstractions of this series (no unsafe, no bindings). It presents a
writable destination device as a one-to-one copy of a read-only source
device from the moment the table is loaded: reads of regions not yet
copied go to the source, writes land on the destination, kcopyd copies
the rest in the background, and a metadata device records which regions
are copied, so a crash or reload resumes where the copy stopped.

It keeps the C dm-clone's on-disk format (either module continues a
clone the other started) and its table and messages (the C names are
accepted). What it adds: a copy controller that finds by itself how much
to keep in flight and never stops under user I/O, copy_rate_limit, an
online grow with its devices, in-core maps at 0.35 of C's and freed once
everything is copied, status that never waits for a long commit, and
metadata checks that refuse more damage than C does.

It registers the target name "clone", as dm-clone does: only one of the
two can be loaded at a time (the second fails with EBUSY), and
device-mapper autoloads the C module for a "clone" table unless
dm_clone_rs is loaded first.

The files keep the layout of the crate (module paths are relative to
dm_clone_rs.rs): the map in dm_clone_rs.rs, a file per concept beside
it, the state and its machinery in clone/.

Kconfig: DM_CLONE_RUST, tristate, depends on RUST, BLK_DEV_DM=y and
DM_PERSISTENT_DATA_RUST.

Tested: the 32 clone selftests (of 38, with rlinear's and the
abstractions') on 7.3 and 6.12, in the project's QEMU harness, fast
and debug kernels (KASAN, lockdep, kmemleak, UBSAN), among them:
io_paths.sh, copy_data.sh, discard.sh, suspend_resume.sh, teardown.sh,
grow.sh, metadata.sh, metadata_corrupt.sh, metadata_errors.sh,
format_compat.sh (both ways with the C module), crash_replay.sh and
crash_power.sh (every state a power cut could leave), fs_ext4.sh,
remote_source.sh (an NBD source), scale.sh (up to 2^31 regions),
memory.sh; dm_marks_test's KUnit-style cases of the copied map.""",
        new=[(f"{CLONE}/{f}", f"{CLONE_TREE}/{f}") for f in CLONE_FILES]
        + [("tools/series/files/drivers/md/dm-clone-rs/Makefile", f"{CLONE_TREE}/Makefile")],
        adds={KC: [Range(from_=r"^config DM_CLONE_RUST$", before=r"^config DM_MIRROR$")],
              MK: [r"DM_CLONE_RUST"],
              MT: [Range(from_=r"^DEVICE-MAPPER CLONE TARGET IN RUST$", to=r"^S:"),
                   r"^F:\tdrivers/md/dm-clone-rs/$",
                   Range(after=r"^F:\tdrivers/md/dm-clone-rs/$", to=r"^$")]},
    ),
    Step(
        "Documentation: dm-clone-rs: add the user guide",
        """\
Add the user guide of the Rust clone target: loading the module beside
the C one, the table and its features, the copy controller, messages
and status, metadata sizing, crash consistency, recovery, memory and
scale, measured against the C target; and the manual pages of the
userspace tools it refers to (clone_check, clone_dump, clone_restore,
clone_repair, clone_metadata_size, clonectl), which live out of tree
like thin-provisioning-tools.

Tested: metadata_size.sh and recovery.sh run the guide's sizing and
recovery paths end to end.""",
        new=[(f"{GUIDE}/dm-clone-rs.rst", f"{GUIDE}/dm-clone-rs.rst")]
        + [(f"{GUIDE}/clone-tools/{f}", f"{GUIDE}/clone-tools/{f}") for f in TOOLS_DOCS],
        adds={f"{GUIDE}/index.rst": [REST],
              MT: [r"^F:\tDocumentation/admin-guide/device-mapper/dm-clone-rs\.rst$",
                   r"^F:\tDocumentation/admin-guide/device-mapper/clone-tools/$"]},
    ),
]

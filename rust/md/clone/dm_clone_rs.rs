// SPDX-License-Identifier: GPL-2.0

//! `clone`: a device-mapper target that makes a writable copy of a read-only source device,
//! usable at once, while the data is copied in the background. In Rust, on the kernel crate's
//! safe abstractions; it reads and writes the C dm-clone's metadata format.
//!
//! Table:
//!
//! ```text
//! clone <metadata dev> <destination dev> <source dev> <region size>
//!       [<#features> [<feature>]* [<#core args> [<core arg>]*]]
//! ```
//!
//! The user guide is Documentation/admin-guide/device-mapper/dm-clone-rs.rst.
//!
//! # Where a bio goes
//!
//! - A bio to a copied region goes to the destination; one that must not complete before the
//!   metadata records what it depends on (PREFLUSH or FUA while marks are not committed) waits
//!   for the worker to commit.
//! - A read of a region not copied goes to the source.
//! - A write to a region not copied: if it covers the region whole and nothing fills it yet,
//!   it goes to the destination and its completion marks the region copied (a FUA one then
//!   completes after the commit that records the mark); otherwise it
//!   waits while kcopyd copies the region, then goes to the destination.
//! - A discard marks the regions it covers whole copied and goes down trimmed to them.
//!
//! Files, one concept each:
//!
//! | module         | concept                                                           |
//! |----------------|-------------------------------------------------------------------|
//! | `config`       | the table's options and the messages (typed keyword tables)       |
//! | `geometry`     | length and region size, all sector/region arithmetic              |
//! | `metadata`     | the on-disk format (superblock, bitset)                           |
//! | `regions`      | each region's state, and the invariant between copied map and     |
//! |                | regions being filled; `regions::marks`: the copied map and the    |
//! |                | commit order                                                      |
//! | `failures`     | regions whose copies keep failing                                 |
//! | `hints`        | regions read while not copied, copied first                       |
//! | `copy_control` | the copy controller (window, job size, rate limit)                |
//! | `per_bio`      | what each bio carries from `map` to `end_io`                      |
//! | `clone`        | one clone's shared state; its children: the I/O paths, the        |
//! |                | copier, commits and the metadata mode, the worker, suspend and    |
//! |                | resume, status and messages, queue limits, settings               |
//!
//! The pure logic (`geometry`, `copy_control::controller`, `config`) is also unit-tested on
//! the host (tools/clone-logic).
//!
//! To follow a write to a region not copied yet, from `map` to its commit, read in this
//! order: this file (`CloneTarget::map`), `clone` (the state and its locks), `clone::io`
//! (`map`: the region is not copied, the write parks), `regions` (`park_write`: the region's
//! record, the copy queued), `clone::worker` (the worker's pass), `clone::copier`
//! (`start_queued`, then `copy_done`: the region marked, the write sent on), `regions::marks`
//! (the mark, in the open transaction's set), `clone::commit` (the next commit writes it,
//! flushes the destination, commits the metadata), `metadata` (the on-disk bitset).

// `pin_init!` on the clone's state (`CloneCore`: one macro step per field) needs more than the
// default recursion limit of 128.
#![recursion_limit = "256"]

mod clone;
mod config;
mod copy_control;
mod failures;
mod geometry;
mod hints;
mod metadata;
mod per_bio;
mod regions;

pub(crate) use crate::per_bio::PerBio;
use crate::{
    clone::{CloneCore, Config, Parts},
    config::{Message, Options},
    geometry::{Geometry, GeometryError},
    metadata::{Metadata, MAX_SECTORS},
};
use kernel::{
    block::bio::{Bio, Status},
    c_str,
    device_mapper::{
        kcopyd::Client, Args, DeviceVisitor, EndIoResult, MapResult, Mode, ResultExt, StatusFlags,
        StatusType, StatusWriter, Target, TargetError, TargetOperations, Visited,
    },
    module_dm_target,
    prelude::*,
    sync::Arc,
    workqueue::{OwnedQueue, QueueFlags},
};

module_dm_target! {
    type: CloneTarget,
    target: "clone",
    version: [1, 0, 0],
    name: "dm_clone_rs",
    description: "device-mapper clone target in Rust: a writable copy of a read-only source, usable at once",
    license: "GPL",
}

// kcopyd's throttle for every clone of this module: the percentage of time its jobs may keep
// I/O in flight (kcopyd sleeps to hold it), 100 by default. `clone_hydration_throttle` is the
// C module's name for it.
kernel::declare_kcopyd_throttle! {
    static COPY_THROTTLE;
    module: "dm_clone_rs",
    params: ["copy_throttle", "clone_hydration_throttle"],
    description: "Percentage of time (1-100) kcopyd may spend copying regions (default 100)",
}

/// The target's private data. Dropping it (the destructor) shuts the clone down first.
struct CloneTarget {
    core: Arc<CloneCore>,
}

impl Drop for CloneTarget {
    fn drop(&mut self) {
        self.core.shutdown();
    }
}

#[vtable]
impl TargetOperations for CloneTarget {
    type Data = KBox<CloneTarget>;
    type PerBio = PerBio;

    fn ctr(target: &mut Target, mut args: Args<'_>) -> Result<KBox<CloneTarget>, TargetError> {
        const USAGE: &CStr = c_str!("Invalid number of arguments");
        if args.len() < 4 {
            return Err(TargetError::invalid(USAGE));
        }
        let meta_path = args.next_arg(USAGE)?;
        let dest_path = args.next_arg(USAGE)?;
        let source_path = args.next_arg(USAGE)?;
        let len = target.len();

        let meta_dev = target
            .get_device(meta_path, Mode::ReadWrite)
            .ti_error(c_str!("Error opening metadata device"))?;
        if meta_dev.sectors() > MAX_SECTORS {
            pr_warn!(
                "metadata device {} is larger than {} sectors: excess space will not be used\n",
                meta_dev.name(),
                MAX_SECTORS
            );
        }
        let dest = target
            .get_device(dest_path, Mode::ReadWrite)
            .ti_error(c_str!("Error opening destination device"))?;
        if dest.sectors() < len {
            return Err(TargetError::invalid(c_str!(
                "Device size larger than destination device"
            )));
        }
        let source = target
            .get_device(source_path, Mode::ReadOnly)
            .ti_error(c_str!("Error opening source device"))?;
        if source.sectors() < len {
            return Err(TargetError::invalid(c_str!(
                "Device size larger than source device"
            )));
        }

        // Kept for the table line, which must read back as the same table.
        let mut table_args = KVec::new();
        for a in args.remaining() {
            table_args.push(b' ', GFP_KERNEL)?;
            table_args.extend_from_slice(a.to_bytes(), GFP_KERNEL)?;
        }

        let options = Options::parse(&mut args)?;
        let rs = options.region_size;
        let lbs = |d: &kernel::device_mapper::Device| u64::from(d.logical_block_size() >> 9).max(1);
        if rs % lbs(&source) != 0 || rs % lbs(&dest) != 0 {
            return Err(TargetError::invalid(c_str!(
                "Region size is not a multiple of device logical block size"
            )));
        }
        let geometry = Geometry::new(len, rs).map_err(|e| {
            TargetError::invalid(match e {
                GeometryError::RegionSize => c_str!("Invalid region size"),
                GeometryError::Empty => c_str!("Target length is zero"),
                GeometryError::TooManyRegions => {
                    c_str!("Too many regions. Consider increasing the region size")
                }
            })
        })?;
        target
            .set_max_io_len(geometry.region_sectors())
            .ti_error(c_str!("Failed to set max io len"))?;

        let meta_dev = Arc::new(meta_dev, GFP_KERNEL)?;
        let dest = Arc::new(dest, GFP_KERNEL)?;
        let source = Arc::new(source, GFP_KERNEL)?;
        let metadata = Metadata::open(&meta_dev, geometry, true)?;
        let client = || {
            Client::new(Some(&COPY_THROTTLE), &[source.clone(), dest.clone()])
                .ti_error(c_str!("Error creating the kcopyd client"))
        };
        let kcopyd = clone::Clients {
            foreground: client()?,
            background: client()?,
        };
        let wq = OwnedQueue::new(c_str!("dm_clone_rs"), QueueFlags::MEM_RECLAIM, 0)
            .ti_error(c_str!("Failed to allocate workqueue"))?;
        let events = target.event_handle()?;
        let mut name = KVec::new();
        name.extend_from_slice(target.device_name().as_bytes(), GFP_KERNEL)?;

        let core = CloneCore::new(Parts {
            cfg: Config {
                geometry,
                source,
                dest,
                meta_dev,
                table_args,
                name,
            },
            options,
            metadata,
            kcopyd,
            events,
            wq,
        })
        .ti_error(c_str!("Failed to allocate the clone's state"))?;

        target.set_num_flush_bios(1);
        // Flushes and FUA must reach the target even if no device has a volatile write cache:
        // they are what makes it commit its metadata.
        target.set_flush_supported(true);
        target.set_num_discard_bios(1);
        // Discards are taken even if the destination cannot discard: they mark regions copied.
        target.set_discards_supported(true);
        Ok(KBox::new(CloneTarget { core }, GFP_KERNEL)?)
    }

    fn map(this: &CloneTarget, target: &Target, bio: Bio<PerBio>) -> MapResult<PerBio> {
        this.core.map(target, bio)
    }

    fn end_io(
        this: &CloneTarget,
        _target: &Target,
        bio: Bio<PerBio>,
        status: &mut Status,
    ) -> EndIoResult<PerBio> {
        this.core.end_io(bio, status)
    }

    fn status(
        this: &CloneTarget,
        target: &Target,
        kind: StatusType,
        flags: StatusFlags,
        out: &mut StatusWriter<'_>,
    ) {
        match kind {
            StatusType::Info => {
                let commit_first = !flags.noflush() && !target.is_suspended();
                this.core.status(commit_first, out)
            }
            StatusType::Table => this.core.table(out),
            StatusType::Ima => {}
        }
    }

    fn message(
        this: &CloneTarget,
        _target: &Target,
        args: Args<'_>,
        out: &mut StatusWriter<'_>,
    ) -> Result<(), TargetError> {
        this.core.message(Message::parse(args)?, out);
        Ok(())
    }

    fn postsuspend(this: &CloneTarget, _target: &Target) {
        this.core.postsuspend();
    }

    fn preresume(this: &CloneTarget, _target: &Target) -> Result {
        this.core.preresume()
    }

    fn resume(this: &CloneTarget, _target: &Target) {
        this.core.resume();
    }

    fn iterate_devices(
        this: &CloneTarget,
        target: &Target,
        visitor: &mut DeviceVisitor<'_>,
    ) -> Visited {
        let len = target.len();
        visitor
            .visit(this.core.source(), 0, len)
            .and_then(|| visitor.visit(this.core.dest(), 0, len))
    }

    fn io_hints(
        this: &CloneTarget,
        _target: &Target,
        limits: &mut kernel::block::limits::QueueLimits,
    ) {
        this.core.io_hints(limits);
    }
}

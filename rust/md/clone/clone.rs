// SPDX-License-Identifier: GPL-2.0

//! A clone: the state one clone target shares with its work and copy jobs ([`CloneCore`]),
//! and what ties its parts together. Each part is a child module that owns its state and the
//! methods on it:
//!
//! | module      | owns                                                              |
//! |-------------|-------------------------------------------------------------------|
//! | `io`        | the paths a bio takes: `map`, `end_io`, discards                  |
//! | `copier`    | the copies: kcopyd clients, background scan, copies in flight     |
//! | `commit`    | commits, the metadata mode and its transitions                    |
//! | `worker`    | the worker and the periodic waker; bios handed to the worker      |
//! | `lifecycle` | suspend, resume, destruction; loading the metadata                |
//! | `report`    | status, table line, messages and their replies                    |
//! | `limits`    | the queue limits the clone sets (`io_hints`)                      |
//! | `settings`  | what the table and messages set (caps, rate limit, features)      |
//! | `usage`     | what status reads without the metadata mutex                      |
//!
//! The copied map and its commit order are in `marks`, the regions being filled in
//! `regions`, region arithmetic in `geometry`, the copy controller in `copy_control`.
//!
//! # Contexts
//!
//! | who                         | context              | may sleep |
//! |-----------------------------|----------------------|-----------|
//! | `map`                       | submitter (process)  | allocates (GFP_NOIO) only |
//! | `end_io`                    | hard or soft IRQ     | no        |
//! | kcopyd completion           | kcopyd's thread      | yes       |
//! | worker, waker               | workqueue            | yes       |
//! | status, message, (post/pre)suspend, resume, dtr | process | yes |
//!
//! # Locks (outermost first)
//!
//! - `md` (mutex): the on-disk metadata and commits; process context only.
//! - `copier` (mutex): the kcopyd clients and the background scan; process context only.
//! - `ctl` (spinlock inside, see `copy_control`): the copy controller; process context only.
//! - `regions`, then `marks` (spinlocks, interrupts off): see their modules.
//! - `deferred` (spinlock, interrupts off): bios handed to the worker.
//!
//! No spinlock is held while a mutex is taken or while a bio is submitted.
//!
//! # Lifetime
//!
//! The clone is shared (`Arc`) by the target, queued work and kcopyd jobs. The target's
//! destructor ([`CloneCore::shutdown`]) stops the waker, destroys the kcopyd clients (waiting for
//! their jobs) and drains the workqueue, so that it drops the last reference itself, in process
//! context: nothing else can drop it in interrupt context or on the workqueue being destroyed.

mod commit;
mod copier;
mod io;
mod lifecycle;
mod limits;
mod report;
mod settings;
mod usage;
mod worker;

use crate::{
    config::Options, copy_control::CopyControl, failures::Failures, geometry::Geometry,
    hints::ReadHints, metadata::Metadata, regions::Regions,
};
use commit::ModeCell;
pub(crate) use copier::Clients;
use copier::{Copier, InFlight};
use core::sync::atomic::AtomicU64;
use kernel::{
    device_mapper::{Device, EventHandle},
    impl_has_delayed_work, impl_has_work, new_delayed_work, new_mutex, new_spinlock_irq, new_work,
    prelude::*,
    sync::{Arc, Mutex, SpinLockIrq},
    time::{ktime_get_ns, msecs_to_jiffies},
    workqueue::{self, DelayedWork, OwnedQueue, Work},
};
use lifecycle::Lifecycle;
use settings::Settings;
use usage::MetaUsage;
use worker::{Deferred, WorkerFlags};

/// How long the worker waits before trying again an allocation that failed (a write's
/// region record, a list of queued regions): long enough not to spin on it.
const ALLOC_RETRY_MS: u32 = 10;

/// `ktime_get` in microseconds, truncated to 32 bits (for latencies of bios: wrapping
/// differences).
fn now_us() -> u32 {
    // Truncation intended.
    (ktime_get_ns() / 1000) as u32
}

/// What the constructor fixed: never changes.
pub(crate) struct Config {
    pub(crate) geometry: Geometry,
    pub(crate) source: Arc<Device>,
    pub(crate) dest: Arc<Device>,
    pub(crate) meta_dev: Arc<Device>,
    /// The table's arguments after the three devices, each preceded by a space.
    pub(crate) table_args: KVec<u8>,
    /// The mapped device's `<major>:<minor>`, for log lines.
    pub(crate) name: KVec<u8>,
}

/// Counters for the replies to messages; statistics only, so `Relaxed`, any context.
#[derive(Default)]
struct Stats {
    /// Copies that failed.
    copy_errors: AtomicU64,
    /// Writes that found no memory for a region record in `map` and went to the worker to
    /// wait for it (the `memory` message's `alloc_waits`).
    alloc_waits: AtomicU64,
}

/// One clone target's state, shared with its work and copy jobs.
#[pin_data]
pub(crate) struct CloneCore {
    pub(crate) cfg: Config,

    /// Copied or not, and the regions being filled (see `regions`).
    #[pin]
    regions: Regions,
    hints: ReadHints,
    /// Regions whose copies keep failing, and the pause after a failure.
    #[pin]
    failures: Failures,
    /// `None` once in [`commit::MetadataMode::Fail`].
    #[pin]
    md: Mutex<Option<Metadata>>,
    /// The metadata mode (see `commit`).
    mode: ModeCell,
    /// The metadata's block counts for status, and whether a commit runs (see `usage`).
    #[pin]
    usage: MetaUsage,
    /// The kcopyd clients (`None` once the target is being destroyed) and the background scan.
    #[pin]
    copier: Mutex<Copier>,
    /// Regions being copied, and the wait for none (see `copier`).
    in_flight: InFlight,
    #[pin]
    deferred: SpinLockIrq<Deferred>,
    /// How much the background copy keeps in flight (see `copy_control`).
    #[pin]
    ctl: CopyControl,

    settings: Settings,
    life: Lifecycle,
    flags: WorkerFlags,
    stats: Stats,

    events: EventHandle,
    wq: OwnedQueue,
    #[pin]
    work: Work<CloneCore, 0>,
    #[pin]
    waker: DelayedWork<CloneCore, 1>,
    /// Wakes the worker when the rate limit allows the next copy, or after an allocation
    /// failed.
    #[pin]
    pacer: DelayedWork<CloneCore, 2>,
}

impl_has_work! {
    impl HasWork<Self, 0> for CloneCore { self.work }
}

impl_has_delayed_work! {
    impl HasDelayedWork<Self, 1> for CloneCore { self.waker }
}

impl_has_delayed_work! {
    impl HasDelayedWork<Self, 2> for CloneCore { self.pacer }
}

/// What the constructor hands to [`CloneCore::new`].
pub(crate) struct Parts {
    pub(crate) cfg: Config,
    pub(crate) options: Options,
    /// As the constructor opened it: for status until the first resume loads it again.
    pub(crate) metadata: Metadata,
    pub(crate) kcopyd: Clients,
    pub(crate) events: EventHandle,
    pub(crate) wq: OwnedQueue,
}

impl CloneCore {
    /// Builds the clone. The copied regions are loaded by the first preresume (see there).
    pub(crate) fn new(p: Parts) -> Result<Arc<Self>> {
        let nr_regions = p.cfg.geometry.nr_regions();
        let regions = Regions::new(nr_regions)?;
        let region_bytes = p.cfg.geometry.region_bytes();
        Arc::pin_init(
            try_pin_init!(Self {
                cfg: p.cfg,
                regions <- regions,
                hints: ReadHints::new(),
                failures <- Failures::new(nr_regions),
                md <- new_mutex!(Some(p.metadata), "clone_md"),
                mode: ModeCell::new(),
                usage <- MetaUsage::new(),
                copier <- new_mutex!(Copier::new(p.kcopyd), "clone_copier"),
                in_flight: InFlight::new(),
                deferred <- new_spinlock_irq!(Deferred::new(), "clone_deferred"),
                ctl <- CopyControl::new(region_bytes, ktime_get_ns()),
                settings: Settings::new(&p.options),
                life: Lifecycle::new(),
                flags: WorkerFlags::new(),
                stats: Stats::default(),
                events: p.events,
                wq: p.wq,
                work <- new_work!("clone_worker"),
                waker <- new_delayed_work!("clone_waker"),
                pacer <- new_delayed_work!("clone_pacer"),
            }? Error),
            GFP_KERNEL,
        )
    }

    /// The mapped device's name, for log lines.
    fn name(&self) -> &str {
        core::str::from_utf8(&self.cfg.name).unwrap_or("?")
    }

    /// Queues the worker. Any context.
    fn kick(self: &Arc<Self>) {
        let _ = self.wq.enqueue::<Arc<Self>, 0>(self.clone());
    }

    /// Runs the worker again in `ms` milliseconds (the pacer): after an allocation failed
    /// (waiting for memory, never spinning on it) or when the rate limit allows the next
    /// copy. Not once the target is being destroyed (see [`Self::shutdown`]).
    fn kick_after(self: &Arc<Self>, ms: u32) {
        if !self.life.dying() {
            let _ = workqueue::system_percpu()
                .enqueue_delayed::<_, 2>(self.clone(), msecs_to_jiffies(ms));
        }
    }

    /// [`Self::kick_after`] [`ALLOC_RETRY_MS`]: an allocation failed.
    fn retry_later(self: &Arc<Self>) {
        self.kick_after(ALLOC_RETRY_MS);
    }

    pub(crate) fn source(&self) -> &Device {
        &self.cfg.source
    }

    pub(crate) fn dest(&self) -> &Device {
        &self.cfg.dest
    }
}

// SPDX-License-Identifier: GPL-2.0

//! A clone: its shared state, the paths a bio takes, the worker, commits and the copier.
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
//! - `kcopyd` (mutex): the kcopyd client, taken out at destruction; process context only.
//! - `idle.lock` (mutex) with `idle.cv`: waiting for copies in flight to reach zero.
//! - `ctl` (spinlock inside, see `copy_control`): the copy controller; process context only.
//! - `regions` and `marks` (spinlocks, interrupts off): see their modules.
//! - `deferred` (spinlock, interrupts off): bios handed to the worker.
//!
//! No spinlock is held while a mutex is taken or while a bio is submitted.
//!
//! # Lifetime
//!
//! The clone is shared (`Arc`) by the target, queued work and kcopyd jobs. The target's
//! destructor ([`CloneCore::shutdown`]) stops the waker, destroys the kcopyd client (waiting for
//! its jobs) and drains the workqueue, so that it drops the last reference itself, in process
//! context: nothing else can drop it in interrupt context or on the workqueue being destroyed.

use crate::{
    config::{Message, Options},
    copy_control::{Allowance, CopyControl},
    failures::{Failures, Recorded, MAX_TRIES},
    hints::ReadHints,
    marks::{Mark, Marks},
    metadata::{Geometry, Metadata, BLOCK_SECTORS},
    per_bio::DestWrite,
    regions::{InProgress, Parked},
    PerBio,
};
use core::{
    fmt::Write,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering},
};
use kernel::{
    alloc::flags::GFP_NOIO,
    block::{
        bio::{Bio, BioList, Operation, Status},
        limits::QueueLimits,
    },
    device_mapper::{
        kcopyd::{Client, CopyDone, CopyResult, Region},
        Device, EndIoResult, EventHandle, MapResult, StatusWriter, Target,
    },
    impl_has_delayed_work, impl_has_work, new_condvar, new_delayed_work, new_mutex,
    new_spinlock_irq, new_work,
    prelude::*,
    sync::{Arc, CondVar, Mutex, SpinLockIrq},
    time::{msecs_to_jiffies, Ktime},
    workqueue::{self, DelayedWork, OwnedQueue, Work, WorkItem},
};

/// How often metadata is committed and the copier woken, in milliseconds (as in C).
const COMMIT_PERIOD_MS: u32 = 1000;
/// At most this many regions are claimed per pass of the worker (bounds the records it
/// allocates and the time it holds the kcopyd mutex, whatever threshold and batch size say).
const MAX_STARTS_PER_PASS: u32 = 4096;
/// The queued copies are taken from the region table this many at a time.
const QUEUED_CHUNK: usize = 256;
/// How long the worker waits before trying again an allocation that failed (a write's
/// region record, a list of queued regions): long enough not to spin on it.
const ALLOC_RETRY_MS: u32 = 10;

/// `ktime_get` in microseconds, truncated to 32 bits (for latencies of bios: wrapping
/// differences).
fn now_us() -> u32 {
    // Truncation intended.
    (Ktime::ktime_get().to_ns() / 1000) as u32
}

/// The metadata mode (as in C): it only ever goes down the list.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum MetadataMode {
    /// Everything works.
    ReadWrite = 0,
    /// A metadata operation failed and the transaction was aborted: nothing more is recorded;
    /// reads are served, bios that need a commit fail.
    ReadOnly = 1,
    /// The abort failed too: all I/O fails.
    Fail = 2,
}

impl MetadataMode {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::ReadWrite,
            1 => Self::ReadOnly,
            _ => Self::Fail,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::ReadWrite => "rw",
            Self::ReadOnly => "ro",
            Self::Fail => "Fail",
        }
    }
}

/// Bios handed to the worker: PREFLUSH or FUA bios that wait for a commit, and writes whose
/// region a whole-region write just filled (their completion ran in interrupt context, where
/// bios are not submitted).
struct Deferred {
    bios: BioList<PerBio>,
    /// FUA writes that filled an uncopied region whole: landed (FUA: durable) and their region
    /// marked, kept by `end_io` until the commit that records the mark; the worker commits,
    /// then completes them (C's `deferred_flush_completions`).
    after_commit: BioList<PerBio>,
    /// Discards, handled by the worker: one may cover 2^31 regions, too many to mark in
    /// `map` (the C target defers them too).
    discards: BioList<PerBio>,
    /// Writes to uncopied regions that found no memory for a region record: the worker
    /// tries again ALLOC_RETRY_MS later (C waits on a mempool). Never failed for that.
    no_memory: BioList<PerBio>,
}

/// Where postsuspend waits for the copies in flight to reach zero: the counts change under
/// `lock`, and `cv` is notified when they reach zero. Process context.
#[pin_data]
struct IdleWait {
    #[pin]
    lock: Mutex<()>,
    #[pin]
    cv: CondVar,
}

impl IdleWait {
    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            lock <- new_mutex!((), "clone_idle"),
            cv <- new_condvar!("clone_idle_cv"),
        })
    }
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

/// A cap set by the table or a message, or none (`auto`: the copy controller decides). Read
/// without locks, from any context.
struct Cap(AtomicU64);

impl Cap {
    /// No cap: a value no `u32` has.
    const AUTO: u64 = u64::MAX;

    fn new(cap: Option<u32>) -> Self {
        Self(AtomicU64::new(cap.map_or(Self::AUTO, u64::from)))
    }

    fn get(&self) -> Option<u32> {
        u32::try_from(self.0.load(Ordering::Relaxed)).ok()
    }

    fn set(&self, cap: Option<u32>) {
        self.0
            .store(cap.map_or(Self::AUTO, u64::from), Ordering::Relaxed);
    }
}

/// What the table and messages set; read without locks, from any context.
struct Settings {
    /// Cap on regions in flight.
    threshold: Cap,
    /// Cap on regions per job.
    batch_size: Cap,
    /// Rate limit of the background copy in bytes per second; 0: none.
    rate_limit: AtomicU64,
    background_copy: AtomicBool,
    discard_passdown: AtomicBool,
}

impl Settings {
    fn threshold(&self) -> Option<u32> {
        self.threshold.get()
    }

    fn batch_size(&self) -> Option<u32> {
        self.batch_size.get()
    }

    fn rate_limit(&self) -> u64 {
        self.rate_limit.load(Ordering::Relaxed)
    }
}

/// Flags and counters shared by all contexts; each is one atomic, and what orders them is
/// said where they are used (e.g. `suspended` and `starting` for postsuspend).
struct State {
    mode: AtomicU8,
    suspended: AtomicBool,
    dying: AtomicBool,
    /// Regions being copied by kcopyd (claimed for a copy until it completes).
    copying: AtomicU32,
    /// 1 while the worker starts background copies (so that postsuspend waits for it too).
    starting: AtomicU32,
    /// Where the background copy goes on; only the worker uses it.
    next_region: AtomicU32,
    /// Set by the waker: commit even if no bio asks for it.
    commit_due: AtomicBool,
    copy_errors: AtomicU64,
    /// Writes that found no memory for a region record in `map` and went to the worker to
    /// wait for it (the `memory` message's `alloc_waits`); any context, statistics only.
    alloc_waits: AtomicU64,
    /// An event is owed to user space (raised by the worker, in process context).
    event_owed: AtomicBool,
    done_reported: AtomicBool,
    /// The metadata was (re)loaded by a preresume.
    loaded: AtomicBool,
}

impl State {
    fn new() -> Self {
        Self {
            mode: AtomicU8::new(MetadataMode::ReadWrite as u8),
            suspended: AtomicBool::new(false),
            dying: AtomicBool::new(false),
            copying: AtomicU32::new(0),
            starting: AtomicU32::new(0),
            next_region: AtomicU32::new(0),
            commit_due: AtomicBool::new(false),
            copy_errors: AtomicU64::new(0),
            alloc_waits: AtomicU64::new(0),
            event_owed: AtomicBool::new(false),
            done_reported: AtomicBool::new(false),
            loaded: AtomicBool::new(false),
        }
    }
}

/// One clone target's state, shared with its work and copy jobs.
#[pin_data]
pub(crate) struct CloneCore {
    pub(crate) cfg: Config,

    #[pin]
    marks: Marks,
    #[pin]
    regions: InProgress,
    hints: ReadHints,
    /// Regions whose copies keep failing, and the pause after a failure.
    #[pin]
    failures: Failures,
    /// `None` once in [`MetadataMode::Fail`].
    #[pin]
    md: Mutex<Option<Metadata>>,
    /// `None` once the target is being destroyed.
    #[pin]
    kcopyd: Mutex<Option<Client>>,
    #[pin]
    deferred: SpinLockIrq<Deferred>,
    /// How much the background copy keeps in flight (see `copy_control`).
    #[pin]
    ctl: CopyControl,
    #[pin]
    idle: IdleWait,

    settings: Settings,
    st: State,

    events: EventHandle,
    wq: OwnedQueue,
    #[pin]
    work: Work<CloneCore, 0>,
    #[pin]
    waker: DelayedWork<CloneCore, 1>,
    /// Wakes the worker when the rate limit allows the next copy.
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
    pub(crate) kcopyd: Client,
    pub(crate) events: EventHandle,
    pub(crate) wq: OwnedQueue,
}

impl CloneCore {
    /// Builds the clone. The copied regions are loaded by the first preresume (see there).
    pub(crate) fn new(p: Parts) -> Result<Arc<Self>> {
        let nr_regions = p.cfg.geometry.nr_regions;
        let marks = Marks::new(nr_regions)?;
        let region_bytes = p.cfg.geometry.region_size << 9;
        Arc::pin_init(
            try_pin_init!(Self {
                cfg: p.cfg,
                marks <- marks,
                regions <- InProgress::new(),
                hints: ReadHints::new(),
                failures <- Failures::new(nr_regions),
                md <- new_mutex!(Some(p.metadata), "clone_md"),
                kcopyd <- new_mutex!(Some(p.kcopyd), "clone_kcopyd"),
                deferred <- new_spinlock_irq!(
                    Deferred {
                        bios: BioList::new(),
                        after_commit: BioList::new(),
                        discards: BioList::new(),
                        no_memory: BioList::new(),
                    },
                    "clone_deferred"
                ),
                ctl <- CopyControl::new(region_bytes, Ktime::ktime_get().to_ns()),
                idle <- IdleWait::new(),
                settings: Settings {
                    threshold: Cap::new(p.options.threshold),
                    batch_size: Cap::new(p.options.batch_size),
                    rate_limit: AtomicU64::new(u64::from(p.options.rate_limit) << 20),
                    background_copy: AtomicBool::new(p.options.background_copy),
                    discard_passdown: AtomicBool::new(p.options.discard_passdown),
                },
                st: State::new(),
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

    fn mode(&self) -> MetadataMode {
        MetadataMode::from_u8(self.st.mode.load(Ordering::Acquire))
    }

    /// The region a target-relative sector is in.
    fn region_of(&self, offset: u64) -> u32 {
        // `offset` is below the target's length, so the region is below `nr_regions` <= 2^31.
        u32::try_from(offset >> self.cfg.geometry.region_shift()).unwrap_or(u32::MAX)
    }

    /// First sector and length of regions `first..first + count` (the last one may be short).
    fn region_span(&self, first: u32, count: u32) -> (u64, u64) {
        let start = u64::from(first) << self.cfg.geometry.region_shift();
        let end = (u64::from(first) + u64::from(count)) << self.cfg.geometry.region_shift();
        let end = end.min(self.cfg.geometry.target_size);
        (start, end.saturating_sub(start))
    }

    /// Queues the worker. Any context.
    fn kick(self: &Arc<Self>) {
        let _ = self.wq.enqueue::<Arc<Self>, 0>(self.clone());
    }

    // ---- the I/O paths ----

    /// Maps a bio (see the module documentation of the target for the rules).
    pub(crate) fn map(
        self: &Arc<Self>,
        target: &Target,
        mut bio: Bio<PerBio>,
    ) -> MapResult<PerBio> {
        if self.mode() == MetadataMode::Fail {
            return MapResult::Kill(bio);
        }
        let offset = target.offset(&bio);
        if bio.sectors() == 0 {
            // An empty flush.
            self.cfg.dest.set_bio_device(&mut bio);
            return self.issue_or_remap(bio);
        }
        if bio.op() == Operation::Discard {
            self.cfg.dest.set_bio_device(&mut bio);
            bio.set_sector(offset);
            self.deferred.lock().discards.push(bio);
            self.kick();
            return MapResult::Submitted;
        }
        let r = self.region_of(offset);
        if self.marks.is_copied(r) {
            if bio.is_write() {
                bio.data_mut().set_write(r);
            }
            self.cfg.dest.set_bio_device(&mut bio);
            bio.set_sector(offset);
            return self.issue_or_remap(bio);
        }
        if !bio.is_write() {
            // Noted even while the background copy is off: it takes these first when on.
            self.hints.note(r);
            self.time_for_controller(&mut bio);
            self.cfg.source.set_bio_device(&mut bio);
            bio.set_sector(offset);
            return MapResult::Remapped(bio);
        }
        if self.mode() != MetadataMode::ReadWrite {
            // The copy could not be recorded.
            bio.end(Status::IOERR);
            return MapResult::Submitted;
        }
        self.cfg.dest.set_bio_device(&mut bio);
        bio.set_sector(offset);
        bio.data_mut().set_write(r);
        let whole = self.overwrites(r, &bio);
        if !whole {
            // It waits for a copy from the source (unless the region just got copied).
            self.time_for_controller(&mut bio);
        }
        self.park(r, bio, whole)
    }

    /// Whether write `bio` (pointed at the destination) covers region `r` whole, so it can
    /// fill the region itself. A FUA one does too: its completion waits for the commit that
    /// records its region (`end_io` keeps it). (Device-mapper never sends a PREFLUSH with data
    /// to a target; one would take the copy path.)
    fn overwrites(&self, r: u32, bio: &Bio<PerBio>) -> bool {
        let (start, len) = self.region_span(r, 1);
        bio.sector() == start && u64::from(bio.sectors()) == len && !bio.is_preflush()
    }

    /// A write to uncopied region `r` (pointed at the destination) waits for the region's
    /// copy, or becomes its overwrite if `whole`. From `map`, or from the worker for a write
    /// that found no memory before.
    fn park(self: &Arc<Self>, r: u32, bio: Bio<PerBio>, whole: bool) -> MapResult<PerBio> {
        match self
            .regions
            .park_write(r, bio, whole, |r| self.marks.is_copied(r))
        {
            Parked::Copied(bio) => self.issue_or_remap(bio),
            Parked::Waiting => MapResult::Submitted,
            Parked::Overwrite(mut bio) => {
                let fua = bio.is_fua();
                bio.data_mut().set_overwrite(r, fua);
                MapResult::Remapped(bio)
            }
            Parked::Queued => {
                self.kick();
                MapResult::Submitted
            }
            Parked::NoMemory(bio) => {
                self.st.alloc_waits.fetch_add(1, Ordering::Relaxed);
                self.deferred.lock().no_memory.push(bio);
                self.retry_later();
                MapResult::Submitted
            }
        }
    }

    /// The worker's second try for writes that found no memory in `park`.
    fn park_again(self: &Arc<Self>) {
        let mut bios = core::mem::take(&mut self.deferred.lock().no_memory);
        while let Some(bio) = bios.pop() {
            let DestWrite::Write(r) = bio.data().dest_write() else {
                bio.end(Status::IOERR);
                continue;
            };
            let whole = self.overwrites(r, &bio);
            match self.park(r, bio, whole) {
                MapResult::Remapped(bio) => bio.submit(),
                MapResult::Kill(bio) | MapResult::Requeue(bio) => bio.end(Status::IOERR),
                MapResult::Submitted => {}
            }
        }
    }

    /// Runs the worker again in ALLOC_RETRY_MS, after an allocation failed: waiting for
    /// memory, never spinning on it.
    fn retry_later(self: &Arc<Self>) {
        if !self.st.dying.load(Ordering::Acquire) {
            let _ = workqueue::system()
                .enqueue_delayed::<Self, 2>(self.clone(), msecs_to_jiffies(ALLOC_RETRY_MS));
        }
    }

    /// Stamps a user bio that depends on the source (a read of an uncopied region, a write
    /// waiting for its region's copy) while copies are in flight: its latency, taken at
    /// completion, is what the copy controller yields on. (Bios served by the destination are
    /// not timed: as the copy goes on more bios go there, and their lower latency would hide
    /// the copy's impact on the source.)
    fn time_for_controller(&self, bio: &mut Bio<PerBio>) {
        if self.st.copying.load(Ordering::Relaxed) != 0 {
            bio.data_mut().set_start(now_us());
        }
    }

    /// Sends a bio that goes to the destination's copied data on, unless it needs a commit
    /// first (a PREFLUSH or FUA while marks are not on disk): then the worker commits first.
    fn issue_or_remap(self: &Arc<Self>, bio: Bio<PerBio>) -> MapResult<PerBio> {
        match self.unless_commit_needed(bio) {
            Some(bio) => MapResult::Remapped(bio),
            None => MapResult::Submitted,
        }
    }

    /// Submits a bio for copied data from outside `map`.
    fn issue(self: &Arc<Self>, bio: Bio<PerBio>) {
        if let Some(bio) = self.unless_commit_needed(bio) {
            bio.submit();
        }
    }

    /// Gives the bio back if it can go now; takes it if it needs a commit first (deferring it
    /// to the worker, or failing it if no commit can be made).
    fn unless_commit_needed(self: &Arc<Self>, bio: Bio<PerBio>) -> Option<Bio<PerBio>> {
        if !(bio.is_preflush() || bio.is_fua()) || !self.marks.changed() {
            return Some(bio);
        }
        if self.mode() != MetadataMode::ReadWrite {
            bio.end(Status::IOERR);
            return None;
        }
        self.deferred.lock().bios.push(bio);
        self.kick();
        None
    }

    /// A discard (already pointed at the destination, at its target-relative sector): marks
    /// the regions it covers whole as copied, then passes it down trimmed to them. The
    /// worker's: the regions are marked 64 at a time, two short irq-off locks per 64.
    fn discard(self: &Arc<Self>, mut bio: Bio<PerBio>) {
        let start = bio.sector();
        let end = start.saturating_add(u64::from(bio.sectors()));
        let rs = self.cfg.geometry.region_size;
        let first = self.region_of(start.div_ceil(rs) << self.cfg.geometry.region_shift());
        // The last region may be short: a discard to the end of the target covers it.
        let last = if end >= self.cfg.geometry.target_size {
            self.cfg.geometry.nr_regions
        } else {
            self.region_of(end)
        };
        if first >= last {
            // Only parts of regions: nothing to discard safely.
            bio.end(Status::OK);
            return;
        }
        let count = last - first;
        if !self.marks.all_copied(first, count) {
            if self.mode() != MetadataMode::ReadWrite {
                // The regions cannot be recorded as copied: ignore the discard.
                bio.end(Status::OK);
                return;
            }
            // (The worker reports a copy that this completes, at the end of its pass.)
            self.regions
                .for_each_idle_chunk(first, count, |base, mask| {
                    self.marks.mark_mask(base, mask);
                });
        }
        if !self.settings.discard_passdown.load(Ordering::Relaxed) {
            bio.end(Status::OK);
            return;
        }
        let (s, len) = self.region_span(first, count);
        match u32::try_from(len).map(|len| bio.narrow_discard(s, len)) {
            Ok(Ok(())) => bio.submit(),
            _ => bio.end(Status::IOERR),
        }
    }

    /// A bio `map` handled completed. Interrupt context.
    ///
    /// Once nothing can be recorded (the metadata failed: `Marks::freeze`), a write to the
    /// destination completes successfully only if its region's mark is on disk: any other
    /// would read back differently after a reload (its region reads as the source's then), so
    /// it fails. A FUA write that filled its region is kept until the commit that records
    /// the region (then completed by the worker, and seen here again as a plain write).
    pub(crate) fn end_io(
        self: &Arc<Self>,
        mut bio: Bio<PerBio>,
        status: &mut Status,
    ) -> EndIoResult<PerBio> {
        if let Some(us) = bio.data().elapsed_us(now_us()) {
            self.ctl.user.record(i64::from(us).saturating_mul(1000));
        }
        let (r, fua) = match bio.data().dest_write() {
            DestWrite::None => return EndIoResult::Done(bio),
            DestWrite::Write(r) => {
                if status.is_ok() && !self.marks.survives_reload(r) {
                    *status = Status::IOERR;
                }
                return EndIoResult::Done(bio);
            }
            DestWrite::Overwrite { region, fua } => (region, fua),
        };
        if status.is_ok() && self.marks.mark(r) == Mark::Frozen {
            *status = Status::IOERR;
        }
        let ok = status.is_ok();
        let keep = ok && fua;
        if keep {
            // Its second completion, after the commit, sees a write to a copied region: so if
            // a failed commit took the mark back meanwhile (`Marks::freeze`), that completion
            // fails it (`survives_reload`), even when the worker's own commit had nothing
            // left to write.
            bio.data_mut().set_write(r);
        }
        let mut waiting = BioList::new();
        self.regions.finish(r, &mut waiting);
        if !ok {
            while let Some(b) = waiting.pop() {
                b.end(*status);
            }
            return EndIoResult::Done(bio);
        }
        if keep || !waiting.is_empty() {
            // Issued by the worker: submitting may sleep.
            let mut deferred = self.deferred.lock();
            deferred.bios.append(&mut waiting);
            let given_back = if keep {
                deferred.after_commit.push(bio);
                None
            } else {
                Some(bio)
            };
            drop(deferred);
            self.kick();
            return given_back.map_or(EndIoResult::Kept, EndIoResult::Done);
        }
        if self.marks.done() {
            // The worker raises the event.
            self.kick();
        }
        EndIoResult::Done(bio)
    }

    // ---- copying ----

    /// Starts a kcopyd job copying regions `first..first + count`, which the caller claimed
    /// (and counted in `copying`). Returns its bytes.
    fn start_copy(self: &Arc<Self>, client: &Client, first: u32, count: u32) -> Result<u64> {
        let (start, len) = self.region_span(first, count);
        let job = KBox::new(
            CopyJob {
                clone: self.clone(),
                first,
                count,
                start_ns: Ktime::ktime_get().to_ns(),
            },
            GFP_NOIO,
        )?;
        let from = Region {
            device: &self.cfg.source,
            sector: start,
            count: len,
        };
        client
            .copy::<CopyJob>(from, &[(&self.cfg.dest, start)], job)
            .map(|()| len << 9)
            .map_err(|(e, _job)| e)
    }

    /// Fails a claimed region whose copy could not start, and the writes waiting for it.
    fn abandon(&self, first: u32, count: u32) {
        let mut waiting = BioList::new();
        self.regions.finish_run(first, count, &mut waiting);
        while let Some(b) = waiting.pop() {
            b.end(Status::IOERR);
        }
        self.copies_done(count);
    }

    /// `n` regions stopped being copied. Process context.
    fn copies_done(&self, n: u32) {
        self.uncount(&self.st.copying, n);
    }

    /// Lowers `counter` by `n` and wakes postsuspend if nothing is copied or being started.
    fn uncount(&self, counter: &AtomicU32, n: u32) {
        let _guard = self.idle.lock.lock();
        counter.fetch_sub(n, Ordering::AcqRel);
        if self.is_idle() {
            self.idle.cv.notify_all();
        }
    }

    fn is_idle(&self) -> bool {
        self.st.copying.load(Ordering::SeqCst) == 0 && self.st.starting.load(Ordering::SeqCst) == 0
    }

    /// A copy job completed. kcopyd's thread.
    fn copy_done(self: &Arc<Self>, job: &CopyJob, result: CopyResult) {
        let (first, count) = (job.first, job.count);
        let ok = result.is_ok();
        let now = Ktime::ktime_get().to_ns();
        if ok {
            let bytes = self.region_span(first, count).1 << 9;
            self.ctl
                .completed(now, bytes, now.saturating_sub(job.start_ns));
            self.failures.succeeded();
        }
        if !ok && count > 1 {
            // One bad region must not keep its batch neighbours from being copied: the worker
            // copies each region of the batch again on its own. They keep their records (and
            // waiting writes) and their count in `copying`. (Not started from here: starting
            // a kcopyd job can wait for kcopyd's memory, which this thread frees.)
            self.regions.retry_singly(first, count);
            self.kick();
            return;
        }
        let mut waiting = BioList::new();
        // Marked before the records go: a write that finds no record finds the region
        // copied. Once nothing can be recorded, the copy is as good as failed for the writes
        // waiting for it: they fail, as a write to an uncopied region does then.
        let recorded = ok && self.marks.mark_run(first, count);
        self.regions.finish_run(first, count, &mut waiting);
        if recorded {
            while let Some(b) = waiting.pop() {
                self.issue(b);
            }
        } else if ok {
            while let Some(b) = waiting.pop() {
                b.end(Status::IOERR);
            }
        } else {
            let n = self.st.copy_errors.fetch_add(1, Ordering::Relaxed);
            if n < 10 || n % 1000 == 0 {
                pr_err!(
                    "{}: copying regions {}..{} failed ({} on {}); writes waiting for them fail ({} copy errors so far)\n",
                    self.name(),
                    first,
                    first.saturating_add(count),
                    if result.read_error { "read" } else { "write" },
                    if result.read_error { self.cfg.source.name() } else { self.cfg.dest.name() },
                    n + 1
                );
            }
            while let Some(b) = waiting.pop() {
                b.end(Status::IOERR);
            }
            // A single region (batches were split above): count its try, pause the copy.
            if self.failures.record(first, now) == Recorded::GaveUp {
                pr_err!(
                    "{}: region {} given up after {} failed copies ({} given up in all; the `retry_failed' message tries them again)\n",
                    self.name(),
                    first,
                    MAX_TRIES,
                    self.failures.nr_given_up()
                );
            }
            self.st.event_owed.store(true, Ordering::Release);
        }
        // Kick before uncounting: once the count is zero, suspend may drain the queue.
        self.kick();
        self.copies_done(count);
    }

    /// Starts the copies that writes wait for (regardless of the threshold and suspension:
    /// the writes must complete), and the single-region retries of failed batches.
    fn start_queued(self: &Arc<Self>) {
        while self.regions.nr_queued() != 0 {
            let mut regions = KVec::new();
            if regions.reserve(QUEUED_CHUNK, GFP_NOIO).is_err() {
                // Try again soon: postsuspend may be waiting for these.
                self.retry_later();
                return;
            }
            self.regions.take_queued(&mut regions);
            if regions.is_empty() {
                return;
            }
            let client = self.kcopyd.lock();
            for &(r, counted) in regions.iter() {
                if !counted {
                    self.st.copying.fetch_add(1, Ordering::AcqRel);
                }
                let started = match client.as_ref() {
                    Some(c) => self.start_copy(c, r, 1).map(|_| ()),
                    None => Err(ENODEV),
                };
                if started.is_err() {
                    self.abandon(r, 1);
                }
            }
        }
    }

    /// The background copy: starts copies of uncopied regions from where it stopped, as much
    /// as the copy controller's window, the caps and the rate limit allow, batching contiguous
    /// regions into jobs (see `copy_control`).
    fn background_copy(self: &Arc<Self>) {
        if self.mode() != MetadataMode::ReadWrite
            || self.marks.done()
            || self.failures.paused(Ktime::ktime_get().to_ns())
        {
            return;
        }
        // Regions given up are skipped (see `failures`).
        let failed = self.failures.view();
        // Count ourselves while starting copies, before checking for suspension: postsuspend
        // sets `suspended` and then waits for the counts to reach zero.
        self.st.starting.fetch_add(1, Ordering::SeqCst);
        let client = self.kcopyd.lock();
        let nr = self.cfg.geometry.nr_regions;
        let region_bytes = self.cfg.geometry.region_size << 9;
        let start = self.st.next_region.load(Ordering::Relaxed);
        let (mut next, mut wrapped, mut started) = (start, false, 0u32);
        while let Some(c) = client.as_ref() {
            if self.st.suspended.load(Ordering::SeqCst)
                || self.st.dying.load(Ordering::Acquire)
                || !self.settings.background_copy.load(Ordering::Acquire)
                || started >= MAX_STARTS_PER_PASS
            {
                // (Past MAX_STARTS_PER_PASS, the completions kick the worker for more.)
                break;
            }
            let in_flight = self.st.copying.load(Ordering::Acquire);
            // (The short last region counts whole: a few sectors more than in flight.)
            let in_flight_bytes = u64::from(in_flight).saturating_mul(region_bytes);
            let cap = self
                .settings
                .threshold()
                .map_or(u32::MAX, |t| t.saturating_sub(in_flight));
            if cap == 0 {
                break;
            }
            let rate = self.settings.rate_limit();
            let now = Ktime::ktime_get().to_ns();
            let (allowed, job) = {
                let mut ctl = self.ctl.lock();
                let a = ctl.allowance(now, in_flight_bytes, rate);
                (a, ctl.job_regions(self.settings.batch_size(), rate))
            };
            let bytes = match allowed {
                Allowance::Bytes(b) => b,
                Allowance::WindowFull => break,
                Allowance::Wait(ns) => {
                    // Under the kcopyd mutex: shutdown takes the client out, then cancels
                    // the pacer, so none is armed after that.
                    let ms = u32::try_from((ns / 1_000_000).saturating_add(1)).unwrap_or(u32::MAX);
                    let _ = workqueue::system()
                        .enqueue_delayed::<Self, 2>(self.clone(), msecs_to_jiffies(ms));
                    break;
                }
            };
            // Regions read while not copied first (see `hints`); then the scan, from where the
            // last pass stopped to the end, then from the start round to it.
            let (r, hinted) = match self.hints.take() {
                Some(h) => (h, true),
                None => match self
                    .marks
                    .next_uncopied_skipping(next, |i| failed.given_up_word(i))
                {
                    Some(r) if !wrapped || r < start => (r, false),
                    _ if !wrapped => {
                        (next, wrapped) = (0, true);
                        continue;
                    }
                    _ => break,
                },
            };
            // At least one region: the window allows a start whenever it is not full.
            let fits = u32::try_from(bytes.checked_div(region_bytes).unwrap_or(1))
                .unwrap_or(u32::MAX)
                .max(1);
            let room = job.min(fits).min(cap).min(MAX_STARTS_PER_PASS - started);
            let n = self.regions.claim_run(r, room, nr, |r| {
                self.marks.is_copied(r) || failed.given_up(r)
            });
            started += n;
            if !hinted {
                next = r.saturating_add(n.max(1));
            }
            if n == 0 {
                // Copied or being filled already.
                continue;
            }
            self.st.copying.fetch_add(n, Ordering::AcqRel);
            match self.start_copy(c, r, n) {
                Ok(b) => self.ctl.lock().started(b, rate),
                Err(_) => {
                    self.abandon(r, n);
                    break;
                }
            }
        }
        drop(client);
        self.st
            .next_region
            .store(if next >= nr { 0 } else { next }, Ordering::Relaxed);
        self.uncount(&self.st.starting, 1);
    }

    // ---- metadata ----

    /// Commits the marks not on disk yet: closes the transaction's set, writes its words,
    /// flushes the destination and commits (see `marks`). Returns whether it flushed the
    /// destination (false: nothing to commit). Process context.
    pub(crate) fn commit(self: &Arc<Self>) -> Result<bool> {
        let mut md = self.md.lock();
        if !self.marks.changed() {
            return Ok(false);
        }
        if self.mode() != MetadataMode::ReadWrite {
            return Err(EPERM);
        }
        let Some(closed) = self.marks.begin_commit() else {
            return Ok(false);
        };
        // The marks first, then the flush: every bit read here was set after its region's
        // data landed, so the flush issued next covers it (see `marks`).
        let drained = match md.as_mut() {
            Some(meta) => self.marks.drain_closed(closed, |r| meta.set_copied(r)),
            None => return Err(EIO),
        };
        if let Err(e) = drained {
            self.metadata_failed(&mut md, "record copied regions", e);
            return Err(e);
        }
        if let Err(e) = self.cfg.dest.issue_flush() {
            self.metadata_failed(&mut md, "flush destination device", e);
            return Err(e);
        }
        let written = match md.as_mut() {
            Some(meta) => meta.commit(),
            None => return Err(EIO),
        };
        match written {
            Ok(()) => {
                self.marks.end_commit(closed);
                Ok(true)
            }
            Err(e) => {
                self.metadata_failed(&mut md, "commit", e);
                Err(e)
            }
        }
    }

    /// A metadata operation failed: abort the transaction by reopening the metadata as last
    /// committed, and go read-only; if that fails too, go to Fail. Raises an event.
    ///
    /// Either way nothing can be recorded any more, so the in-core map goes back to what is
    /// on disk (`Marks::freeze`): the regions marked since the last commit read as not copied
    /// (from the source), as they will after a reload, and writes that would need a mark fail.
    fn metadata_failed(&self, md: &mut Option<Metadata>, op: &str, e: Error) {
        pr_err!(
            "{}: metadata operation `{}' failed: error = {}\n",
            self.name(),
            op,
            e.to_errno()
        );
        pr_err!("{}: aborting current metadata transaction\n", self.name());
        *md = None;
        let mode = match Metadata::open(&self.cfg.meta_dev, self.cfg.geometry, false) {
            Ok(m) => {
                *md = Some(m);
                MetadataMode::ReadOnly
            }
            Err(_) => {
                pr_err!("{}: failed to abort metadata transaction\n", self.name());
                MetadataMode::Fail
            }
        };
        self.set_mode(mode);
        // What the metadata opened again (its last commit) does not record reads as not
        // copied; without metadata (Fail mode: all I/O fails) nothing is on disk.
        let taken = self
            .marks
            .freeze(|r| md.as_mut().is_some_and(|m| m.is_copied(r).unwrap_or(false)));
        if taken > 0 {
            pr_err!(
                "{}: {} regions copied since the last commit read as not copied again (their copies cannot be recorded)\n",
                self.name(),
                taken
            );
        }
    }

    fn set_mode(&self, mode: MetadataMode) {
        let old = MetadataMode::from_u8(self.st.mode.fetch_max(mode as u8, Ordering::AcqRel));
        if mode > old {
            pr_info!(
                "{}: switching to {} mode\n",
                self.name(),
                match mode {
                    MetadataMode::ReadWrite => "read-write",
                    MetadataMode::ReadOnly => "read-only",
                    MetadataMode::Fail => "failure",
                }
            );
            self.events.raise();
        }
    }

    // ---- the worker ----

    fn work(self: &Arc<Self>) {
        self.park_again();
        self.start_queued();
        let mut discards = core::mem::take(&mut self.deferred.lock().discards);
        while let Some(b) = discards.pop() {
            self.discard(b);
        }
        let (mut bios, mut after_commit) = {
            let mut deferred = self.deferred.lock();
            (
                core::mem::take(&mut deferred.bios),
                core::mem::take(&mut deferred.after_commit),
            )
        };
        let (mut commit_first, mut plain) = (BioList::new(), BioList::new());
        while let Some(b) = bios.pop() {
            if b.is_preflush() || b.is_fua() {
                commit_first.push(b);
            } else {
                plain.push(b);
            }
        }
        while let Some(b) = plain.pop() {
            b.submit();
        }
        let due = self.st.commit_due.swap(false, Ordering::AcqRel);
        if !commit_first.is_empty() || !after_commit.is_empty() || due {
            // Every mark of a bio taken above was made before it was queued: this commit
            // records it.
            let committed = self.commit();
            while let Some(b) = after_commit.pop() {
                b.end(if committed.is_ok() {
                    Status::OK
                } else {
                    Status::IOERR
                });
            }
            while let Some(b) = commit_first.pop() {
                match committed {
                    // The commit flushed the destination after these bios arrived: an empty
                    // flush has nothing left to do (device-mapper sends a flush's data, if
                    // any, as a bio of its own). C does the same.
                    Ok(true) if b.sectors() == 0 && !b.is_fua() => b.end(Status::OK),
                    Ok(_) => b.submit(),
                    Err(_) => b.end(Status::IOERR),
                }
            }
        }
        self.background_copy();
        if self.st.event_owed.swap(false, Ordering::AcqRel) {
            self.events.raise();
        }
        if self.marks.done() {
            if !self.st.done_reported.swap(true, Ordering::AcqRel) {
                pr_info!("{}: all regions copied\n", self.name());
                self.events.raise();
            }
            // Once the last marks are committed (the next periodic commit at the latest).
            let freed = self.marks.release_if_done();
            if freed > 0 {
                pr_info!(
                    "{}: all regions copied and recorded: in-core maps freed ({} bytes)\n",
                    self.name(),
                    freed
                );
            }
        }
    }

    fn tick(self: &Arc<Self>) {
        self.st.commit_due.store(true, Ordering::Release);
        self.kick();
        if !self.st.suspended.load(Ordering::Acquire) && !self.st.dying.load(Ordering::Acquire) {
            let _ = workqueue::system()
                .enqueue_delayed::<Self, 1>(self.clone(), msecs_to_jiffies(COMMIT_PERIOD_MS));
        }
    }

    // ---- suspend, resume, destruction ----

    /// Stops the background copy and the waker, waits for copies in flight, commits. User
    /// writes waiting for copies were completed before this (device-mapper waits for bios in
    /// flight before it calls postsuspend).
    pub(crate) fn postsuspend(self: &Arc<Self>) {
        DelayedWork::<Self, 1>::cancel_sync(self);
        self.st.suspended.store(true, Ordering::SeqCst);
        // (A pass that had not seen `suspended` may arm it again: it then only kicks the
        // worker, which starts nothing while suspended.)
        DelayedWork::<Self, 2>::cancel_sync(self);
        {
            let mut guard = self.idle.lock.lock();
            while !self.is_idle() {
                self.idle.cv.wait(&mut guard);
            }
        }
        // The worker may still run (a message can kick it), but it starts no background
        // copies while suspended, and commits are serialised by the metadata mutex.
        let _ = self.commit();
    }

    /// Checks that the devices still hold the target, and loads the metadata the first time.
    ///
    /// The constructor opened the metadata too, but when a table is reloaded, the constructor
    /// of the new one runs while the old one is live: the old one goes on copying, taking
    /// writes and committing until it is suspended, which happens (with a final commit) before
    /// the new one's preresume. What the constructor read may be stale by then, so the
    /// metadata is opened again here, before any bio reaches the new table. (The C target
    /// keeps what its constructor read, and can lose writes made in between.)
    pub(crate) fn preresume(&self) -> Result {
        self.check_sizes()?;
        if self.st.loaded.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut md = self.md.lock();
        *md = None;
        let mut m = Metadata::open(&self.cfg.meta_dev, self.cfg.geometry, false).map_err(|e| {
            pr_err!(
                "{}: cannot open the metadata again before resuming: {}\n",
                self.name(),
                e.message()
            );
            e.code()
        })?;
        self.load_marks(&mut m)?;
        *md = Some(m);
        self.st.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// Loads the copied regions from `m` into the in-core marks (no I/O may be in flight).
    fn load_marks(&self, m: &mut Metadata) -> Result {
        self.marks.reset();
        m.for_each_copied(|r| self.marks.load(r))?;
        self.st
            .done_reported
            .store(self.marks.done(), Ordering::Release);
        Ok(())
    }

    fn check_sizes(&self) -> Result {
        let len = self.cfg.geometry.target_size;
        for (dev, what) in [
            (&self.cfg.source, "source"),
            (&self.cfg.dest, "destination"),
        ] {
            if dev.sectors() < len {
                pr_err!(
                    "{}: {} device {} has {} sectors, fewer than the target's {}\n",
                    self.name(),
                    what,
                    dev.name(),
                    dev.sectors(),
                    len
                );
                return Err(EINVAL);
            }
        }
        Ok(())
    }

    /// Restarts the background copy and the waker.
    pub(crate) fn resume(self: &Arc<Self>) {
        self.st.suspended.store(false, Ordering::SeqCst);
        self.tick();
    }

    /// Stops everything that holds a reference (see the module documentation).
    pub(crate) fn shutdown(self: &Arc<Self>) {
        self.st.dying.store(true, Ordering::SeqCst);
        DelayedWork::<Self, 1>::cancel_sync(self);
        let client = self.kcopyd.lock().take();
        drop(client);
        // Only armed with the client present (see `background_copy`).
        DelayedWork::<Self, 2>::cancel_sync(self);
        self.wq.drain();
    }

    // ---- status and messages ----

    pub(crate) fn status(self: &Arc<Self>, commit_first: bool, out: &mut StatusWriter<'_>) {
        if commit_first {
            let _ = self.commit();
        }
        let mode = self.mode();
        if mode == MetadataMode::Fail {
            let _ = write!(out, "Fail");
            return;
        }
        let usage = {
            let mut md = self.md.lock();
            if !self.st.loaded.load(Ordering::Acquire) {
                // A table never resumed (`dmsetup status --inactive`): its counts come from
                // the metadata its constructor read; the first resume loads them again.
                if let Some(m) = md.as_mut() {
                    if self.load_marks(m).is_err() {
                        let _ = write!(out, "Error");
                        return;
                    }
                }
            }
            md.as_ref().map(|m| m.usage())
        };
        let Some(Ok((used, total))) = usage else {
            let _ = write!(out, "Error");
            return;
        };
        let background = self.settings.background_copy.load(Ordering::Relaxed);
        let passdown = self.settings.discard_passdown.load(Ordering::Relaxed);
        // The caps where set, else what the copy controller chose (C's field layout).
        let (threshold, batch) = {
            let ctl = self.ctl.lock();
            (
                self.settings
                    .threshold()
                    .unwrap_or_else(|| ctl.window_regions()),
                self.settings
                    .batch_size()
                    .unwrap_or_else(|| ctl.job_regions(None, self.settings.rate_limit())),
            )
        };
        let _ = write!(
            out,
            "{} {}/{} {} {}/{} {} {}{}{} 4 copy_threshold {} copy_batch_size {} {}",
            BLOCK_SECTORS,
            used,
            total,
            self.cfg.geometry.region_size,
            self.marks.nr_copied(),
            self.cfg.geometry.nr_regions,
            self.st.copying.load(Ordering::Relaxed),
            u8::from(!background) + u8::from(!passdown),
            if background {
                ""
            } else {
                " no_background_copy"
            },
            if passdown { "" } else { " no_discard_passdown" },
            threshold,
            batch,
            mode.name()
        );
    }

    pub(crate) fn table(&self, out: &mut StatusWriter<'_>) {
        let args = core::str::from_utf8(&self.cfg.table_args).unwrap_or("");
        let _ = write!(
            out,
            "{} {} {}{}",
            self.cfg.meta_dev.name(),
            self.cfg.dest.name(),
            self.cfg.source.name(),
            args
        );
    }

    pub(crate) fn message(self: &Arc<Self>, msg: Message, out: &mut StatusWriter<'_>) {
        match msg {
            Message::Threshold(n) => self.settings.threshold.set(n),
            Message::BatchSize(n) => self.settings.batch_size.set(n),
            Message::BackgroundCopy(on) => {
                self.settings.background_copy.store(on, Ordering::Release)
            }
            Message::RateLimit(mib) => {
                self.settings
                    .rate_limit
                    .store(u64::from(mib) << 20, Ordering::Relaxed);
                self.ctl.lock().rate_changed(Ktime::ktime_get().to_ns());
            }
            Message::CopyStats => self.copy_stats(out),
            Message::CopyFailures => self.copy_failures(out),
            Message::Memory => {
                let _ = write!(
                    out,
                    "regions={} map_bytes={} failure_bytes={} alloc_waits={}",
                    self.cfg.geometry.nr_regions,
                    self.marks.bytes(),
                    self.failures.bytes(),
                    self.st.alloc_waits.load(Ordering::Relaxed)
                );
            }
            Message::RetryFailed => {
                let n = self.failures.retry_all();
                if n > 0 {
                    pr_info!("{}: trying the {} given-up regions again\n", self.name(), n);
                }
            }
        }
        self.kick();
    }

    /// The reply to `copy_failures`: `given_up=<n> first=<region>,...` (at most 16 listed;
    /// `first=-` when none).
    fn copy_failures(&self, out: &mut StatusWriter<'_>) {
        let _ = write!(out, "given_up={} first=", self.failures.nr_given_up());
        let mut any = false;
        self.failures.for_each_given_up(16, |r| {
            let _ = write!(out, "{}{}", if any { "," } else { "" }, r);
            any = true;
        });
        if !any {
            let _ = write!(out, "-");
        }
    }

    /// The reply to `copy_stats`: `key=value` pairs (see the user guide).
    fn copy_stats(&self, out: &mut StatusWriter<'_>) {
        let r = self.ctl.lock().report();
        let _ = write!(
            out,
            "window_bytes={} job_regions={} in_flight_bytes={} in_flight_regions={} \
             rate_bytes_per_s={} latency_us={} base_latency_us={} user_latency_us={} \
             user_base_latency_us={} slow_start={} probing={} rounds={} ",
            r.window_bytes,
            r.job_regions,
            u64::from(self.st.copying.load(Ordering::Relaxed))
                .saturating_mul(self.cfg.geometry.region_size << 9),
            self.st.copying.load(Ordering::Relaxed),
            r.rate_bytes_per_s,
            r.latency_ns / 1000,
            r.base_latency_ns / 1000,
            r.user_latency_ns / 1000,
            r.user_base_latency_ns / 1000,
            u8::from(r.slow_start),
            u8::from(r.probing),
            r.rounds,
        );
        for (name, cap) in [
            ("copy_threshold", self.settings.threshold()),
            ("copy_batch_size", self.settings.batch_size()),
        ] {
            let _ = match cap {
                Some(n) => write!(out, "{}={} ", name, n),
                None => write!(out, "{}=auto ", name),
            };
        }
        let _ = write!(
            out,
            "copy_rate_limit_mib={}",
            self.settings.rate_limit() >> 20
        );
    }

    // ---- queue limits and devices ----

    pub(crate) fn io_hints(&self, limits: &mut QueueLimits) {
        let region_bytes = u32::try_from(self.cfg.geometry.region_size << 9).unwrap_or(u32::MAX);
        let io_opt = limits.io_opt() >> 9;
        if u64::from(io_opt) < self.cfg.geometry.region_size
            || u64::from(io_opt) % self.cfg.geometry.region_size != 0
        {
            limits.set_io_min(region_bytes);
            limits.set_io_opt(region_bytes);
        }
        if self.settings.discard_passdown.load(Ordering::Relaxed) {
            let max = self.cfg.dest.max_discard_sectors();
            let reason = if max == 0 {
                Some("discard unsupported")
            } else if u64::from(max) < self.cfg.geometry.region_size {
                Some("max discard sectors smaller than a region")
            } else {
                None
            };
            if let Some(reason) = reason {
                pr_warn!(
                    "destination device {} {}: disabling discard passdown\n",
                    self.cfg.dest.name(),
                    reason
                );
                self.settings
                    .discard_passdown
                    .store(false, Ordering::Relaxed);
            }
        }
        if !self.settings.discard_passdown.load(Ordering::Relaxed) {
            // Discards are not passed down: our own limits, in whole regions.
            limits.set_discard_granularity(region_bytes);
            let rs = u32::try_from(self.cfg.geometry.region_size)
                .unwrap_or(1)
                .max(1);
            let max = (u32::MAX >> 9) / rs * rs;
            limits.set_max_hw_discard_sectors(max);
            return;
        }
        // Discards go to the destination only: its limits, not the stacked ones.
        let d = self.cfg.dest.limits();
        limits.set_max_hw_discard_sectors(d.max_hw_discard_sectors());
        limits.set_discard_granularity(d.discard_granularity());
        limits.set_discard_alignment(d.discard_alignment());
        limits.set_max_discard_segments(d.max_discard_segments());
    }

    pub(crate) fn source(&self) -> &Device {
        &self.cfg.source
    }

    pub(crate) fn dest(&self) -> &Device {
        &self.cfg.dest
    }
}

impl WorkItem<0> for CloneCore {
    type Pointer = Arc<CloneCore>;

    fn run(this: Arc<CloneCore>) {
        this.work();
    }
}

impl WorkItem<1> for CloneCore {
    type Pointer = Arc<CloneCore>;

    fn run(this: Arc<CloneCore>) {
        this.tick();
    }
}

impl WorkItem<2> for CloneCore {
    type Pointer = Arc<CloneCore>;

    fn run(this: Arc<CloneCore>) {
        this.kick();
    }
}

/// A kcopyd job: contiguous regions being copied.
struct CopyJob {
    clone: Arc<CloneCore>,
    first: u32,
    count: u32,
    /// When it started (`ktime_get`, ns).
    start_ns: i64,
}

impl CopyDone for CopyJob {
    type Pointer = KBox<CopyJob>;

    fn copy_done(job: KBox<CopyJob>, result: CopyResult) {
        job.clone.copy_done(&job, result);
    }
}

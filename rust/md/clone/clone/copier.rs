// SPDX-License-Identifier: GPL-2.0

//! The copier: starts kcopyd jobs copying regions from the source to the destination, and
//! finishes them. Two kinds of copies:
//!
//! - the ones writes wait for (queued by `regions`), started at once whatever the caps and
//!   suspension say (the writes must complete);
//! - the background copy: a scan of the uncopied regions from where it stopped (regions read
//!   while uncopied first, see `hints`), as much as the copy controller's window, the caps
//!   and the rate limit allow, contiguous regions batched into jobs (see `copy_control`).
//!
//! The two kinds go to two kcopyd clients (see [`Clients`]).
//!
//! A job's completion marks its regions (before their records go, see `regions`), sends on the
//! writes that waited for them, and feeds the controller; a failed batch is split and copied
//! again region by region (see `failures`).

use super::{commit::MetadataMode, CloneCore};
use crate::failures::{Recorded, MAX_TRIES};
use crate::{copy_control::Allowance, regions::QueuedCopy};
use core::sync::atomic::Ordering;
use kernel::{
    alloc::flags::GFP_NOIO,
    block::bio::{BioList, Status},
    device_mapper::kcopyd::{Client, CopyDone, CopyResult, Region},
    prelude::*,
    sync::{Arc, WaitCount},
    time::ktime_get_ns,
};

/// At most this many regions are claimed per pass of the worker (bounds the records it
/// allocates and the time it holds the copier mutex, whatever threshold and batch size say).
const MAX_STARTS_PER_PASS: u32 = 4096;
/// The queued copies are taken from the region table this many at a time.
const QUEUED_CHUNK: usize = 256;

/// The copier's two kcopyd clients.
///
/// kcopyd runs all of a client's work (submitting a job's reads, then its writes, and
/// completing it) in one work item, in order. The copies that writes wait for have a client of
/// their own, so that they never queue inside kcopyd behind background jobs (up to 512 KiB
/// each, whose writes to a RAM-speed destination are memory copies done in that work item).
pub(crate) struct Clients {
    /// The copies user writes wait for, the single-region retries of a failed batch, and
    /// the copies of a resume (`copy_now`).
    pub(crate) foreground: Client,
    /// The background copy.
    pub(crate) background: Client,
}

/// What the copier mutex protects (process context only).
pub(super) struct Copier {
    /// `None` once the target is being destroyed (see `lifecycle`).
    pub(super) clients: Option<Clients>,
    /// Where the background scan goes on.
    next_region: u32,
}

impl Copier {
    pub(super) fn new(clients: Clients) -> Self {
        Self {
            clients: Some(clients),
            next_region: 0,
        }
    }
}

/// The copies in flight, and the wait for none (postsuspend's).
///
/// `copying` counts the regions claimed for a copy until the copy completes; `starting` is 1
/// while the worker's background pass may start copies. Both change in process context
/// (worker, kcopyd's thread); postsuspend waits for both to reach zero.
///
/// Postsuspend sets `Lifecycle::suspended` and then waits; a pass counts itself in
/// `starting` and then checks `suspended`. Both sides are `SeqCst` (a store, then a load of
/// the other's variable; [`WaitCount`] is `SeqCst`): either the pass sees `suspended` and
/// starts nothing, or postsuspend sees the pass and waits for it. It waits for `starting`
/// first: once no pass runs, none can start copies any more, so `copying` never rises from
/// zero again: the copies writes wait for exist only while those writes are in flight, and
/// device-mapper completes them before postsuspend; the single-region retries of a failed
/// batch, which `start_queued` starts even while suspended, are counted already.
pub(super) struct InFlight {
    copying: WaitCount,
    starting: WaitCount,
}

/// A background pass, counted in `InFlight::starting` until dropped.
pub(super) struct Pass<'a>(&'a InFlight);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.0.starting.sub(1);
    }
}

impl InFlight {
    pub(super) fn new() -> Self {
        Self {
            copying: WaitCount::new(0),
            starting: WaitCount::new(0),
        }
    }

    /// Regions being copied.
    pub(super) fn regions(&self) -> u32 {
        // At most 2^31 regions are claimed.
        u32::try_from(self.copying.get()).unwrap_or(u32::MAX)
    }

    /// `n` regions were claimed for a copy.
    fn add(&self, n: u32) {
        self.copying.add(n as usize);
    }

    /// `n` regions stopped being copied.
    fn done(&self, n: u32) {
        self.copying.sub(n as usize);
    }

    /// A background pass begins (see the type's documentation).
    fn begin_pass(&self) -> Pass<'_> {
        self.starting.add(1);
        Pass(self)
    }

    /// Waits until no copy is in flight or being started. Process context.
    pub(super) fn wait_idle(&self) {
        self.starting.wait_zero();
        self.copying.wait_zero();
    }
}

impl CloneCore {
    /// Starts a kcopyd job copying regions `first..first + count`, which the caller claimed
    /// (and counted in `copying`). Returns its bytes.
    fn start_copy(self: &Arc<Self>, client: &Client, first: u32, count: u32) -> Result<u64> {
        let (start, len) = self.cfg.geometry.span(first, count);
        let job = KBox::new(
            CopyJob {
                clone: self.clone(),
                first,
                count,
                start_ns: ktime_get_ns(),
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

    /// Copies `count` sectors at `sector` from the source to the destination now, and waits
    /// for the copy: for a resume, with no I/O on the clone (a grow's tail, see `lifecycle`).
    /// Process context.
    pub(super) fn copy_now(&self, sector: u64, count: u64) -> Result {
        let copier = self.copier.lock();
        let client = &copier.clients.as_ref().ok_or(ENODEV)?.foreground;
        let from = Region {
            device: &self.cfg.source,
            sector,
            count,
        };
        client.copy_wait(from, &[(&self.cfg.dest, sector)])
    }

    /// Fails a claimed region whose copy could not start, and the writes waiting for it.
    fn abandon(&self, first: u32, count: u32) {
        let mut waiting = BioList::new();
        self.regions.abandon(first, count, &mut waiting);
        while let Some(b) = waiting.pop() {
            b.end(Status::IOERR);
        }
        self.in_flight.done(count);
    }

    /// A copy job completed. kcopyd's thread.
    fn copy_done(self: &Arc<Self>, job: &CopyJob, result: CopyResult) {
        let (first, count) = (job.first, job.count);
        let ok = result.is_ok();
        let now = ktime_get_ns();
        if ok {
            let bytes = self.cfg.geometry.span_bytes(first, count);
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
        let recorded = self.regions.copy_done(first, count, ok, &mut waiting);
        if recorded {
            while let Some(b) = waiting.pop() {
                self.issue(b);
            }
        } else if ok {
            while let Some(b) = waiting.pop() {
                b.end(Status::IOERR);
            }
        } else {
            let n = self.stats.copy_errors.fetch_add(1, Ordering::Relaxed);
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
            self.flags.owe_event();
        }
        // Kick before uncounting: once the count is zero, suspend may drain the queue.
        self.kick();
        self.in_flight.done(count);
    }

    /// Starts the copies that writes wait for (regardless of the threshold and suspension:
    /// the writes must complete), and the single-region retries of failed batches.
    pub(super) fn start_queued(self: &Arc<Self>) {
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
            let copier = self.copier.lock();
            for &copy in regions.iter() {
                if let QueuedCopy::First(_) = copy {
                    self.in_flight.add(1);
                }
                let r = copy.region();
                let started = match copier.clients.as_ref() {
                    Some(c) => self.start_copy(&c.foreground, r, 1).map(|_| ()),
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
    pub(super) fn background_copy(self: &Arc<Self>) {
        if self.mode() != MetadataMode::ReadWrite
            || self.regions.marks().done()
            || self.failures.paused(ktime_get_ns())
        {
            return;
        }
        // Regions given up are skipped (see `failures`).
        let failed = self.failures.view();
        // Counted while starting copies, before checking for suspension (see `InFlight`).
        let _pass = self.in_flight.begin_pass();
        let mut copier = self.copier.lock();
        let nr = self.cfg.geometry.nr_regions();
        let region_bytes = self.cfg.geometry.region_bytes();
        let start = copier.next_region;
        let (mut next, mut wrapped, mut started) = (start, false, 0u32);
        while let Some(c) = copier.clients.as_ref().map(|c| &c.background) {
            if self.life.suspended()
                || self.life.dying()
                || !self.settings.background_copy()
                || started >= MAX_STARTS_PER_PASS
            {
                // (Past MAX_STARTS_PER_PASS, the completions kick the worker for more.)
                break;
            }
            let in_flight = self.in_flight.regions();
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
            let now = ktime_get_ns();
            let (allowed, job) = {
                let mut ctl = self.ctl.lock();
                let a = ctl.allowance(now, in_flight_bytes, rate);
                (a, ctl.job_regions(self.settings.batch_size(), rate))
            };
            let bytes = match allowed {
                Allowance::Bytes(b) => b,
                Allowance::WindowFull => break,
                Allowance::Wait(ns) => {
                    // (Not once `dying`: see `shutdown`.)
                    let ms = u32::try_from((ns / 1_000_000).saturating_add(1)).unwrap_or(u32::MAX);
                    self.kick_after(ms);
                    break;
                }
            };
            // Regions read while not copied first (see `hints`); then the scan, from where the
            // last pass stopped to the end, then from the start round to it.
            let (r, hinted) = match self.hints.take() {
                Some(h) => (h, true),
                None => match self
                    .regions
                    .marks()
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
            let n = self.regions.claim_run(r, room, nr, &failed);
            started += n;
            if !hinted {
                next = r.saturating_add(n.max(1));
            }
            if n == 0 {
                // Copied or being filled already.
                continue;
            }
            self.in_flight.add(n);
            match self.start_copy(c, r, n) {
                Ok(b) => self.ctl.lock().started(b, rate),
                Err(_) => {
                    self.abandon(r, n);
                    break;
                }
            }
        }
        copier.next_region = if next >= nr { 0 } else { next };
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

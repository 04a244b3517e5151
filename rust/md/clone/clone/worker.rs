// SPDX-License-Identifier: GPL-2.0

//! The worker: the clone's process-context work, queued (`kick`) from any context. A pass
//! tries again the writes that found no memory, starts the copies writes wait for, handles
//! discards, sends on the bios handed to it (committing first for those that need it, and
//! completing the FUA writes kept until their commit), runs the background copy, and raises
//! the events owed. The waker queues it every [`COMMIT_PERIOD_MS`] with a commit due.
//!
//! The work item is not reentrant (one pass at a time, in process context), but nothing here
//! relies on that: what a pass shares is locked or atomic.

use super::CloneCore;
use crate::PerBio;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    block::bio::{BioList, Status},
    prelude::*,
    sync::Arc,
    time::msecs_to_jiffies,
    workqueue::{self, WorkItem},
};

/// How often metadata is committed and the copier woken, in milliseconds (as in C).
const COMMIT_PERIOD_MS: u32 = 1000;

/// Bios handed to the worker: PREFLUSH or FUA bios that wait for a commit, and writes whose
/// region a whole-region write just filled (their completion ran in interrupt context, where
/// bios are not submitted).
pub(super) struct Deferred {
    pub(super) bios: BioList<PerBio>,
    /// FUA writes that filled an uncopied region whole: landed (FUA: durable) and their region
    /// marked, kept by `end_io` until the commit that records the mark; the worker commits,
    /// then completes them (C's `deferred_flush_completions`).
    pub(super) after_commit: BioList<PerBio>,
    /// Discards, handled by the worker: one may cover 2^31 regions, too many to mark in
    /// `map` (the C target defers them too).
    pub(super) discards: BioList<PerBio>,
    /// Writes to uncopied regions that found no memory for a region record: the worker
    /// tries again ALLOC_RETRY_MS later (C waits on a mempool). Never failed for that.
    pub(super) no_memory: BioList<PerBio>,
}

impl Deferred {
    pub(super) fn new() -> Self {
        Self {
            bios: BioList::new(),
            after_commit: BioList::new(),
            discards: BioList::new(),
            no_memory: BioList::new(),
        }
    }
}

/// What the worker is asked to do besides the bios, and what it reported. Each flag is set
/// by one side and taken by the worker; `Relaxed`: each publishes nothing else, and
/// `commit_due` and `event_owed` are followed by a `kick` (queueing work orders the store
/// before the worker's pass); `done_reported` is set by preresume, before any I/O.
pub(super) struct WorkerFlags {
    /// Set by the waker: commit even if no bio asks for it.
    commit_due: AtomicBool,
    /// An event is owed to user space (a copy failed; raised by the worker).
    event_owed: AtomicBool,
    /// "All regions copied" was logged and its event raised (cleared when the metadata is
    /// loaded with regions left).
    done_reported: AtomicBool,
}

impl WorkerFlags {
    pub(super) fn new() -> Self {
        Self {
            commit_due: AtomicBool::new(false),
            event_owed: AtomicBool::new(false),
            done_reported: AtomicBool::new(false),
        }
    }

    /// An event is owed: the caller kicks the worker.
    pub(super) fn owe_event(&self) {
        self.event_owed.store(true, Ordering::Relaxed);
    }

    /// The metadata was loaded: whether everything is copied is known to be reported.
    pub(super) fn set_done_reported(&self, done: bool) {
        self.done_reported.store(done, Ordering::Relaxed);
    }
}

impl CloneCore {
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
        let due = self.flags.commit_due.swap(false, Ordering::Relaxed);
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
        if self.flags.event_owed.swap(false, Ordering::Relaxed) {
            self.events.raise();
        }
        if self.regions.marks().done() {
            if !self.flags.done_reported.swap(true, Ordering::Relaxed) {
                pr_info!("{}: all regions copied\n", self.name());
                self.events.raise();
            }
            // Once the last marks are committed (the next periodic commit at the latest).
            let freed = self.regions.marks().release_if_done();
            if freed > 0 {
                pr_info!(
                    "{}: all regions copied and recorded: in-core maps freed ({} bytes)\n",
                    self.name(),
                    freed
                );
            }
        }
    }

    pub(super) fn tick(self: &Arc<Self>) {
        self.flags.commit_due.store(true, Ordering::Relaxed);
        self.kick();
        if !self.life.suspended() && !self.life.dying() {
            let _ = workqueue::system_percpu()
                .enqueue_delayed::<_, 1>(self.clone(), msecs_to_jiffies(COMMIT_PERIOD_MS));
        }
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

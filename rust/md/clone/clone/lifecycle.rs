// SPDX-License-Identifier: GPL-2.0

//! Suspend, resume and destruction, and (re)loading the metadata before a resume.
//!
//! Postsuspend stops the background copy and the waker, waits for the copies in flight and
//! commits; resume starts them again. The destructor's [`CloneCore::shutdown`] stops
//! everything that holds a reference to the clone (see the parent module).

use super::CloneCore;
use crate::metadata::Metadata;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{prelude::*, sync::Arc, workqueue::DelayedWork};

/// Where the clone is in its life. Set in process context (suspend, resume, preresume,
/// destruction), read from any.
pub(super) struct Lifecycle {
    /// Between postsuspend and resume: no background copy starts. `SeqCst` against
    /// `InFlight::starting` (see `copier::InFlight`).
    suspended: AtomicBool,
    /// The target is being destroyed: from then on nothing arms the pacer (see
    /// [`CloneCore::shutdown`]). `Release`/`Acquire`.
    dying: AtomicBool,
    /// The metadata was (re)loaded by a preresume. `Release`/`Acquire`: who sees it sees the
    /// loaded marks.
    loaded: AtomicBool,
}

impl Lifecycle {
    pub(super) fn new() -> Self {
        Self {
            suspended: AtomicBool::new(false),
            dying: AtomicBool::new(false),
            loaded: AtomicBool::new(false),
        }
    }

    pub(super) fn suspended(&self) -> bool {
        self.suspended.load(Ordering::SeqCst)
    }

    pub(super) fn dying(&self) -> bool {
        self.dying.load(Ordering::Acquire)
    }

    pub(super) fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }
}

impl CloneCore {
    /// Stops the background copy and the waker, waits for copies in flight, commits. User
    /// writes waiting for copies were completed before this (device-mapper waits for bios in
    /// flight before it calls postsuspend).
    pub(crate) fn postsuspend(self: &Arc<Self>) {
        DelayedWork::<Self, 1>::cancel_sync(self);
        self.life.suspended.store(true, Ordering::SeqCst);
        // (A pass that had not seen `suspended` may arm it again: it then only kicks the
        // worker, which starts no background copy while suspended.)
        DelayedWork::<Self, 2>::cancel_sync(self);
        // The pacer may have been armed to start the single-region retries of a failed batch
        // after an allocation failed (`start_queued`): cancelled, nothing would start them and
        // the wait below would never end. The worker starts them (or arms the pacer again).
        self.kick();
        self.in_flight.wait_idle();
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
        if self.life.loaded() {
            return Ok(());
        }
        let mut md = self.md.lock();
        *md = None;
        let m = Metadata::open(&self.cfg.meta_dev, self.cfg.geometry, false).map_err(|e| {
            pr_err!(
                "{}: cannot open the metadata again before resuming: {}\n",
                self.name(),
                e.message()
            );
            e.code()
        })?;
        let mut m = self.grow(m).inspect_err(|e| {
            pr_err!(
                "{}: cannot grow the clone: error {}\n",
                self.name(),
                e.to_errno()
            );
        })?;
        self.load_marks(&mut m).inspect_err(|e| {
            pr_err!(
                "{}: cannot read the copied regions from the metadata: error {}\n",
                self.name(),
                e.to_errno()
            );
        })?;
        self.usage.record(Some(&m));
        *md = Some(m);
        self.life.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// Grows the metadata to a longer table (see `Metadata::grow`). The old last region, if it
    /// was short and is copied, first gets the sectors it gains copied from the source: they
    /// were past the old end, and the destination has nothing of the source there. (A crash
    /// between that copy and the commit leaves the old size, where those sectors do not count.)
    fn grow(&self, mut m: Metadata) -> Result<Metadata> {
        let Some(old) = m.grow_pending() else {
            return Ok(m);
        };
        let new = self.cfg.geometry;
        if let Some((r, sector, count)) = new.grown_tail(&old) {
            if m.is_copied(r)? {
                self.copy_now(sector, count)?;
            }
        }
        let m = m.grow()?;
        pr_info!(
            "{}: grown from {} to {} sectors ({} to {} regions)\n",
            self.name(),
            old.target_size(),
            new.target_size(),
            old.nr_regions(),
            new.nr_regions()
        );
        Ok(m)
    }

    /// Loads the copied regions from `m` into the in-core marks (no I/O may be in flight).
    pub(super) fn load_marks(&self, m: &mut Metadata) -> Result {
        self.regions.marks().reset();
        m.for_each_copied_word(|w, bits| self.regions.marks().load_word(w, bits))?;
        self.flags.set_done_reported(self.regions.marks().done());
        Ok(())
    }

    fn check_sizes(&self) -> Result {
        let len = self.cfg.geometry.target_size();
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
        self.life.suspended.store(false, Ordering::SeqCst);
        self.tick();
    }

    /// Stops everything that holds a reference (see the module documentation).
    pub(crate) fn shutdown(self: &Arc<Self>) {
        self.life.dying.store(true, Ordering::Release);
        // The waker and the pacer are disabled for good before the queue drains: a timer
        // still armed (a worker pass or a postsuspend that had not seen `dying` or
        // `suspended` may have armed it after they were cancelled) would otherwise fire during
        // the drain, and its kick would be dropped by the draining queue while reporting
        // success, leaking the reference it carries (the release would wait for ever).
        // Disabled, a pending one is cancelled (its reference dropped) and arming one fails.
        DelayedWork::<Self, 1>::disable_sync(self);
        DelayedWork::<Self, 2>::disable_sync(self);
        let clients = self.copier.lock().clients.take();
        drop(clients);
        self.wq.drain();
    }
}

// SPDX-License-Identifier: GPL-2.0

//! What `status` reads without the metadata mutex: the metadata blocks in use as of the last
//! commit (or open), and whether a commit is running, with a bounded wait for it to end.
//!
//! A commit holds the mutex for as long as it writes: the commit of a whole-device discard
//! of 2^30 regions writes 2^24 words, about a minute and a half under TCG. C's status takes
//! the mutex (to commit first, and to read the space map), so `dmsetup status` waits for all
//! of it, and the hung-task detector reports the wait. Here status waits for a running commit
//! at most [`STATUS_WAIT_MS`], then commits first as C does; if the commit is still running
//! then, status does not commit and answers with the counts of the last commit (the copied
//! count and the mode are then those from before the running commit ends). The block counts
//! are recorded here; between commits they cannot change (blocks are allocated only inside a
//! commit, an open or a grow, all under the mutex, each of which records them).
//!
//! And what the commits did, for the `commit_stats` message: how many, the words they wrote
//! one by one and those of the commits that rewrote the whole map (see `Marks::dense`), how
//! long the last and the longest took.
//!
//! Written under the metadata mutex; `running` is taken inside it (by a commit) or alone (by
//! status), so it never waits for the metadata mutex. Process context only.

use crate::metadata::Metadata;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{CondVar, Mutex},
    time::msecs_to_jiffies,
};

/// How long status waits for a running commit to end before answering without committing.
pub(super) const STATUS_WAIT_MS: u32 = 2000;

/// No figures recorded (no metadata: `Fail` mode, or never opened).
const UNKNOWN: u64 = u64::MAX;

/// The metadata's block counts as of the last commit or open, and whether a commit runs.
///
/// # Invariants
///
/// `blocks` is [`UNKNOWN`] or `used << 32 | total` with both below 2^32 (a metadata device
/// has at most 2^32 blocks of 4 KiB: the space map's limit is far below that). `running` is
/// true exactly while a [`Running`] guard lives; `ended` is notified when it drops.
#[pin_data]
pub(super) struct MetaUsage {
    blocks: AtomicU64,
    commits: AtomicU64,
    words_written: AtomicU64,
    words_rewritten: AtomicU64,
    last_ns: AtomicU64,
    longest_ns: AtomicU64,
    #[pin]
    running: Mutex<bool>,
    #[pin]
    ended: CondVar,
}

impl MetaUsage {
    pub(super) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            blocks: AtomicU64::new(UNKNOWN),
            commits: AtomicU64::new(0),
            words_written: AtomicU64::new(0),
            words_rewritten: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
            longest_ns: AtomicU64::new(0),
            running <- new_mutex!(false, "clone_commit_running"),
            ended <- new_condvar!("clone_commit_ended"),
        })
    }

    /// Records the counts of `md` (unknown without metadata, or if they cannot be read).
    /// Called with the metadata mutex held, after each commit, open and grow.
    pub(super) fn record(&self, md: Option<&Metadata>) {
        let packed = match md.map(|m| m.usage()) {
            Some(Ok((used, total))) => match (u32::try_from(used), u32::try_from(total)) {
                (Ok(u), Ok(t)) => (u64::from(u) << 32) | u64::from(t),
                _ => UNKNOWN,
            },
            _ => UNKNOWN,
        };
        self.blocks.store(packed, Ordering::Relaxed);
    }

    /// Records a commit that wrote `written` words one by one and rewrote `rewritten`, in `ns`
    /// nanoseconds. Called with the metadata mutex held (one writer: the counts only add up).
    pub(super) fn record_commit(&self, written: u64, rewritten: u64, ns: u64) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.words_written.fetch_add(written, Ordering::Relaxed);
        self.words_rewritten.fetch_add(rewritten, Ordering::Relaxed);
        self.last_ns.store(ns, Ordering::Relaxed);
        self.longest_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// The `commit_stats` reply's figures: commits, words written one by one, words rewritten
    /// with the whole map, the last and the longest commit in microseconds.
    pub(super) fn commit_stats(&self) -> [u64; 5] {
        [
            self.commits.load(Ordering::Relaxed),
            self.words_written.load(Ordering::Relaxed),
            self.words_rewritten.load(Ordering::Relaxed),
            self.last_ns.load(Ordering::Relaxed) / 1000,
            self.longest_ns.load(Ordering::Relaxed) / 1000,
        ]
    }

    /// The blocks used and in all, as last recorded.
    pub(super) fn blocks(&self) -> Option<(u64, u64)> {
        let b = self.blocks.load(Ordering::Relaxed);
        (b != UNKNOWN).then_some((b >> 32, b & u64::from(u32::MAX)))
    }

    /// Marks a commit as running until the returned guard is dropped. Called with the
    /// metadata mutex held (so only one is marked at a time).
    ///
    /// # Context
    ///
    /// Process context; may sleep.
    pub(super) fn running(&self) -> Running<'_> {
        *self.running.lock() = true;
        Running(self)
    }

    /// Waits up to `ms` milliseconds for no commit to be running; returns whether none is
    /// (a new one may start right after).
    ///
    /// # Context
    ///
    /// Process context, not holding the metadata mutex; sleeps.
    pub(super) fn wait_idle(&self, ms: u32) -> bool {
        let mut left = msecs_to_jiffies(ms);
        let mut running = self.running.lock();
        while *running {
            match self.ended.wait_interruptible_timeout(&mut running, left) {
                kernel::sync::CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
                _ => return !*running,
            }
        }
        true
    }
}

/// A running commit (see [`MetaUsage::running`]); dropped when it ends, however it ends.
pub(super) struct Running<'a>(&'a MetaUsage);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        *self.0.running.lock() = false;
        self.0.ended.notify_all();
    }
}

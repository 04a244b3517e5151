// SPDX-License-Identifier: GPL-2.0

//! What `status` reads without the metadata mutex: the metadata blocks in use as of the last
//! commit (or open), and whether a commit is running.
//!
//! A commit holds the mutex for as long as it writes: the commit of a whole-device discard
//! of 2^30 regions writes 2^24 words, about a minute under TCG. C's status takes the mutex
//! (to commit first, and to read the space map), so `dmsetup status` waits for all of it, and
//! the hung-task detector reports the wait. Here status commits first only if no commit is
//! running (that one brings the figures up to date), and reads the block counts recorded
//! here; between commits they cannot change (blocks are allocated only inside a commit, an
//! open or a grow, all under the mutex, each of which records them).
//!
//! Written under the metadata mutex, read from process context (status).

use crate::metadata::Metadata;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// No figures recorded (no metadata: `Fail` mode, or never opened).
const UNKNOWN: u64 = u64::MAX;

/// The metadata's block counts as of the last commit or open, and whether a commit runs.
///
/// # Invariants
///
/// `blocks` is [`UNKNOWN`] or `used << 32 | total` with both below 2^32 (a metadata device
/// has at most 2^32 blocks of 4 KiB: the space map's limit is far below that).
pub(super) struct MetaUsage {
    blocks: AtomicU64,
    committing: AtomicBool,
}

impl MetaUsage {
    pub(super) fn new() -> Self {
        Self {
            blocks: AtomicU64::new(UNKNOWN),
            committing: AtomicBool::new(false),
        }
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

    /// The blocks used and in all, as last recorded.
    pub(super) fn blocks(&self) -> Option<(u64, u64)> {
        let b = self.blocks.load(Ordering::Relaxed);
        (b != UNKNOWN).then_some((b >> 32, b & u64::from(u32::MAX)))
    }

    /// Marks a commit as running until the returned guard is dropped. Called with the
    /// metadata mutex held (so only one is marked at a time).
    pub(super) fn running(&self) -> Running<'_> {
        self.committing.store(true, Ordering::Relaxed);
        Running(&self.committing)
    }

    /// Whether a commit is running (a hint: one may start or end right after).
    pub(super) fn committing(&self) -> bool {
        self.committing.load(Ordering::Relaxed)
    }
}

/// A running commit (see [`MetaUsage::running`]); dropped when it ends, however it ends.
pub(super) struct Running<'a>(&'a AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

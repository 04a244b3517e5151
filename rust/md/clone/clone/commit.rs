// SPDX-License-Identifier: GPL-2.0

//! Commits: the copied regions not on disk yet are written to the metadata, the destination
//! flushed, the transaction committed (the order is `marks`'). And the metadata mode: what is
//! still possible after a metadata operation failed.
//!
//! The mode only ever goes down [`MetadataMode`]'s list; [`ModeCell`] makes any other
//! transition impossible. It is read from any context (`map`, completions) and changed in
//! process context by a failed commit (under the metadata mutex).

use super::CloneCore;
use crate::metadata::Metadata;
use core::sync::atomic::{AtomicU8, Ordering};
use kernel::{prelude::*, sync::Arc};

/// The metadata mode (as in C): it only ever goes down the list.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(super) enum MetadataMode {
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

    /// The status line's word.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::ReadWrite => "rw",
            Self::ReadOnly => "ro",
            Self::Fail => "Fail",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::ReadWrite => "read-write",
            Self::ReadOnly => "read-only",
            Self::Fail => "failure",
        }
    }
}

/// The current mode; it can only go down (see the module documentation). Any context.
pub(super) struct ModeCell(AtomicU8);

impl ModeCell {
    pub(super) fn new() -> Self {
        Self(AtomicU8::new(MetadataMode::ReadWrite as u8))
    }

    /// The mode. `Acquire`: pairs with the `Release` of [`Self::degrade`], so whoever sees a
    /// lower mode also sees what the failed commit did before it (the frozen marks).
    pub(super) fn get(&self) -> MetadataMode {
        MetadataMode::from_u8(self.0.load(Ordering::Acquire))
    }

    /// Goes down to `mode` unless already there or lower; returns whether it changed.
    fn degrade(&self, mode: MetadataMode) -> bool {
        let old = MetadataMode::from_u8(self.0.fetch_max(mode as u8, Ordering::AcqRel));
        mode > old
    }
}

impl CloneCore {
    pub(super) fn mode(&self) -> MetadataMode {
        self.mode.get()
    }

    /// Commits the marks not on disk yet: closes the transaction's set, writes its words,
    /// flushes the destination and commits (see `marks`). Returns whether it flushed the
    /// destination (false: nothing to commit). Process context.
    pub(super) fn commit(self: &Arc<Self>) -> Result<bool> {
        let mut md = self.md.lock();
        if !self.regions.marks().changed() {
            return Ok(false);
        }
        if self.mode() != MetadataMode::ReadWrite {
            return Err(EPERM);
        }
        let Some(closed) = self.regions.marks().begin_commit() else {
            return Ok(false);
        };
        // The marks first, then the flush: every bit read here was set after its region's
        // data landed, so the flush issued next covers it (see `marks`).
        let drained = match md.as_mut() {
            Some(meta) => self
                .regions
                .marks()
                .drain_closed(&closed, |r| meta.set_copied(r)),
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
                self.regions.marks().end_commit(closed);
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
            .regions
            .marks()
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
        if self.mode.degrade(mode) {
            pr_info!(
                "{}: switching to {} mode\n",
                self.name(),
                mode.description()
            );
            self.events.raise();
        }
    }
}

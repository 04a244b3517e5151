// SPDX-License-Identifier: GPL-2.0

//! Commits: the copied regions not on disk yet are written to the metadata, the destination
//! flushed, the transaction committed (the order is `marks`'). And the metadata mode: what is
//! still possible after a metadata operation failed.
//!
//! The mode only ever goes down [`MetadataMode`]'s list; [`ModeCell`] makes any other
//! transition impossible. It is read from any context (`map`, completions) and changed in
//! process context by a failed commit (under the metadata mutex).

use super::CloneCore;
use crate::{metadata::Metadata, regions::Yielder};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use kernel::{prelude::*, sync::Arc, time::ktime_get_ns};

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
///
/// And whether writes may have been lost: a failed transaction whose marks were taken back
/// (they read as not copied again) may have had writes acknowledged to those regions, which
/// now read as the source. No flush may then say that the writes before it are durable:
/// every later flush and FUA write fails (C: its failed transaction stays "changed"). Set
/// under the metadata mutex, before the mode leaves `ReadWrite` (`Release`, then the mode's
/// `AcqRel`: a reader that sees the new mode, `Acquire`, sees it), never cleared. Read by
/// `commit` (under the mutex) and by `map` for flushes and FUA writes (any context).
pub(super) struct ModeCell {
    mode: AtomicU8,
    writes_lost: AtomicBool,
}

impl ModeCell {
    pub(super) fn new() -> Self {
        Self {
            mode: AtomicU8::new(MetadataMode::ReadWrite as u8),
            writes_lost: AtomicBool::new(false),
        }
    }

    /// Whether writes acknowledged before may have been lost (see the type's documentation).
    pub(super) fn writes_lost(&self) -> bool {
        self.writes_lost.load(Ordering::Acquire)
    }

    fn lose_writes(&self) {
        self.writes_lost.store(true, Ordering::Release);
    }

    /// The mode. `Acquire`: pairs with the `Release` of [`Self::degrade`], so whoever sees a
    /// lower mode also sees what the failed commit did before it (the frozen marks).
    pub(super) fn get(&self) -> MetadataMode {
        MetadataMode::from_u8(self.mode.load(Ordering::Acquire))
    }

    /// Goes down to `mode` unless already there or lower; returns whether it changed.
    fn degrade(&self, mode: MetadataMode) -> bool {
        let old = MetadataMode::from_u8(self.mode.fetch_max(mode as u8, Ordering::AcqRel));
        mode > old
    }
}

impl CloneCore {
    pub(super) fn mode(&self) -> MetadataMode {
        self.mode.get()
    }

    /// Commits the marks not on disk yet: closes the transaction's set, writes its words,
    /// flushes the destination and commits (see `marks`). Returns whether it flushed the
    /// destination (false: nothing to commit). Fails, whatever there is to commit, once
    /// writes may have been lost ([`ModeCell::writes_lost`]): the flush or FUA write that
    /// needs the commit must fail. Process context.
    pub(super) fn commit(self: &Arc<Self>) -> Result<bool> {
        let mut md = self.md.lock();
        let _running = self.usage.running();
        if self.mode.writes_lost() {
            return Err(EIO);
        }
        if !self.regions.marks().changed() {
            return Ok(false);
        }
        if self.mode() != MetadataMode::ReadWrite {
            return Err(EPERM);
        }
        let Some(closed) = self.regions.marks().begin_commit() else {
            return Ok(false);
        };
        let started = ktime_get_ns();
        // The marks first, then the flush: every bit read here was set after its region's
        // data landed, so the flush issued next covers it (see `marks`). A word at a time
        // (2^22 of them for a whole-device discard of 2^28 regions), offering the CPU now and
        // then: the metadata mutex may be held across; or, when the commit changed much of
        // the map (a whole-device discard), the whole map rewritten an array block at a time,
        // when the metadata device has room for a second copy of it.
        let Some(meta) = Option::as_mut(&mut *md) else {
            return Err(EIO);
        };
        let marks = self.regions.marks();
        let rewrite = meta.nr_regions() == marks.nr_regions()
            && marks.dense(&closed)
            && meta.room_to_rewrite();
        let mut words = 0u64;
        let drained = if rewrite {
            marks
                .with_words(|word| meta.rewrite_copied(word))
                .unwrap_or(Ok(()))
        } else {
            let mut yielder = Yielder::default();
            marks.drain_closed(&closed, |w, bits| {
                yielder.word();
                words += 1;
                meta.set_copied_word(w, bits)
            })
        };
        if let Err(e) = drained {
            self.metadata_failed(&mut md, "record copied regions", e);
            return Err(e);
        }
        if let Err(e) = self.cfg.dest.issue_flush() {
            self.metadata_failed(&mut md, "flush destination device", e);
            return Err(e);
        }
        let written = match Option::as_mut(&mut *md) {
            Some(meta) => meta.commit(),
            None => return Err(EIO),
        };
        match written {
            Ok(()) => {
                self.regions.marks().end_commit(closed);
                self.usage.record(md.as_ref());
                let rewritten = if rewrite {
                    u64::from(self.regions.marks().nr_regions().div_ceil(64))
                } else {
                    0
                };
                self.usage
                    .record_commit(words, rewritten, elapsed_ns(started));
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
        // The marks not on disk are taken back below: writes acknowledged to their regions
        // are lost. Said before the mode changes, so that whoever sees the new mode sees it.
        let lost = self.regions.marks().changed();
        if lost {
            self.mode.lose_writes();
        }
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
        self.usage.record(md.as_ref());
        // What the metadata opened again (its last commit) does not record reads as not
        // copied; without metadata (Fail mode: all I/O fails) nothing is on disk.
        let taken = self
            .regions
            .marks()
            .freeze(|w| md.as_mut().map_or(0, |m| m.copied_word(w).unwrap_or(0)));
        if taken > 0 {
            pr_err!(
                "{}: {} regions copied since the last commit read as not copied again (their copies cannot be recorded)\n",
                self.name(),
                taken
            );
        }
        if lost {
            pr_err!(
                "{}: writes acknowledged to them since are lost: every flush and FUA write fails from now on\n",
                self.name()
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

/// Nanoseconds since `started` (a `ktime_get_ns`; 0 if the clock went back).
fn elapsed_ns(started: i64) -> u64 {
    u64::try_from(ktime_get_ns().saturating_sub(started)).unwrap_or(0)
}

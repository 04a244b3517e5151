// SPDX-License-Identifier: GPL-2.0

//! The paths a bio takes (the target's module documentation says where each goes): `map`,
//! the writes that wait for their region's copy or fill it whole, the bios that need a commit
//! first, discards (handled by the worker), and `end_io`.

use super::{commit::MetadataMode, now_us, CloneCore};
use crate::{per_bio::DestWrite, regions::Parked, PerBio};
use core::sync::atomic::Ordering;
use kernel::{
    block::bio::{Bio, BioList, Operation, Status},
    device_mapper::{EndIoResult, MapResult, Target},
    sync::Arc,
};

impl CloneCore {
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
        let r = self.cfg.geometry.region_of(offset);
        if self.regions.marks().is_copied(r) {
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
        self.cfg
            .geometry
            .is_whole_region(r, bio.sector(), u64::from(bio.sectors()))
            && !bio.is_preflush()
    }

    /// A write to uncopied region `r` (pointed at the destination) waits for the region's
    /// copy, or becomes its overwrite if `whole`. From `map`, or from the worker for a write
    /// that found no memory before.
    fn park(self: &Arc<Self>, r: u32, bio: Bio<PerBio>, whole: bool) -> MapResult<PerBio> {
        match self.regions.park_write(r, bio, whole) {
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
                self.stats.alloc_waits.fetch_add(1, Ordering::Relaxed);
                self.deferred.lock().no_memory.push(bio);
                self.retry_later();
                MapResult::Submitted
            }
        }
    }

    /// The worker's second try for writes that found no memory in `park`.
    pub(super) fn park_again(self: &Arc<Self>) {
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

    /// Stamps a user bio that depends on the source (a read of an uncopied region, a write
    /// waiting for its region's copy) while copies are in flight: its latency, taken at
    /// completion, is what the copy controller yields on. (Bios served by the destination are
    /// not timed: as the copy goes on more bios go there, and their lower latency would hide
    /// the copy's impact on the source.)
    fn time_for_controller(&self, bio: &mut Bio<PerBio>) {
        if self.in_flight.regions() != 0 {
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
    pub(super) fn issue(self: &Arc<Self>, bio: Bio<PerBio>) {
        if let Some(bio) = self.unless_commit_needed(bio) {
            bio.submit();
        }
    }

    /// Gives the bio back if it can go now; takes it if it needs a commit first (deferring it
    /// to the worker, or failing it if no commit can be made).
    ///
    /// Once writes may have been lost (`ModeCell::writes_lost`, set before the mode leaves
    /// `ReadWrite`: the mode is read first), every flush and FUA write fails.
    fn unless_commit_needed(self: &Arc<Self>, bio: Bio<PerBio>) -> Option<Bio<PerBio>> {
        if !(bio.is_preflush() || bio.is_fua()) {
            return Some(bio);
        }
        let mode = self.mode();
        if mode != MetadataMode::ReadWrite && self.mode.writes_lost() {
            bio.end(Status::IOERR);
            return None;
        }
        if !self.regions.marks().changed() {
            return Some(bio);
        }
        if mode != MetadataMode::ReadWrite {
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
    pub(super) fn discard(self: &Arc<Self>, mut bio: Bio<PerBio>) {
        let Some((first, count)) = self
            .cfg
            .geometry
            .whole_regions(bio.sector(), u64::from(bio.sectors()))
        else {
            // Only parts of regions: nothing to discard safely.
            bio.end(Status::OK);
            return;
        };
        if !self.regions.marks().all_copied(first, count) {
            if self.mode() != MetadataMode::ReadWrite {
                // The regions cannot be recorded as copied: ignore the discard.
                bio.end(Status::OK);
                return;
            }
            // (The worker reports a copy that this completes, at the end of its pass.)
            // (If the marks froze meanwhile, the regions left read from the source: the
            // discard is only a hint.)
            let _ = self.regions.mark_idle(first, count);
        }
        if !self.settings.discard_passdown() {
            bio.end(Status::OK);
            return;
        }
        let (s, len) = self.cfg.geometry.span(first, count);
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
                if status.is_ok() && !self.regions.marks().survives_reload(r) {
                    *status = Status::IOERR;
                }
                return EndIoResult::Done(bio);
            }
            DestWrite::Overwrite { region, fua } => (region, fua),
        };
        let mut waiting = BioList::new();
        // Marked, then its record removed (see `regions`).
        if !self.regions.overwrite_done(r, status.is_ok(), &mut waiting) && status.is_ok() {
            // Nothing can be recorded any more: it would read back as the source's.
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
        if self.regions.marks().done() {
            // The worker raises the event.
            self.kick();
        }
        EndIoResult::Done(bio)
    }
}

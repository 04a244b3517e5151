// SPDX-License-Identifier: GPL-2.0

//! Regions that were read while not copied: the background copy takes them first.
//!
//! A read of a region not copied yet goes to the (slow, remote) source. The C target leaves it
//! at that, so a region that is read again and again keeps going to the source until the
//! sequential copy happens to reach it. Here `map` notes such regions, and the background
//! copy copies the noted ones before going on with its scan: the data that is used ends up on
//! the destination first. The read itself is not delayed.
//!
//! # Contexts
//!
//! Lock-free: `map` (any process context, many CPUs) writes notes into a small ring of atomic
//! slots, overwriting the oldest; the worker takes them. Notes are advice: one lost in a race
//! or overwritten only means the scan reaches that region in its turn.

use core::sync::atomic::{AtomicU32, Ordering};

/// How many notes are kept.
const SLOTS: u32 = 64;

/// The notes of regions read while not copied; a slot holds region + 1, or 0 when empty.
pub(crate) struct ReadHints {
    slots: [AtomicU32; SLOTS as usize],
    /// Where the next note goes (modulo `SLOTS`).
    next: AtomicU32,
}

impl ReadHints {
    pub(crate) fn new() -> Self {
        Self {
            slots: [const { AtomicU32::new(0) }; SLOTS as usize],
            next: AtomicU32::new(0),
        }
    }

    fn slot(&self, i: u32) -> Option<&AtomicU32> {
        self.slots.get((i % SLOTS) as usize)
    }

    /// Notes region `r`, unless it is the newest note already (sequential reads within a
    /// region note it once).
    pub(crate) fn note(&self, r: u32) {
        let v = r.saturating_add(1);
        let newest = self.next.load(Ordering::Relaxed).wrapping_sub(1);
        if self
            .slot(newest)
            .is_some_and(|s| s.load(Ordering::Relaxed) == v)
        {
            return;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if let Some(s) = self.slot(i) {
            s.store(v, Ordering::Relaxed);
        }
    }

    /// Takes a note, if there is one.
    pub(crate) fn take(&self) -> Option<u32> {
        self.slots.iter().find_map(|s| {
            if s.load(Ordering::Relaxed) == 0 {
                return None;
            }
            s.swap(0, Ordering::Relaxed).checked_sub(1)
        })
    }
}

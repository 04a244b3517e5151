// SPDX-License-Identifier: GPL-2.0

//! Regions that were read while not copied: the background copy takes them first.
//!
//! A read of a region not copied yet goes to the (slow, remote) source. The C target leaves it
//! at that, so a region that is read again and again keeps going to the source until the
//! sequential copy happens to reach it. Here `map` notes such regions, and the background
//! copy copies the noted ones before going on with its scan: the data that is used ends up on
//! the destination first. The read itself is not delayed.
//!
//! # Locking and contexts
//!
//! A small ring under a spinlock taken with interrupts off: `map` pushes (any process
//! context), the worker pops. When full, the oldest note is dropped (the scan reaches every
//! region anyway).

use kernel::{new_spinlock_irq, prelude::*, sync::SpinLockIrq};

/// How many notes are kept.
const SLOTS: usize = 64;

struct Ring {
    slots: [u32; SLOTS],
    /// Index of the oldest note.
    head: usize,
    len: usize,
}

/// The notes of regions read while not copied.
#[pin_data]
pub(crate) struct ReadHints {
    #[pin]
    ring: SpinLockIrq<Ring>,
}

impl ReadHints {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            ring <- new_spinlock_irq!(
                Ring { slots: [0; SLOTS], head: 0, len: 0 },
                "clone_read_hints"
            ),
        })
    }

    /// Notes region `r` (unless it is the newest note already: sequential reads within a
    /// region note it once).
    pub(crate) fn note(&self, r: u32) {
        let mut ring = self.ring.lock();
        let len = ring.len;
        if len > 0 && ring.slots.get((ring.head + len - 1) % SLOTS) == Some(&r) {
            return;
        }
        if len == SLOTS {
            ring.head = (ring.head + 1) % SLOTS;
            ring.len -= 1;
        }
        let tail = (ring.head + ring.len) % SLOTS;
        if let Some(slot) = ring.slots.get_mut(tail) {
            *slot = r;
            ring.len += 1;
        }
    }

    /// Takes the oldest note.
    pub(crate) fn take(&self) -> Option<u32> {
        let mut ring = self.ring.lock();
        if ring.len == 0 {
            return None;
        }
        let r = ring.slots.get(ring.head).copied();
        ring.head = (ring.head + 1) % SLOTS;
        ring.len -= 1;
        r
    }
}

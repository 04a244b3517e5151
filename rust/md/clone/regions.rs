// SPDX-License-Identifier: GPL-2.0

//! Regions being copied or overwritten, and the writes waiting for them.
//!
//! A region has a record here from the moment something starts to fill it on the destination
//! (a copy, or a write covering it whole) until that completes and the region is marked
//! copied. Writes that arrive meanwhile wait on the record, so each region is filled once and
//! no write lands on the destination before the copy that would overwrite it.
//!
//! # Locking and contexts
//!
//! `map` (process context) adds records and waiting bios; a whole-region write's completion
//! (interrupt context) and kcopyd's completion (its thread) remove them; the worker starts the
//! queued copies. All under one spinlock taken with interrupts off. Nodes are allocated before
//! the lock is taken, so nothing under it allocates or sleeps. A region is looked up in the
//! copied bitmap under the same lock before a record is made, and records are removed only
//! after the region is marked, so a write never waits on a region that is already copied.

use crate::PerBio;
use kernel::{
    alloc::flags::GFP_NOIO,
    block::bio::{Bio, BioList},
    new_spinlock_irq,
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::SpinLockIrq,
};

/// What is filling a region.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A write waits; the worker has yet to start the copy.
    Queued,
    /// A kcopyd job copies it.
    Copying,
    /// A write covering the whole region is on its way to the destination.
    Overwriting,
    /// Its copy, in a batch, failed; the worker must copy it again on its own. It is still
    /// counted as being copied.
    Retry,
}

struct Record {
    phase: Phase,
    waiting: BioList<PerBio>,
}

struct Table {
    records: RBTree<u32, Record>,
    /// Records in [`Phase::Queued`] or [`Phase::Retry`].
    queued: usize,
}

/// What happened to a write to a region that was not copied when `map` looked.
pub(crate) enum Parked {
    /// The region is copied now: send the write to the destination.
    Copied(Bio<PerBio>),
    /// The write waits for the region's copy or overwrite.
    Waiting,
    /// The write covers the region, which nothing else is filling: it is now the region's
    /// overwrite; send it to the destination and mark the region when it completes.
    Overwrite(Bio<PerBio>),
    /// The write waits for a copy that the worker must start.
    Queued,
    /// No memory for a record.
    NoMemory(Bio<PerBio>),
}

/// The table of regions being filled.
#[pin_data]
pub(crate) struct InProgress {
    #[pin]
    table: SpinLockIrq<Table>,
}

impl InProgress {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            table <- new_spinlock_irq!(
                Table { records: RBTree::new(), queued: 0 },
                "clone_regions"
            ),
        })
    }

    /// Parks a write to region `r`, which `map` found not copied. `whole` says whether the write
    /// may fill the region by itself; `copied` tells whether the region is copied by now.
    /// Process context (allocates).
    pub(crate) fn park_write(
        &self,
        r: u32,
        bio: Bio<PerBio>,
        whole: bool,
        copied: impl Fn(u32) -> bool,
    ) -> Parked {
        let Ok(node) = RBTreeNodeReservation::new(GFP_NOIO) else {
            return Parked::NoMemory(bio);
        };
        let mut t = self.table.lock();
        if copied(r) {
            return Parked::Copied(bio);
        }
        if let Some(rec) = t.records.get_mut(&r) {
            rec.waiting.push(bio);
            return Parked::Waiting;
        }
        if whole {
            let rec = Record {
                phase: Phase::Overwriting,
                waiting: BioList::new(),
            };
            t.records.insert(node.into_node(r, rec));
            return Parked::Overwrite(bio);
        }
        let mut waiting = BioList::new();
        waiting.push(bio);
        t.records.insert(node.into_node(
            r,
            Record {
                phase: Phase::Queued,
                waiting,
            },
        ));
        t.queued += 1;
        Parked::Queued
    }

    /// Claims up to `max` regions from `first` on, below `end`, for a background copy: stops
    /// at the first region that is copied or has a record. Returns how many were claimed
    /// (0..=max). Process context (allocates).
    pub(crate) fn claim_run(
        &self,
        first: u32,
        max: u32,
        end: u32,
        copied: impl Fn(u32) -> bool,
    ) -> u32 {
        let max = max.min(end.saturating_sub(first));
        // The nodes first, outside the lock; then one pass under it.
        let mut nodes = KVec::new();
        if nodes.reserve(max as usize, GFP_NOIO).is_err() {
            return 0;
        }
        for _ in 0..max {
            let Ok(n) = RBTreeNodeReservation::new(GFP_NOIO) else {
                break;
            };
            if nodes.push(n, GFP_NOIO).is_err() {
                break;
            }
        }
        let mut claimed = 0u32;
        // Unused nodes are freed after the lock is released (`nodes` outlives `t`).
        let mut nodes = nodes.into_iter();
        let mut t = self.table.lock();
        while let Some(r) = first.checked_add(claimed) {
            if claimed >= max || copied(r) || t.records.get(&r).is_some() {
                break;
            }
            let Some(node) = nodes.next() else {
                break;
            };
            let rec = Record {
                phase: Phase::Copying,
                waiting: BioList::new(),
            };
            t.records.insert(node.into_node(r, rec));
            claimed += 1;
        }
        claimed
    }

    /// Calls `f(base, mask)` for each chunk of up to 64 regions of `first..first + count`,
    /// bit `i` of `mask` set if nothing is filling region `base + i`, under the lock (so no
    /// copy can be claimed for them meanwhile); the lock is taken once per chunk.
    /// For discards: a region being copied must not be marked before its copy lands, or a
    /// write made after the discard would go to the destination and be overwritten by it.
    pub(crate) fn for_each_idle_chunk(&self, first: u32, count: u32, mut f: impl FnMut(u32, u64)) {
        let end = first.saturating_add(count);
        let mut base = first;
        while base < end {
            let chunk_end = base.saturating_add(64).min(end);
            let t = self.table.lock();
            let mut mask = 0u64;
            for r in base..chunk_end {
                if t.records.get(&r).is_none() {
                    mask |= 1u64 << (r - base);
                }
            }
            f(base, mask);
            drop(t);
            base = chunk_end;
        }
    }

    /// Takes the regions whose copy waits to be started, marking them as copying; at most
    /// `out`'s spare capacity. Each comes with whether it is already counted as being copied
    /// (a retry).
    pub(crate) fn take_queued(&self, out: &mut KVec<(u32, bool)>) {
        let mut t = self.table.lock();
        let mut taken = 0;
        for (r, rec) in t.records.iter_mut() {
            if out.len() == out.capacity() {
                break;
            }
            let retry = match rec.phase {
                Phase::Queued => false,
                Phase::Retry => true,
                _ => continue,
            };
            if out.push((*r, retry), GFP_NOIO).is_ok() {
                rec.phase = Phase::Copying;
                taken += 1;
            }
        }
        t.queued = t.queued.saturating_sub(taken);
    }

    /// Regions `first..first + count`, copied in one batch that failed, are to be copied
    /// again one by one by the worker (their records and waiting writes stay).
    pub(crate) fn retry_singly(&self, first: u32, count: u32) {
        let mut t = self.table.lock();
        let mut n = 0;
        for r in first..first.saturating_add(count) {
            if let Some(rec) = t.records.get_mut(&r) {
                rec.phase = Phase::Retry;
                n += 1;
            }
        }
        t.queued += n;
    }

    /// How many regions wait for their copy to be started.
    pub(crate) fn nr_queued(&self) -> usize {
        self.table.lock().queued
    }

    /// Removes region `r`'s record (its copy or overwrite is over) and moves the writes that
    /// waited for it to `to`. Any context.
    pub(crate) fn finish(&self, r: u32, to: &mut BioList<PerBio>) {
        self.finish_run(r, 1, to);
    }

    /// [`InProgress::finish`] for regions `first..first + count`, under one lock.
    pub(crate) fn finish_run(&self, first: u32, count: u32, to: &mut BioList<PerBio>) {
        let mut t = self.table.lock();
        for r in first..first.saturating_add(count) {
            if let Some(mut rec) = t.records.remove(&r) {
                if matches!(rec.phase, Phase::Queued | Phase::Retry) {
                    t.queued = t.queued.saturating_sub(1);
                }
                to.append(&mut rec.waiting);
            }
        }
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The state of every region: copied or not ([`Marks`], in `marks`), and the regions being
//! filled on the destination with the writes waiting for them (the table here). [`Regions`]
//! owns both, and with them the invariant the I/O path rests on:
//!
//! **A write never waits on a region that is copied, and never lands before a copy that
//! would overwrite it.** So: a region is tested for copied under the table's lock before a
//! record is made for it; a region is marked copied *before* its record is removed (so a
//! write that finds no record finds the region copied); a discard marks only regions with no
//! record, under the table's lock (a copy in flight would land after it and overwrite writes
//! made after the discard). Every method that changes both does it in that order, inside;
//! nothing outside this module can mark a region or remove a record. (Loading the metadata,
//! `Marks::load`, sets copied bits from outside: before the first resume, when no bio is in
//! flight and no region has a record.)
//!
//! A region has a record from the moment something starts to fill it on the destination (a
//! copy, or a write covering it whole) until that completes and the region is marked copied.
//! Writes that arrive meanwhile wait on the record, so each region is filled once.
//!
//! # Locking and contexts
//!
//! `map` (process context) adds records and waiting bios; a whole-region write's completion
//! (interrupt context) and kcopyd's completion (its thread) remove them; the worker starts the
//! queued copies. The table is under one spinlock taken with interrupts off; nodes are
//! allocated before it is taken, so nothing under it allocates or sleeps. The regions whose
//! copy waits to be started are also kept in a tree of their own, so that the worker takes
//! them without walking every record with interrupts off; each record carries the node it
//! needs there, allocated with it.
//!
//! Lock order: the table's lock, then the marks' (`Marks::state`, also interrupts off); they
//! nest only in [`Regions::mark_idle`]. Reading the copied map takes no lock (RCU).

mod marks;

pub(crate) use marks::{Marks, Yielder};

use crate::{failures::View, PerBio};
use kernel::{
    alloc::flags::{GFP_NOIO, GFP_NOWAIT},
    bitmap::WORD_BITS,
    block::bio::{Bio, BioList},
    new_spinlock_irq,
    prelude::*,
    rbtree::{RBTree, RBTreeNode, RBTreeNodeReservation},
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
    /// The node that puts the region in [`Table::queue`] (in it while the phase is
    /// [`Phase::Queued`] or [`Phase::Retry`], here otherwise).
    queue_node: Option<RBTreeNodeReservation<u32, ()>>,
}

impl Record {
    fn new(phase: Phase, waiting: BioList<PerBio>, node: QueueNode) -> Self {
        Self {
            phase,
            waiting,
            queue_node: Some(node),
        }
    }
}

type QueueNode = RBTreeNodeReservation<u32, ()>;

struct Table {
    records: RBTree<u32, Record>,
    /// How many records there are (only [`Table::insert_record`] and `remove_run` change
    /// `records`, and keep it).
    nr_records: usize,
    /// The regions whose record is in [`Phase::Queued`] or [`Phase::Retry`].
    queue: RBTree<u32, ()>,
    /// How many they are.
    queued: usize,
}

impl Table {
    /// Adds the record `node` (for a region that has none).
    fn insert_record(&mut self, node: RBTreeNode<u32, Record>) {
        // (A region has at most one record: the callers looked it up under this lock.)
        if self.records.insert(node).is_none() {
            self.nr_records += 1;
        }
    }

    /// Puts region `r`, whose record is `rec`, in the queue (its phase set by the caller).
    fn enqueue(queue: &mut RBTree<u32, ()>, queued: &mut usize, r: u32, rec: &mut Record) {
        if let Some(node) = rec.queue_node.take() {
            queue.insert(node.into_node(r, ()));
            *queued += 1;
        }
    }
}

/// Nodes for a new record and its place in the queue, allocated before the table's lock.
struct Nodes {
    record: RBTreeNodeReservation<u32, Record>,
    queue: QueueNode,
}

impl Nodes {
    fn new() -> Option<Self> {
        Some(Self {
            record: RBTreeNodeReservation::new(GFP_NOIO).ok()?,
            queue: RBTreeNodeReservation::new(GFP_NOIO).ok()?,
        })
    }
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

/// A copy that waits to be started (a write waits for it, or it is a region of a failed
/// batch, to copy again alone).
#[derive(Clone, Copy)]
pub(crate) enum QueuedCopy {
    /// A write waits for region `.0`; not counted among the copies in flight yet.
    First(u32),
    /// Region `.0` of a failed batch: still counted among the copies in flight.
    Retry(u32),
}

impl QueuedCopy {
    pub(crate) fn region(self) -> u32 {
        match self {
            Self::First(r) | Self::Retry(r) => r,
        }
    }
}

/// The regions' state (see the module documentation).
#[pin_data]
pub(crate) struct Regions {
    #[pin]
    marks: Marks,
    #[pin]
    table: SpinLockIrq<Table>,
}

impl Regions {
    /// `nr_regions` regions, none copied, none being filled.
    pub(crate) fn new(nr_regions: u32) -> Result<impl PinInit<Self, Error>> {
        let marks = Marks::new(nr_regions)?;
        Ok(try_pin_init!(Self {
            marks <- marks,
            table <- new_spinlock_irq!(
                Table {
                    records: RBTree::new(),
                    nr_records: 0,
                    queue: RBTree::new(),
                    queued: 0,
                },
                "clone_regions"
            ),
        }? Error))
    }

    /// The copied map: what is copied, and its commits.
    pub(crate) fn marks(&self) -> &Marks {
        &self.marks
    }

    /// Parks a write to region `r`, which `map` found not copied. `whole` says whether the write
    /// may fill the region by itself. Process context (allocates).
    pub(crate) fn park_write(&self, r: u32, bio: Bio<PerBio>, whole: bool) -> Parked {
        let Some(nodes) = Nodes::new() else {
            return Parked::NoMemory(bio);
        };
        let mut t = self.table.lock();
        if self.marks.is_copied(r) {
            return Parked::Copied(bio);
        }
        if let Some(rec) = t.records.get_mut(&r) {
            rec.waiting.push(bio);
            return Parked::Waiting;
        }
        if whole {
            let rec = Record::new(Phase::Overwriting, BioList::new(), nodes.queue);
            t.insert_record(nodes.record.into_node(r, rec));
            return Parked::Overwrite(bio);
        }
        let mut waiting = BioList::new();
        waiting.push(bio);
        let mut rec = Record::new(Phase::Queued, waiting, nodes.queue);
        let Table { queue, queued, .. } = &mut *t;
        Table::enqueue(queue, queued, r, &mut rec);
        t.insert_record(nodes.record.into_node(r, rec));
        Parked::Queued
    }

    /// Claims up to `max` regions from `first` on, below `end`, for a background copy: stops
    /// at the first region that is copied, given up (`failed`) or has a record. Returns how
    /// many were claimed (0..=max). Process context (allocates).
    pub(crate) fn claim_run(&self, first: u32, max: u32, end: u32, failed: &View) -> u32 {
        let max = max.min(end.saturating_sub(first));
        // The nodes first, outside the lock; then one pass under it.
        let mut nodes = KVec::new();
        if nodes.reserve(max as usize, GFP_NOIO).is_err() {
            return 0;
        }
        for _ in 0..max {
            let Some(n) = Nodes::new() else {
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
            if claimed >= max
                || self.marks.is_copied(r)
                || failed.given_up(r)
                || t.records.get(&r).is_some()
            {
                break;
            }
            let Some(n) = nodes.next() else {
                break;
            };
            let rec = Record::new(Phase::Copying, BioList::new(), n.queue);
            t.insert_record(n.record.into_node(r, rec));
            claimed += 1;
        }
        claimed
    }

    /// Marks copied the regions of `first..first + count` that nothing is filling (a
    /// discard's), a word of the copied map (64 regions) at a time: each word's regions are
    /// looked up and marked under the table's lock, so no copy can be claimed for them
    /// meanwhile (no lookups at all while the table holds no record, as when nothing is being
    /// copied). A region being copied is left alone: marked before its copy lands, a write
    /// made after the discard would go to the destination and be overwritten by that copy.
    /// Returns false if the marks are frozen (nothing can be recorded): regions may be left
    /// unmarked.
    ///
    /// # Context
    ///
    /// Process context (the worker's): offers the CPU every [`marks::YIELD_WORDS`] words (a
    /// whole-device discard may cover 2^31 regions).
    pub(crate) fn mark_idle(&self, first: u32, count: u32) -> bool {
        let end = first.saturating_add(count);
        let mut base = first;
        let mut all = true;
        let mut yielder = Yielder::default();
        while base < end {
            let w = base / WORD_BITS;
            let chunk_end = w.saturating_add(1).saturating_mul(WORD_BITS).min(end);
            // Bits `base % 64 .. chunk_end - 64 * w` of word `w`: below 64 bits wide.
            let span = chunk_end - base;
            let run = if span >= WORD_BITS {
                u64::MAX
            } else {
                (1u64 << span) - 1
            };
            let mut mask = run << (base % WORD_BITS);
            let t = self.table.lock();
            if t.nr_records != 0 {
                for r in base..chunk_end {
                    if t.records.get(&r).is_some() {
                        mask &= !(1u64 << (r % WORD_BITS));
                    }
                }
            }
            // Lock order: the table, then the marks.
            all &= self.marks.mark_word(w, mask);
            drop(t);
            base = chunk_end;
            yielder.word();
        }
        all
    }

    /// The write that was filling region `r` whole completed, `landed` if it succeeded: the
    /// region is marked copied (if it landed), then its record removed, and the writes that
    /// waited for it move to `to`. Returns whether the region is recorded as copied (false if
    /// it did not land, or once nothing can be recorded). Any context.
    pub(crate) fn overwrite_done(&self, r: u32, landed: bool, to: &mut BioList<PerBio>) -> bool {
        let recorded = landed && self.marks.mark(r) != marks::Mark::Frozen;
        self.remove_run(r, 1, to);
        recorded
    }

    /// The copy of regions `first..first + count` completed, `ok` if it succeeded: the regions
    /// are marked copied (if it did), then their records removed, and the writes that waited
    /// for them move to `to`. Returns whether they are recorded as copied (false if the copy
    /// failed, or once nothing can be recorded). kcopyd's thread.
    pub(crate) fn copy_done(
        &self,
        first: u32,
        count: u32,
        ok: bool,
        to: &mut BioList<PerBio>,
    ) -> bool {
        let recorded = ok && self.marks.mark_run(first, count);
        self.remove_run(first, count, to);
        recorded
    }

    /// The copy claimed for regions `first..first + count` could not start: their records go,
    /// unmarked, and the writes that waited for them move to `to` (to be failed).
    pub(crate) fn abandon(&self, first: u32, count: u32, to: &mut BioList<PerBio>) {
        self.remove_run(first, count, to);
    }

    /// Takes the regions whose copy waits to be started, in region order, recording them as
    /// copying; at most `out`'s spare capacity (it never grows here). Each costs a lookup:
    /// the records of the copies in flight are not walked.
    pub(crate) fn take_queued(&self, out: &mut KVec<QueuedCopy>) {
        let mut t = self.table.lock();
        let Table {
            records,
            queue,
            queued,
            ..
        } = &mut *t;
        while out.len() < out.capacity() {
            let Some(&r) = queue.keys().next() else {
                break;
            };
            let Some(node) = queue.remove_node(&r) else {
                break;
            };
            *queued = queued.saturating_sub(1);
            // (A region is in the queue only while its record is queued: `remove_run` takes it
            // out with its record.)
            let Some(rec) = records.get_mut(&r) else {
                continue;
            };
            let copy = match rec.phase {
                Phase::Queued => QueuedCopy::First(r),
                Phase::Retry => QueuedCopy::Retry(r),
                // (Not queued: never so, but its node goes back where a later retry finds it.)
                _ => {
                    rec.queue_node = Some(node.into_reservation());
                    continue;
                }
            };
            // Within the capacity, `push` does not allocate (nor would GFP_NOWAIT sleep).
            if out.push(copy, GFP_NOWAIT).is_err() {
                // (Not there any more: nothing is replaced.)
                let _ = queue.insert(node);
                *queued += 1;
                break;
            }
            rec.phase = Phase::Copying;
            rec.queue_node = Some(node.into_reservation());
        }
    }

    /// Regions `first..first + count`, copied in one batch that failed, are to be copied
    /// again one by one by the worker (their records and waiting writes stay).
    pub(crate) fn retry_singly(&self, first: u32, count: u32) {
        let mut t = self.table.lock();
        let Table {
            records,
            queue,
            queued,
            ..
        } = &mut *t;
        for r in first..first.saturating_add(count) {
            if let Some(rec) = records.get_mut(&r) {
                rec.phase = Phase::Retry;
                Table::enqueue(queue, queued, r, rec);
            }
        }
    }

    /// How many regions wait for their copy to be started.
    pub(crate) fn nr_queued(&self) -> usize {
        self.table.lock().queued
    }

    /// Removes the records of regions `first..first + count` and moves the writes that waited
    /// for them to `to`. Only after they are marked (or when their filling failed).
    fn remove_run(&self, first: u32, count: u32, to: &mut BioList<PerBio>) {
        let mut t = self.table.lock();
        let Table {
            records,
            nr_records,
            queue,
            queued,
        } = &mut *t;
        for r in first..first.saturating_add(count) {
            if let Some(mut rec) = records.remove(&r) {
                *nr_records = nr_records.saturating_sub(1);
                if queue.remove(&r).is_some() {
                    *queued = queued.saturating_sub(1);
                }
                to.append(&mut rec.waiting);
            }
        }
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Which regions are copied, in core, and which of them the next commit must write.
//!
//! # Two-phase commit
//!
//! A region is marked copied once its data is on the destination (a copy or a whole-region
//! write completed). The mark must not reach the on-disk metadata before that data is stable,
//! or a crash would leave a region marked copied whose data was lost in the destination's
//! write cache. So each transaction has its own exact set of newly marked regions, and a
//! commit goes:
//!
//! 1. [`Marks::begin_commit`] closes the set of the current transaction: marks made from now on
//!    go to the other set, for the next commit;
//! 2. the committer flushes the destination: every region in the closed set is now stable;
//! 3. it writes the closed set to the on-disk bitset ([`Marks::drain_closed`]) and commits,
//!    then [`Marks::end_commit`] records that the set is empty again.
//!
//! This is the scheme of the C target (two dirty maps swapped at pre-commit). A set is cleared
//! only once its commit succeeded, so the two sets always hold every mark not on disk.
//!
//! # When nothing can be recorded any more
//!
//! Once a commit fails, no mark can ever reach the disk: [`Marks::freeze`] takes back every
//! mark not on disk (the regions read as not copied again, as they will after a reload) and
//! refuses new ones. A write to the destination that completes afterwards survives a reload
//! only if its region's mark is on disk ([`Marks::survives_reload`]); the caller fails the
//! others, so nothing it acknowledges reads back differently after a reload. (C intends the
//! same when it aborts: it reloads the in-core map from disk.)
//!
//! # Locking and contexts
//!
//! Marks are made from bio completion (hard or soft interrupt), kcopyd's thread and the
//! worker. The copied bitmap is read without a lock (atomic words). Making a mark (copied bit,
//! dirty bits, the changed flag) and switching sets happen under `state`, a spinlock taken with
//! interrupts off, so a mark always lands wholly in one transaction's set. Only the committer
//! (who holds the metadata mutex) reads and clears a closed set.

use crate::bitmap::{AtomicBitmap, WORD_BITS};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::{new_spinlock_irq, prelude::*, sync::SpinLockIrq};

/// One transaction's set of newly copied regions.
struct DirtySet {
    /// One bit per region marked in this transaction.
    regions: AtomicBitmap,
    /// One bit per word of `regions` that has a bit set, so a commit skips clean words.
    words: AtomicBitmap,
}

impl DirtySet {
    fn new(nr_regions: u32) -> Result<Self> {
        let regions = AtomicBitmap::new(nr_regions)?;
        let words = AtomicBitmap::new(regions.nr_words())?;
        Ok(Self { regions, words })
    }

    /// Calls `f` on every region in the set, in order, stopping at its first error; with
    /// `take`, clears what it visits (else the set stays as it is).
    fn walk(&self, take: bool, mut f: impl FnMut(u32) -> Result) -> Result {
        let word = |map: &AtomicBitmap, i| {
            if take {
                map.take_word(i)
            } else {
                map.load_word(i)
            }
        };
        for chunk in 0..self.words.nr_words() {
            let mut words = word(&self.words, chunk);
            while words != 0 {
                let w = chunk * WORD_BITS + words.trailing_zeros();
                words &= words - 1;
                let mut bits = word(&self.regions, w);
                while bits != 0 {
                    f(w * WORD_BITS + bits.trailing_zeros())?;
                    bits &= bits - 1;
                }
            }
        }
        Ok(())
    }
}

/// Which set is open, and whether each holds marks.
struct State {
    current: usize,
    changed: [bool; 2],
    /// Set by [`Marks::freeze`]: no marks any more.
    frozen: bool,
}

/// What [`Marks::mark`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mark {
    /// The region is marked in the open transaction.
    New,
    /// It was copied already.
    Already,
    /// Nothing can be recorded any more ([`Marks::freeze`]): not marked.
    Frozen,
}

/// The in-core region map and its per-transaction dirty sets.
#[pin_data]
pub(crate) struct Marks {
    copied: AtomicBitmap,
    nr_copied: AtomicU64,
    sets: [DirtySet; 2],
    /// `state.frozen`, readable without the lock (set after the marks were taken back).
    frozen: AtomicBool,
    #[pin]
    state: SpinLockIrq<State>,
}

impl Marks {
    /// Marks for `nr_regions` regions, none copied.
    pub(crate) fn new(nr_regions: u32) -> Result<impl PinInit<Self, Error>> {
        let copied = AtomicBitmap::new(nr_regions)?;
        let sets = [DirtySet::new(nr_regions)?, DirtySet::new(nr_regions)?];
        Ok(try_pin_init!(Self {
            copied,
            nr_copied: AtomicU64::new(0),
            sets,
            frozen: AtomicBool::new(false),
            state <- new_spinlock_irq!(
                State { current: 0, changed: [false; 2], frozen: false },
                "clone_marks"
            ),
        }? Error))
    }

    /// The number of regions.
    pub(crate) fn nr_regions(&self) -> u32 {
        self.copied.len()
    }

    /// Whether region `r` is copied.
    pub(crate) fn is_copied(&self, r: u32) -> bool {
        self.copied.test(r)
    }

    /// Whether regions `first..first + count` are all copied.
    pub(crate) fn all_copied(&self, first: u32, count: u32) -> bool {
        self.copied.all_set(first, count)
    }

    /// The first region at or after `from` that is not copied and not set in
    /// `skip(word index)` (a word of another region bitmap).
    pub(crate) fn next_uncopied_skipping(
        &self,
        from: u32,
        skip: impl Fn(u32) -> u64,
    ) -> Option<u32> {
        self.copied.next_clear_with(from, skip)
    }

    /// How many regions are copied.
    pub(crate) fn nr_copied(&self) -> u64 {
        self.nr_copied.load(Ordering::Acquire)
    }

    /// Whether every region is copied.
    pub(crate) fn done(&self) -> bool {
        self.nr_copied() >= u64::from(self.nr_regions())
    }

    /// Forgets everything, to load the metadata again (before the first resume: no I/O yet).
    pub(crate) fn reset(&self) {
        let mut st = self.state.lock();
        self.copied.clear_all();
        self.nr_copied.store(0, Ordering::Release);
        for set in &self.sets {
            set.regions.clear_all();
            set.words.clear_all();
        }
        st.changed = [false; 2];
        st.frozen = false;
        self.frozen.store(false, Ordering::Release);
    }

    /// Records that region `r` was copied by an earlier transaction (loading the metadata).
    pub(crate) fn load(&self, r: u32) {
        if self.copied.set(r) {
            self.nr_copied.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Marks region `r` copied in the open transaction. Any context.
    pub(crate) fn mark(&self, r: u32) -> Mark {
        let mut st = self.state.lock();
        self.mark_locked(&mut st, r)
    }

    /// Marks regions `first..first + count` copied (a copy job's), under one lock. Returns
    /// false, marking nothing, once frozen.
    pub(crate) fn mark_run(&self, first: u32, count: u32) -> bool {
        let mut st = self.state.lock();
        if st.frozen {
            return false;
        }
        for r in first..first.saturating_add(count) {
            self.mark_locked(&mut st, r);
        }
        true
    }

    fn mark_locked(&self, st: &mut State, r: u32) -> Mark {
        if st.frozen {
            return Mark::Frozen;
        }
        if !self.copied.set(r) {
            return Mark::Already;
        }
        self.nr_copied.fetch_add(1, Ordering::AcqRel);
        let i = st.current;
        if let Some(set) = self.sets.get(i) {
            set.regions.set(r);
            set.words.set(r / WORD_BITS);
        }
        if let Some(c) = st.changed.get_mut(i) {
            *c = true;
        }
        Mark::New
    }

    /// Whether a write to region `r` completing now survives a reload: always, until frozen
    /// (its region's mark will be committed before any flush completes); after, only if the
    /// mark is on disk (every mark left is). Any context.
    pub(crate) fn survives_reload(&self, r: u32) -> bool {
        !self.frozen.load(Ordering::Acquire) || self.copied.test(r)
    }

    /// Nothing can be committed any more: takes back every mark not on disk (both sets) and
    /// refuses marks from now on. Returns how many regions read as not copied again. Only the
    /// committer's side calls it (holding the metadata mutex, so no commit runs). The time
    /// with interrupts off is one pass over the two sets' dirty words.
    pub(crate) fn freeze(&self) -> u64 {
        let mut st = self.state.lock();
        let mut taken = 0u64;
        for set in &self.sets {
            let _ = set.walk(true, |r| {
                taken += u64::from(self.copied.clear(r));
                Ok(())
            });
        }
        self.nr_copied.fetch_sub(taken, Ordering::AcqRel);
        st.changed = [false; 2];
        st.frozen = true;
        self.frozen.store(true, Ordering::Release);
        taken
    }

    /// Whether any marks are not on disk: in the open set, or in a closed set whose commit has
    /// not ended. (A FUA write must wait for both: its region's mark may be in the set being
    /// committed right now.)
    pub(crate) fn changed(&self) -> bool {
        let st = self.state.lock();
        st.changed.iter().any(|&c| c)
    }

    /// Phase 1: closes the open transaction's set and opens the other. Returns the closed set's
    /// index, or `None` if it has no marks. Only the committer calls this, and only after the
    /// previous closed set was drained and ended.
    pub(crate) fn begin_commit(&self) -> Option<usize> {
        let mut st = self.state.lock();
        let closed = st.current;
        if !st.changed.get(closed).copied().unwrap_or(false) {
            return None;
        }
        st.current = 1 - closed;
        Some(closed)
    }

    /// Phase 3: calls `f` on every region of the closed set `closed`, which stays as it is
    /// until [`Marks::end_commit`]. Stops at the first error (the caller aborts the
    /// transaction; the set still holds all its marks, for [`Marks::freeze`]).
    pub(crate) fn drain_closed(&self, closed: usize, f: impl FnMut(u32) -> Result) -> Result {
        self.sets.get(closed).ok_or(EINVAL)?.walk(false, f)
    }

    /// Records that the closed set `closed` was committed, and clears it. (Marks go to the
    /// open set meanwhile: nothing else writes the closed one.)
    pub(crate) fn end_commit(&self, closed: usize) {
        if let Some(set) = self.sets.get(closed) {
            let _ = set.walk(true, |_| Ok(()));
        }
        let mut st = self.state.lock();
        if let Some(c) = st.changed.get_mut(closed) {
            *c = false;
        }
    }
}

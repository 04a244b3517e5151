// SPDX-License-Identifier: GPL-2.0

//! Which regions are copied, in core, and which of them the next commit must write.
//!
//! # Commit order
//!
//! A region is marked copied once its data is on the destination (a copy or a whole-region
//! write completed). The mark must not reach the on-disk metadata before that data is stable,
//! or a crash would leave a region marked copied whose data was lost in the destination's
//! write cache. Each transaction keeps the set of *words* of the copied map it changed (one
//! bit per 64 regions), and a commit goes:
//!
//! 1. [`Marks::begin_commit`] closes the set of the current transaction: marks made from now on
//!    go to the other set, for the next commit;
//! 2. the committer writes the closed set's words, as the copied map holds them now, to the
//!    on-disk bitset ([`Marks::drain_closed`]);
//! 3. it flushes the destination, then commits the metadata, and [`Marks::end_commit`]
//!    records that the set is empty again.
//!
//! Step 2 may write marks made after step 1 (they share a word with a mark of the closed
//! set): that is safe because a bit is set only after its region's data landed, and the flush
//! of step 3 is issued after the bit was read, so it covers that data too. Writing first and
//! flushing second is what lets a set be a word map instead of a region map: the C target
//! flushes first, so it must keep each transaction's exact regions (two more bits per
//! region). Here the in-core map costs one bit per region plus 1/32 of a bit.
//!
//! # When nothing can be recorded any more
//!
//! Once a commit fails, no mark can ever reach the disk: [`Marks::freeze`] refuses new marks
//! and takes back every mark not on disk (each dirty word is checked against the metadata
//! opened again at its last commit): those regions read as not copied again, as they will
//! after a reload. A write to the destination that completes afterwards survives a reload
//! only if its region's mark is on disk ([`Marks::survives_reload`]); the caller fails the
//! others, so nothing it acknowledges reads back differently after a reload. (C intends the
//! same when it aborts: it reloads the in-core map from disk.)
//!
//! # Once every region is copied
//!
//! When every region is copied and every mark is on disk, nothing can change any more: the
//! committer releases the maps ([`Marks::release_if_done`]) and every region reads as copied
//! from then on, for as long as the table lives (C keeps its bitmaps, its known issue 2). The
//! maps sit in an [`RcuBox`]: readers in `map` and bio completion may still be reading them,
//! so they are freed after an RCU grace period.
//!
//! # Locking and contexts
//!
//! Marks are made from bio completion (hard or soft interrupt), kcopyd's thread and the
//! worker. The copied bitmap and the dirty words are read without a lock (atomic words),
//! under an RCU read-side guard (they may be released); the committer's side, which may sleep
//! while it walks them (it writes the metadata), holds the box's owner mutex instead.
//! Making a mark (copied bit, dirty word, the changed flag) and switching sets happen under
//! `state`, a spinlock taken with interrupts off, so a mark always lands wholly in one
//! transaction's set; it is held for a bounded time (a mark, at most 64 marks, or a switch).
//! Only the committer (who holds the metadata mutex) reads and clears a closed set.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::bitmap::{AtomicBitmap, WORD_BITS};
use kernel::{
    new_spinlock_irq,
    prelude::*,
    sync::{
        rcu::{self, RcuBox},
        SpinLockIrq,
    },
    task::cond_resched,
};

/// Words of the copied map between two offers of the CPU (`cond_resched`) in the loops
/// over it that may sleep (65536 regions).
pub(crate) const YIELD_WORDS: u32 = 1024;

/// Counts the words a long loop went through and offers the CPU every [`YIELD_WORDS`] of them
/// (up to 2^25 words at the largest size).
///
/// # Context
///
/// Process context, holding no spinlock: [`Yielder::word`] may sleep.
#[derive(Default)]
pub(crate) struct Yielder(u32);

impl Yielder {
    /// One more word.
    pub(crate) fn word(&mut self) {
        self.0 = self.0.wrapping_add(1);
        if self.0 % YIELD_WORDS == 0 {
            cond_resched();
        }
    }
}

/// One transaction's set: the words of the copied map it changed.
struct DirtyWords {
    /// One bit per word of the copied map that has a mark of this transaction.
    words: AtomicBitmap,
}

impl DirtyWords {
    fn new(nr_regions: u32) -> Result<Self> {
        Ok(Self {
            words: AtomicBitmap::new(nr_regions.div_ceil(WORD_BITS))?,
        })
    }

    /// Calls `f` on every word index in the set, in order, stopping at its first error; with
    /// `take`, clears what it visits (else the set stays as it is).
    fn walk(&self, take: bool, mut f: impl FnMut(u32) -> Result) -> Result {
        for chunk in 0..self.words.nr_words() {
            let mut words = if take {
                self.words.take_word(chunk)
            } else {
                self.words.load_word(chunk)
            };
            while words != 0 {
                f(chunk * WORD_BITS + words.trailing_zeros())?;
                words &= words - 1;
            }
        }
        Ok(())
    }
}

impl DirtyWords {
    /// How many words from word `first` on the set holds (one pass over its bits).
    fn count_from(&self, first: u32) -> u32 {
        let mut n = 0u32;
        for chunk in first / WORD_BITS..self.words.nr_words() {
            let mut words = self.words.load_word(chunk);
            if chunk == first / WORD_BITS {
                words &= !0u64 << (first % WORD_BITS);
            }
            n = n.saturating_add(words.count_ones());
        }
        n
    }
}

/// A commit rewrites the whole on-disk map ([`Marks::dense`]) only if it has at least this
/// many words (8 array blocks of the on-disk bitset)...
const DENSE_MIN_WORDS: u32 = 8 * 509;
/// ... and if the commit changed at least one word in this many: writing a word costs a btree
/// update, rewriting the map costs about as much per array block of 509 words.
const DENSE_RATIO: u32 = 64;

/// Which set is open, and whether each holds marks.
struct State {
    current: usize,
    changed: [bool; 2],
    /// Set by [`Marks::freeze`]: no marks any more.
    frozen: bool,
}

/// What [`Marks::mark`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Mark {
    /// The region is marked in the open transaction.
    New,
    /// It was copied already.
    Already,
    /// Nothing can be recorded any more ([`Marks::freeze`]): not marked.
    Frozen,
}

/// A set closed by [`Marks::begin_commit`], for the commit to write
/// ([`Marks::drain_closed`]) and end ([`Marks::end_commit`], which consumes it). Only
/// `begin_commit` makes one.
pub(crate) struct ClosedSet(usize);

/// The maps, released together once every region is copied and on disk.
struct Maps {
    copied: AtomicBitmap,
    sets: [DirtyWords; 2],
}

impl Maps {
    /// Bytes of memory they take.
    fn bytes(&self) -> u64 {
        self.sets
            .iter()
            .fold(self.copied.bytes(), |n, set| n + set.words.bytes())
    }
}

/// The in-core region map and its per-transaction dirty sets.
#[pin_data]
pub(crate) struct Marks {
    #[pin]
    maps: RcuBox<Maps>,
    nr_regions: u32,
    nr_copied: AtomicU64,
    /// `state.frozen`, readable without the lock (set with it, before the marks not on disk
    /// are taken back: [`Marks::survives_reload`] reads it with the dirty words).
    frozen: AtomicBool,
    #[pin]
    state: SpinLockIrq<State>,
}

impl Marks {
    /// Marks for `nr_regions` regions, none copied.
    pub(crate) fn new(nr_regions: u32) -> Result<impl PinInit<Self, Error>> {
        let maps = KBox::new(
            Maps {
                copied: AtomicBitmap::new(nr_regions)?,
                sets: [DirtyWords::new(nr_regions)?, DirtyWords::new(nr_regions)?],
            },
            GFP_KERNEL,
        )?;
        Ok(try_pin_init!(Self {
            maps <- RcuBox::new(maps),
            nr_regions,
            nr_copied: AtomicU64::new(0),
            frozen: AtomicBool::new(false),
            state <- new_spinlock_irq!(
                State { current: 0, changed: [false; 2], frozen: false },
                "clone_marks"
            ),
        }? Error))
    }

    /// The number of regions.
    pub(crate) fn nr_regions(&self) -> u32 {
        self.nr_regions
    }

    /// Whether region `r` is copied.
    pub(crate) fn is_copied(&self, r: u32) -> bool {
        let g = rcu::read_lock();
        // (Not `Option::is_none_or`, newer than 6.12's minimum Rust.)
        !matches!(self.maps.get(&g), Some(m) if !m.copied.test_bit(r))
    }

    /// Whether regions `first..first + count` are all copied.
    pub(crate) fn all_copied(&self, first: u32, count: u32) -> bool {
        let g = rcu::read_lock();
        !matches!(self.maps.get(&g), Some(m) if !m.copied.all_set(first, count))
    }

    /// The first region at or after `from` that is not copied and not set in
    /// `skip(word index)` (a word of another region bitmap).
    pub(crate) fn next_uncopied_skipping(
        &self,
        from: u32,
        skip: impl Fn(u32) -> u64,
    ) -> Option<u32> {
        let g = rcu::read_lock();
        self.maps.get(&g)?.copied.next_zero_bit_with(from, skip)
    }

    /// How many regions are copied.
    pub(crate) fn nr_copied(&self) -> u64 {
        self.nr_copied.load(Ordering::Acquire)
    }

    /// Whether every region is copied.
    pub(crate) fn done(&self) -> bool {
        self.nr_copied() >= u64::from(self.nr_regions())
    }

    /// Forgets everything, to load the metadata again (before the first resume, or for the
    /// status of a table never resumed: no bio has been mapped, so nothing marks meanwhile).
    /// The maps (up to 2^31 bits) are cleared outside the lock, so the time with interrupts
    /// off stays that of resetting the flags. Released maps stay released: every region was
    /// copied and on disk, and the metadata about to be loaded says so.
    pub(crate) fn reset(&self) {
        let owner = self.maps.owner();
        let Some(m) = owner.get() else {
            return;
        };
        {
            let mut st = self.state.lock();
            st.changed = [false; 2];
            st.frozen = false;
        }
        self.frozen.store(false, Ordering::Release);
        m.copied.clear_all();
        self.nr_copied.store(0, Ordering::Release);
        for set in &m.sets {
            set.words.clear_all();
        }
    }

    /// Bytes of memory the in-core maps take (the copied map and the two sets; 0 once
    /// released).
    pub(crate) fn bytes(&self) -> u64 {
        let g = rcu::read_lock();
        self.maps.get(&g).map_or(0, Maps::bytes)
    }

    /// Records that the regions of the bits `bits` of word `w` (regions `64 * w + i`) were
    /// copied by an earlier transaction (loading the metadata, a word at a time).
    pub(crate) fn load_word(&self, w: u32, bits: u64) {
        if bits == 0 {
            return;
        }
        let g = rcu::read_lock();
        if let Some(m) = self.maps.get(&g) {
            let new = m.copied.or_word(w, bits);
            self.nr_copied
                .fetch_add(u64::from(new.count_ones()), Ordering::AcqRel);
        }
    }

    /// Releases the maps if every region is copied and every mark is on disk (nothing can
    /// change any more: see the module's opening). Returns the bytes freed. The committer's,
    /// after a commit: process context, sleeps (an RCU grace period).
    pub(crate) fn release_if_done(&self) -> u64 {
        let owner = self.maps.owner();
        {
            let st = self.state.lock();
            if st.frozen || st.changed.iter().any(|&c| c) || !self.done() {
                return 0;
            }
        }
        // Every bit is set: a mark from now on finds its bit set and changes nothing.
        let freed = owner.get().map_or(0, Maps::bytes);
        drop(owner.retire());
        freed
    }

    /// Marks region `r` copied in the open transaction. Any context.
    pub(super) fn mark(&self, r: u32) -> Mark {
        let mut st = self.state.lock();
        self.mark_locked(&mut st, r)
    }

    /// Marks regions `first..first + count` copied (a copy job's), under one lock. Returns
    /// false, marking nothing, once frozen.
    pub(super) fn mark_run(&self, first: u32, count: u32) -> bool {
        let mut st = self.state.lock();
        if st.frozen {
            return false;
        }
        for r in first..first.saturating_add(count) {
            self.mark_locked(&mut st, r);
        }
        true
    }

    /// Marks the regions of the bits `bits` of word `w` (regions `64 * w + i`) copied (a
    /// discard's, a word at a time: one atomic or, one count), under one lock. Regions past
    /// the end are left alone. Returns false, marking nothing, once frozen.
    pub(super) fn mark_word(&self, w: u32, bits: u64) -> bool {
        let mut st = self.state.lock();
        if st.frozen {
            return false;
        }
        self.mark_word_locked(&mut st, w, bits);
        true
    }

    /// Marks the regions of the bits `bits` of word `w` in the open transaction (not frozen:
    /// the caller checked); returns the bits newly marked (0 once the maps are released).
    fn mark_word_locked(&self, st: &mut State, w: u32, bits: u64) -> u64 {
        let g = rcu::read_lock();
        let Some(m) = self.maps.get(&g) else {
            // Released: every region is copied.
            return 0;
        };
        let new = m.copied.or_word(w, bits);
        if new != 0 {
            self.nr_copied
                .fetch_add(u64::from(new.count_ones()), Ordering::AcqRel);
            let i = st.current;
            if let Some(set) = m.sets.get(i) {
                set.words.set_bit_atomic(w);
            }
            if let Some(c) = st.changed.get_mut(i) {
                *c = true;
            }
        }
        new
    }

    fn mark_locked(&self, st: &mut State, r: u32) -> Mark {
        if st.frozen {
            return Mark::Frozen;
        }
        // (Past the end nothing is set: `Already`, as for a region copied.)
        match self.mark_word_locked(st, r / WORD_BITS, 1 << (r % WORD_BITS)) {
            0 => Mark::Already,
            _ => Mark::New,
        }
    }

    /// Whether a write to region `r` completing now survives a reload: always, until frozen
    /// (its region's mark will be committed before any flush completes); after, only if the
    /// mark is on disk: set, and not in a word [`Marks::freeze`] has yet to check (it clears
    /// a word's dirty bits only after taking back its marks not on disk). Any context.
    pub(crate) fn survives_reload(&self, r: u32) -> bool {
        if !self.frozen.load(Ordering::Acquire) {
            return true;
        }
        let w = r / WORD_BITS;
        let g = rcu::read_lock();
        !matches!(
            self.maps.get(&g),
            Some(m) if m.sets.iter().any(|set| set.words.test_bit(w)) || !m.copied.test_bit(r)
        )
    }

    /// Nothing can be committed any more: refuses marks from now on, then takes back every
    /// mark not on disk, a word at a time, `on_disk(w)` giving word `w` as the metadata
    /// (opened again at its last commit) has it. Returns how many regions read as not copied
    /// again. Only the committer's side calls it (holding the metadata mutex, so no commit
    /// runs), in process context (`on_disk` may read the metadata): it offers the CPU every
    /// [`YIELD_WORDS`] words. Interrupts are off only to set the flag.
    pub(crate) fn freeze(&self, mut on_disk: impl FnMut(u32) -> u64) -> u64 {
        let owner = self.maps.owner();
        {
            let mut st = self.state.lock();
            st.changed = [false; 2];
            st.frozen = true;
            self.frozen.store(true, Ordering::Release);
        }
        // Released maps were all on disk: nothing to take back.
        let Some(m) = owner.get() else {
            return 0;
        };
        // No mark lands from here on: only this loop changes the copied map.
        let (mut taken, mut yielder) = (0u64, Yielder::default());
        for set in &m.sets {
            let _ = set.walk(false, |w| {
                let take = m.copied.load_word(w) & !on_disk(w);
                let old = m.copied.clear_word_bits(w, take);
                taken += u64::from((old & take).count_ones());
                yielder.word();
                Ok(())
            });
        }
        // Now the dirty bits can go: what each word holds is on disk.
        for set in &m.sets {
            let _ = set.walk(true, |_| Ok(()));
        }
        self.nr_copied.fetch_sub(taken, Ordering::AcqRel);
        taken
    }

    /// Whether any marks are not on disk: in the open set, or in a closed set whose commit has
    /// not ended. (A FUA write must wait for both: its region's mark may be in the set being
    /// committed right now.)
    pub(crate) fn changed(&self) -> bool {
        let st = self.state.lock();
        st.changed.iter().any(|&c| c)
    }

    /// Phase 1: closes the open transaction's set and opens the other. Returns the closed
    /// set, or `None` if it has no marks. Only the committer calls this (holding the metadata
    /// mutex), and only after the previous closed set was ended.
    pub(crate) fn begin_commit(&self) -> Option<ClosedSet> {
        let mut st = self.state.lock();
        let closed = st.current;
        if !st.changed.get(closed).copied().unwrap_or(false) {
            return None;
        }
        st.current = 1 - closed;
        Some(ClosedSet(closed))
    }

    /// Step 2: calls `f(w, word)` on every word `w` of the closed set `closed`, with the word
    /// as the copied map holds it now (marks of the open set included: see the module's
    /// opening), for the committer to write whole: the word holds every mark on disk too
    /// (only [`Marks::freeze`] clears bits, those not on disk). The set stays as it is until
    /// [`Marks::end_commit`]. Stops at the first error (the caller aborts the transaction;
    /// the set still names every word, for [`Marks::freeze`]).
    ///
    /// # Context
    ///
    /// Process context (the committer's); `f` may sleep.
    pub(crate) fn drain_closed(
        &self,
        closed: &ClosedSet,
        mut f: impl FnMut(u32, u64) -> Result,
    ) -> Result {
        let owner = self.maps.owner();
        // Released maps have no marks left to write (released only with both sets empty).
        let Some(m) = owner.get() else {
            return Ok(());
        };
        m.sets
            .get(closed.0)
            .ok_or(EINVAL)?
            .walk(false, |w| f(w, m.copied.load_word(w)))
    }

    /// Whether the closed set `closed` changed so much of the map (at least one word in
    /// [`DENSE_RATIO`], in a map of at least [`DENSE_MIN_WORDS`]) that rewriting the whole
    /// on-disk map from the copied map ([`Marks::with_words`]) costs less than writing the
    /// changed words one by one. A whole-device discard gives that: 2^24 words at 2^30
    /// regions, rewritten as 33,000 array blocks rather than 2^24 array updates; so does a
    /// periodic commit in the middle of one.
    ///
    /// # Context
    ///
    /// Process context (the committer's).
    pub(crate) fn dense(&self, closed: &ClosedSet) -> bool {
        let owner = self.maps.owner();
        let Some(m) = owner.get() else {
            return false;
        };
        let nr_words = self.nr_regions.div_ceil(WORD_BITS);
        let changed = m.sets.get(closed.0).map_or(0, |set| set.count_from(0));
        nr_words >= DENSE_MIN_WORDS && changed >= nr_words / DENSE_RATIO
    }

    /// Calls `f` with a reader of the copied map's words (word `w` as the map holds it now:
    /// every mark on disk and more, see [`Marks::drain_closed`]), for the committer to
    /// rewrite the on-disk map from; `None` if the maps were released (nothing left to write).
    ///
    /// # Context
    ///
    /// Process context (the committer's); `f` may sleep.
    pub(crate) fn with_words<R>(&self, f: impl FnOnce(&dyn Fn(u32) -> u64) -> R) -> Option<R> {
        let owner = self.maps.owner();
        let m = owner.get()?;
        Some(f(&|w| m.copied.load_word(w)))
    }

    /// Records that the closed set `closed` was committed, and clears it. (Marks go to the
    /// open set meanwhile: nothing else writes the closed one.)
    pub(crate) fn end_commit(&self, closed: ClosedSet) {
        let ClosedSet(closed) = closed;
        {
            let owner = self.maps.owner();
            if let Some(set) = owner.get().and_then(|m| m.sets.get(closed)) {
                let _ = set.walk(true, |_| Ok(()));
            }
        }
        let mut st = self.state.lock();
        if let Some(c) = st.changed.get_mut(closed) {
            *c = false;
        }
    }
}

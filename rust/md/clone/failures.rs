// SPDX-License-Identifier: GPL-2.0

//! Regions whose copy keeps failing: each is tried [`MAX_TRIES`] times, then given up (left
//! uncopied, counted and listed) until the `retry_failed` message; and the pause of the
//! background copy after a failure, which doubles while failures go on.
//!
//! A region's failed tries are a 2-bit count, kept in two bitmaps allocated at the first
//! failure (a clone whose copies never fail spends no memory on them); a count of
//! [`MAX_TRIES`] means given up. The background copy skips given-up regions; copies that
//! writes wait for still try them (the write asks for it, and fails if the copy does).
//!
//! # Locking and contexts
//!
//! Failures are recorded in kcopyd's thread, and the lists read and cleared by the worker and
//! messages, all process context. `counts` is a spinlock (interrupts on: no interrupt context
//! touches it) guarding the allocation and each 2-bit increment; the bitmaps themselves are
//! atomic, so a scan tests them lock-free through a [`View`] cloned out under the lock.

use core::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use kernel::bitmap::{AtomicBitmap, WORD_BITS};
use kernel::{
    alloc::flags::GFP_NOIO,
    new_spinlock,
    prelude::*,
    sync::{Arc, SpinLock},
};

/// Failed tries after which a region is given up (at most 3: the count has two bits).
pub(crate) const MAX_TRIES: u32 = 3;
/// The first pause of the background copy after a failure, and the longest (ms).
const PAUSE_MIN_MS: i64 = 1000;
const PAUSE_MAX_MS: i64 = 32_000;

/// Two bits per region: the number of failed tries.
struct Counts {
    lo: AtomicBitmap,
    hi: AtomicBitmap,
}

impl Counts {
    fn get(&self, r: u32) -> u32 {
        u32::from(self.lo.test_bit(r)) | (u32::from(self.hi.test_bit(r)) << 1)
    }

    /// Word `index` of the given-up map (both bits set).
    fn given_up_word(&self, index: u32) -> u64 {
        self.lo.load_word(index) & self.hi.load_word(index)
    }
}

/// What [`Failures::record`] made of a failure.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Recorded {
    /// Counted: the region will be tried again.
    Retry,
    /// That was its last try: given up.
    GaveUp,
    /// Not counted: given up already, or no memory for the counts (then the background copy
    /// tries it again, without bound).
    Untracked,
}

/// A snapshot of the counts for a scan (no lock held while testing).
pub(crate) struct View(Option<Arc<Counts>>);

impl View {
    /// Whether region `r` is given up.
    pub(crate) fn given_up(&self, r: u32) -> bool {
        self.0.as_ref().is_some_and(|c| c.get(r) >= MAX_TRIES)
    }

    /// Word `index` of the given-up map (0 if nothing failed).
    pub(crate) fn given_up_word(&self, index: u32) -> u64 {
        self.0.as_ref().map_or(0, |c| c.given_up_word(index))
    }
}

/// The copy failures of one clone.
#[pin_data]
pub(crate) struct Failures {
    nr_regions: u32,
    #[pin]
    counts: SpinLock<Option<Arc<Counts>>>,
    /// Regions given up.
    given_up: AtomicU32,
    /// The background copy starts nothing before this time (ns, `ktime_get`).
    pause_until_ns: AtomicI64,
    /// The pause the next failure after it ends will take (ms); 0 after a success.
    pause_ms: AtomicI64,
}

impl Failures {
    /// No failures, for `nr_regions` regions.
    pub(crate) fn new(nr_regions: u32) -> impl PinInit<Self> {
        pin_init!(Self {
            nr_regions,
            counts <- new_spinlock!(None, "clone_failures"),
            given_up: AtomicU32::new(0),
            pause_until_ns: AtomicI64::new(0),
            pause_ms: AtomicI64::new(0),
        })
    }

    /// Bytes of memory the counts take (none until a copy fails).
    pub(crate) fn bytes(&self) -> u64 {
        self.counts
            .lock()
            .as_ref()
            .map_or(0, |c| c.lo.bytes() + c.hi.bytes())
    }

    /// The counts as they are now, for a scan.
    pub(crate) fn view(&self) -> View {
        View(self.counts.lock().clone())
    }

    /// A copy of region `r` failed at `now_ns`: counts the try, and pauses the background copy
    /// (1 s, doubling when it fails again after a pause, up to 32 s). Process context.
    pub(crate) fn record(&self, r: u32, now_ns: i64) -> Recorded {
        self.pause(now_ns);
        if r >= self.nr_regions {
            return Recorded::Untracked;
        }
        if self.counts.lock().is_none() {
            // Allocated outside the lock (it may sleep); the first to install it wins.
            let Ok(lo) = AtomicBitmap::new_with(self.nr_regions, GFP_NOIO) else {
                return Recorded::Untracked;
            };
            let Ok(hi) = AtomicBitmap::new_with(self.nr_regions, GFP_NOIO) else {
                return Recorded::Untracked;
            };
            let Ok(counts) = Arc::new(Counts { lo, hi }, GFP_NOIO) else {
                return Recorded::Untracked;
            };
            let mut slot = self.counts.lock();
            if slot.is_none() {
                *slot = Some(counts);
            }
        }
        let slot = self.counts.lock();
        let Some(c) = slot.as_ref() else {
            return Recorded::Untracked;
        };
        let n = c.get(r);
        if n >= MAX_TRIES {
            // (Given up already: a write's copy tried it again. Not counted twice.)
            return Recorded::Untracked;
        }
        let n = n + 1;
        if n & 1 != 0 {
            c.lo.set_bit_atomic(r);
        } else {
            c.lo.clear_bit_atomic(r);
        }
        if n & 2 != 0 {
            c.hi.set_bit_atomic(r);
        }
        if n >= MAX_TRIES {
            self.given_up.fetch_add(1, Ordering::AcqRel);
            Recorded::GaveUp
        } else {
            Recorded::Retry
        }
    }

    fn pause(&self, now_ns: i64) {
        let until = self.pause_until_ns.load(Ordering::Acquire);
        if now_ns < until {
            // Failures of copies started before the pause: one pause for them all.
            return;
        }
        // 0 after a success, else from PAUSE_MIN_MS to PAUSE_MAX_MS (stored below).
        let ms = match self.pause_ms.load(Ordering::Acquire) {
            0 => PAUSE_MIN_MS,
            ms => ms,
        };
        self.pause_ms
            .store(ms.saturating_mul(2).min(PAUSE_MAX_MS), Ordering::Release);
        self.pause_until_ns.store(
            now_ns.saturating_add(ms.saturating_mul(1_000_000)),
            Ordering::Release,
        );
    }

    /// A copy succeeded: the next failure pauses for the shortest time again.
    pub(crate) fn succeeded(&self) {
        if self.pause_ms.load(Ordering::Relaxed) != 0 {
            self.pause_ms.store(0, Ordering::Release);
        }
    }

    /// Whether the background copy must wait at `now_ns`.
    pub(crate) fn paused(&self, now_ns: i64) -> bool {
        now_ns < self.pause_until_ns.load(Ordering::Acquire)
    }

    /// How many regions are given up.
    pub(crate) fn nr_given_up(&self) -> u32 {
        self.given_up.load(Ordering::Acquire)
    }

    /// Calls `f` on the first `max` given-up regions, in order.
    pub(crate) fn for_each_given_up(&self, max: usize, mut f: impl FnMut(u32)) {
        let view = self.view();
        let mut left = max;
        let words = self.nr_regions.div_ceil(WORD_BITS);
        for index in 0..words {
            let mut w = view.given_up_word(index);
            while w != 0 && left > 0 {
                f(index * WORD_BITS + w.trailing_zeros());
                w &= w - 1;
                left -= 1;
            }
            if left == 0 {
                return;
            }
        }
    }

    /// Forgets every failure (`retry_failed`): the background copy tries every region again,
    /// at once. Returns how many were given up.
    pub(crate) fn retry_all(&self) -> u32 {
        let old = self.counts.lock().take();
        drop(old);
        self.pause_until_ns.store(0, Ordering::Release);
        self.pause_ms.store(0, Ordering::Release);
        self.given_up.swap(0, Ordering::AcqRel)
    }
}

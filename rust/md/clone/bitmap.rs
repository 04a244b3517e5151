// SPDX-License-Identifier: GPL-2.0

//! A bitmap of atomic words, usable from any context without a lock.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    alloc::{Flags, KVVec},
    prelude::*,
};

/// Bits per word.
pub(crate) const WORD_BITS: u32 = 64;

/// A fixed-size bitmap whose bits are set and tested atomically, from any context (including
/// hard interrupts). It is allocated with `kvmalloc`, as it may be large (2^31 bits at most:
/// 256 MiB).
///
/// # Invariants
///
/// `words` holds `ceil(len / 64)` words; bits at and beyond `len` are never set.
pub(crate) struct AtomicBitmap {
    words: KVVec<AtomicU64>,
    len: u32,
}

impl AtomicBitmap {
    /// A bitmap of `len` clear bits.
    pub(crate) fn new(len: u32) -> Result<Self> {
        Self::new_with(len, GFP_KERNEL)
    }

    /// A bitmap of `len` clear bits, allocated with `flags` (e.g. `GFP_NOIO` in the I/O path).
    pub(crate) fn new_with(len: u32, flags: Flags) -> Result<Self> {
        let n = len.div_ceil(WORD_BITS) as usize;
        let mut words = KVVec::with_capacity(n, flags)?;
        for _ in 0..n {
            words.push(AtomicU64::new(0), flags)?;
        }
        Ok(Self { words, len })
    }

    /// The first bit at or after `from` that is clear here and in `extra(word index)`, if any.
    pub(crate) fn next_clear_with(&self, from: u32, extra: impl Fn(u32) -> u64) -> Option<u32> {
        let mut bit = from;
        while bit < self.len {
            let index = bit / WORD_BITS;
            let below = (1u64 << (bit % WORD_BITS)) - 1;
            let w = self.load_word(index) | extra(index) | below;
            if w != u64::MAX {
                let found = index * WORD_BITS + (!w).trailing_zeros();
                return (found < self.len).then_some(found);
            }
            bit = (index + 1).checked_mul(WORD_BITS)?;
        }
        None
    }

    /// Bytes of memory the words take.
    pub(crate) fn bytes(&self) -> u64 {
        // A `KVVec` of `nr_words()` words: at most 2^25 words of 8 bytes.
        u64::from(self.nr_words()) * 8
    }

    /// The number of words.
    pub(crate) fn nr_words(&self) -> u32 {
        // `len / 64` rounded up fits in `u32`.
        self.words.len() as u32
    }

    fn word(&self, bit: u32) -> Option<(&AtomicU64, u64)> {
        if bit >= self.len {
            return None;
        }
        let w = self.words.get((bit / WORD_BITS) as usize)?;
        Some((w, 1u64 << (bit % WORD_BITS)))
    }

    /// Whether bit `bit` is set (false beyond the end).
    pub(crate) fn test(&self, bit: u32) -> bool {
        self.word(bit)
            .is_some_and(|(w, mask)| w.load(Ordering::Acquire) & mask != 0)
    }

    /// Sets bit `bit`; returns whether it was clear before (false beyond the end).
    pub(crate) fn set(&self, bit: u32) -> bool {
        self.word(bit)
            .is_some_and(|(w, mask)| w.fetch_or(mask, Ordering::AcqRel) & mask == 0)
    }

    /// Clears bit `bit`; returns whether it was set before (false beyond the end).
    pub(crate) fn clear(&self, bit: u32) -> bool {
        self.word(bit)
            .is_some_and(|(w, mask)| w.fetch_and(!mask, Ordering::AcqRel) & mask != 0)
    }

    /// Word `index` (0 beyond the end).
    pub(crate) fn load_word(&self, index: u32) -> u64 {
        self.words
            .get(index as usize)
            .map_or(0, |w| w.load(Ordering::Acquire))
    }

    /// Clears word `index` and returns what it held.
    pub(crate) fn take_word(&self, index: u32) -> u64 {
        self.words
            .get(index as usize)
            .map_or(0, |w| w.swap(0, Ordering::AcqRel))
    }

    /// Clears every bit.
    pub(crate) fn clear_all(&self) {
        for w in self.words.iter() {
            w.store(0, Ordering::Release);
        }
    }

    /// The first clear bit at or after `from`, if any.
    pub(crate) fn next_clear(&self, from: u32) -> Option<u32> {
        self.next_clear_with(from, |_| 0)
    }

    /// Whether all bits in `first..first + count` are set.
    pub(crate) fn all_set(&self, first: u32, count: u32) -> bool {
        match first.checked_add(count) {
            Some(end) if end <= self.len => {
                self.next_clear(first).map_or(true, |clear| clear >= end)
            }
            _ => false,
        }
    }
}

// SPDX-License-Identifier: GPL-2.0

//! [`AtomicBitmap`]: a fixed-size bitmap of atomic words, usable from any context without a
//! lock. Its operations have the names of the C bitmap and bit operations
//! (`include/linux/bitmap.h`, `include/linux/bitops.h`) and of mainline's `Bitmap`, which it
//! does not replace: that one has no test-and-set or word access, and holds at most
//! `i32::MAX` bits in `kmalloc` memory; this one up to 2^32 - 1 bits in `kvmalloc` memory.

use crate::{
    alloc::{
        flags::{GFP_KERNEL, GFP_NOIO},
        Flags, KVVec,
    },
    error::Result,
};
use core::sync::atomic::{AtomicU64, Ordering};

/// Bits per word of an [`AtomicBitmap`].
pub const WORD_BITS: u32 = 64;

/// Words [`AtomicBitmap::new_with`] clears between two offers of the CPU.
const YIELD_WORDS: usize = 1 << 16;

/// A fixed-size bitmap whose bits are set and tested atomically, from any context (including
/// hard interrupts). It is allocated with `kvmalloc`, as it may be large (up to 2^32 - 1 bits:
/// 512 MiB). Bits past the end read as clear and cannot be set.
///
/// Each bit operation is one atomic read-modify-write of its word (`Acquire` loads, `AcqRel`
/// changes): a bit set before some data was published is seen set by whoever sees the data.
///
/// # Invariants
///
/// `words` holds `ceil(len / 64)` words; bits at and beyond `len` are never set.
///
/// # Examples
///
/// ```
/// use kernel::bitmap::AtomicBitmap;
///
/// let b = AtomicBitmap::new(130)?;
/// assert!(!b.test_and_set_bit(3));
/// assert!(b.test_and_set_bit(3));
/// b.set_bit_atomic(64);
/// assert!(b.test_bit(3) && b.test_bit(64) && !b.test_bit(4));
/// // Beyond the end: never set (and never counted as newly set).
/// assert!(b.test_and_set_bit(130));
/// assert!(!b.test_bit(130));
/// assert_eq!(b.next_zero_bit(3), Some(4));
/// assert_eq!(b.next_bit(4), Some(64));
/// assert_eq!(b.next_bit(65), None);
/// assert!(b.test_and_clear_bit(64));
/// assert_eq!(b.load_word(0), 1 << 3);
/// assert!(b.all_set(3, 1) && !b.all_set(3, 2));
/// // A second map's words can hide bits from the search (e.g. regions to skip).
/// assert_eq!(b.next_zero_bit_with(0, |w| if w == 0 { 0b111 } else { 0 }), Some(4));
/// b.clear_all();
/// assert_eq!(b.next_bit(0), None);
/// assert_eq!(b.nr_words(), 3);
///
/// // At word edges: a full word of 64 bits, then one bit more.
/// let full = AtomicBitmap::new(64)?;
/// for i in 0..64 {
///     full.set_bit_atomic(i);
/// }
/// assert_eq!(full.next_zero_bit(0), None);
/// assert!(full.all_set(0, 64) && !full.all_set(0, 65));
/// let edge = AtomicBitmap::new(65)?;
/// edge.set_bit_atomic(63);
/// assert_eq!(edge.next_zero_bit(63), Some(64));
/// assert_eq!(edge.next_bit(0), Some(63));
/// assert_eq!(edge.next_bit(64), None);
/// edge.set_bit_atomic(64);
/// assert_eq!(edge.next_bit(64), Some(64));
/// assert_eq!(edge.next_zero_bit(63), None);
/// assert_eq!(edge.take_word(1), 1);
/// assert!(!edge.test_bit(64));
/// // Bits past the end are not set by a word either; it returns what it newly set.
/// assert_eq!(edge.or_word(1, 0b11), 1);
/// assert_eq!(edge.or_word(1, 0b11), 0);
/// assert_eq!(edge.take_word(1), 1);
/// edge.or_word(0, 0b1011);
/// assert_eq!(edge.clear_word_bits(0, 0b0011), 0b1011 | 1 << 63);
/// assert_eq!(edge.load_word(0), 0b1000 | 1 << 63);
/// // The extra map hides a whole word: the search goes on in the next one.
/// assert_eq!(edge.next_zero_bit_with(0, |w| if w == 0 { u64::MAX } else { 0 }), Some(64));
/// # Ok::<(), Error>(())
/// ```
pub struct AtomicBitmap {
    words: KVVec<AtomicU64>,
    len: u32,
}

impl AtomicBitmap {
    /// A bitmap of `len` clear bits.
    pub fn new(len: u32) -> Result<Self> {
        Self::new_with(len, GFP_KERNEL)
    }

    /// A bitmap of `len` clear bits, allocated with `flags` (e.g. `GFP_NOIO` in the I/O path).
    ///
    /// The words are cleared one by one (up to 2^26 of them, about a second under emulation):
    /// with `flags` that may sleep (they hold `GFP_NOIO`'s reclaim bits, as `GFP_KERNEL` does),
    /// the CPU is offered every [`YIELD_WORDS`] words.
    ///
    /// # Context
    ///
    /// With `flags` that may sleep, process context (it sleeps); otherwise any context.
    pub fn new_with(len: u32, flags: Flags) -> Result<Self> {
        let n = len.div_ceil(WORD_BITS) as usize;
        let may_sleep = flags.contains(GFP_NOIO);
        let mut words = KVVec::with_capacity(n, flags)?;
        for i in 0..n {
            words.push(AtomicU64::new(0), flags)?;
            if may_sleep && i % YIELD_WORDS == YIELD_WORDS - 1 {
                crate::task::cond_resched();
            }
        }
        Ok(Self { words, len })
    }

    /// The first bit at or after `from` that is clear here and in `extra(word index)`, if any
    /// (`find_next_zero_bit` over the two maps or-ed).
    pub fn next_zero_bit_with(&self, from: u32, extra: impl Fn(u32) -> u64) -> Option<u32> {
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
    pub fn bytes(&self) -> u64 {
        // A `KVVec` of `nr_words()` words: at most 2^25 words of 8 bytes.
        u64::from(self.nr_words()) * 8
    }

    /// The number of words.
    pub fn nr_words(&self) -> u32 {
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
    pub fn test_bit(&self, bit: u32) -> bool {
        self.word(bit)
            .is_some_and(|(w, mask)| w.load(Ordering::Acquire) & mask != 0)
    }

    /// Sets bit `bit` (nothing beyond the end).
    pub fn set_bit_atomic(&self, bit: u32) {
        let _ = self.test_and_set_bit(bit);
    }

    /// Sets bit `bit`; returns whether it was set before. Beyond the end nothing is set and
    /// it returns true, as for a bit set already: a caller counting the bits it newly sets
    /// never counts one there.
    pub fn test_and_set_bit(&self, bit: u32) -> bool {
        // (A `match`: `Option::is_none_or` is newer than 6.12's minimum Rust.)
        match self.word(bit) {
            Some((w, mask)) => w.fetch_or(mask, Ordering::AcqRel) & mask != 0,
            None => true,
        }
    }

    /// Clears bit `bit` (nothing beyond the end).
    pub fn clear_bit_atomic(&self, bit: u32) {
        let _ = self.test_and_clear_bit(bit);
    }

    /// Clears bit `bit`; returns whether it was set before (false beyond the end).
    pub fn test_and_clear_bit(&self, bit: u32) -> bool {
        self.word(bit)
            .is_some_and(|(w, mask)| w.fetch_and(!mask, Ordering::AcqRel) & mask != 0)
    }

    /// Word `index` (0 beyond the end).
    pub fn load_word(&self, index: u32) -> u64 {
        self.words
            .get(index as usize)
            .map_or(0, |w| w.load(Ordering::Acquire))
    }

    /// Sets the bits `bits` in word `index` (those past the end are left clear); returns the
    /// bits it set that were clear (0 beyond the end), e.g. to count them.
    pub fn or_word(&self, index: u32, bits: u64) -> u64 {
        let Some(w) = self.words.get(index as usize) else {
            return 0;
        };
        // Bits at and beyond `len` stay clear (the invariant).
        let tail = self.len % WORD_BITS;
        let last = index + 1 == self.nr_words();
        let mask = if last && tail != 0 {
            (1u64 << tail) - 1
        } else {
            u64::MAX
        };
        let bits = bits & mask;
        bits & !w.fetch_or(bits, Ordering::AcqRel)
    }

    /// Clears the bits `bits` in word `index`; returns what the word held before (0 beyond
    /// the end).
    pub fn clear_word_bits(&self, index: u32, bits: u64) -> u64 {
        self.words
            .get(index as usize)
            .map_or(0, |w| w.fetch_and(!bits, Ordering::AcqRel))
    }

    /// Clears word `index` and returns what it held.
    pub fn take_word(&self, index: u32) -> u64 {
        self.words
            .get(index as usize)
            .map_or(0, |w| w.swap(0, Ordering::AcqRel))
    }

    /// Clears every bit.
    pub fn clear_all(&self) {
        for w in self.words.iter() {
            w.store(0, Ordering::Release);
        }
    }

    /// The first clear bit at or after `from`, if any (`find_next_zero_bit`).
    pub fn next_zero_bit(&self, from: u32) -> Option<u32> {
        self.next_zero_bit_with(from, |_| 0)
    }

    /// The first set bit at or after `from`, if any (`find_next_bit`).
    pub fn next_bit(&self, from: u32) -> Option<u32> {
        let mut bit = from;
        while bit < self.len {
            let index = bit / WORD_BITS;
            let w = self.load_word(index) & !((1u64 << (bit % WORD_BITS)) - 1);
            if w != 0 {
                // Bits at and beyond `len` are never set (the invariant).
                return Some(index * WORD_BITS + w.trailing_zeros());
            }
            bit = (index + 1).checked_mul(WORD_BITS)?;
        }
        None
    }

    /// Whether all bits in `first..first + count` are set.
    pub fn all_set(&self, first: u32, count: u32) -> bool {
        match first.checked_add(count) {
            Some(end) if end <= self.len => {
                !matches!(self.next_zero_bit(first), Some(clear) if clear < end)
            }
            _ => false,
        }
    }
}

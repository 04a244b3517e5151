// SPDX-License-Identifier: GPL-2.0

//! On-disk bitsets (`dm_bitset`, an array of little-endian 64-bit words in a btree).
//!
//! C header: [`dm-bitset.h`](srctree/drivers/md/persistent-data/dm-bitset.h)
//!
//! A [`DiskBitset`] is one bitset: its root block (which changes with every change, copy on
//! write) and its length, which the caller saves in its superblock at commit. Changes of
//! single bits are cached in it and written by [`DiskBitset::flush`], which must precede a
//! commit.
//!
//! The bitset is an array of 64-bit words, and many bits are best read and written a word at
//! a time: [`DiskBitset::set_word`] (`dm_array_set_value` on the bitset's array) and
//! [`DiskBitset::for_each_word`] (a `dm_array` cursor) use the array under the bitset, as C's
//! `dm-bitset.c` does for its cached word; no helper is needed. So does
//! [`DiskBitset::rewrite`], which writes every word anew a whole array block at a time
//! (`dm_array_new`), for a change of many words.
//!
//! The length is kept with the root because dm-array's resize `BUG_ON`s when told a wrong old
//! length; a superblock that checks but lies about the length can still reach that, as in C.
//!
//! # Contexts
//!
//! Process context only; operations take the transaction manager by `&mut`, which serialises
//! them with everything else that changes the metadata.

use super::transaction_manager::TransactionManager;
use crate::{
    alloc::{flags::GFP_KERNEL, KBox},
    bindings,
    error::{code::*, to_result, Result},
};

/// Bits added or removed by one call of `dm_bitset_resize` in [`DiskBitset::resize`]: 2^20
/// (2^14 words, about 32 array blocks).
pub const RESIZE_STEP: u32 = 1 << 20;

/// Words [`DiskBitset::rewrite`] writes between two offers of the CPU.
pub const REWRITE_YIELD_WORDS: u32 = 1 << 14;

/// What `dm_array_new` calls back with in [`DiskBitset::rewrite`].
struct Filler<F> {
    f: F,
    len: u32,
    calls: u32,
}

/// `dm_array_new`'s `value_fn` for [`DiskBitset::rewrite`]: writes word `index`.
///
/// # Safety
///
/// `context` points to a live `Filler<F>` that nothing else uses during the call, and
/// `value_le` to 8 bytes writable (maybe unaligned).
unsafe extern "C" fn fill_word<F: FnMut(u32) -> u64>(
    index: u32,
    value_le: *mut crate::ffi::c_void,
    context: *mut crate::ffi::c_void,
) -> crate::ffi::c_int {
    // SAFETY: By the function's safety requirements.
    let filler = unsafe { &mut *context.cast::<Filler<F>>() };
    let mut word = (filler.f)(index);
    let tail = filler.len % 64;
    if tail != 0 && index.checked_add(1) == Some(filler.len.div_ceil(64)) {
        word &= (1u64 << tail) - 1;
    }
    // SAFETY: By the function's safety requirements.
    unsafe { value_le.cast::<u64>().write_unaligned(word.to_le()) };
    filler.calls = filler.calls.wrapping_add(1);
    if filler.calls % REWRITE_YIELD_WORDS == 0 {
        crate::task::cond_resched();
    }
    0
}

/// One on-disk bitset: its description, one-word cache, root and length.
///
/// # Invariants
///
/// `info` was initialised by `dm_disk_bitset_init` for the transaction manager `tm`, in place:
/// it points into itself (`dm_array_info_init` sets the btree value type's context to the
/// array info), so it lives in its own allocation and never moves. `root` is the bitset's
/// current root and `len` its length in bits.
pub struct DiskBitset {
    info: KBox<bindings::dm_disk_bitset>,
    tm: *mut bindings::dm_transaction_manager,
    root: u64,
    len: u32,
}

// SAFETY: The bitset may be used from any thread, one at a time (`&mut self`).
unsafe impl Send for DiskBitset {}

impl DiskBitset {
    fn init(tm: &TransactionManager, root: u64, len: u32) -> Result<Self> {
        // SAFETY: An all-zero `dm_disk_bitset` is a valid value to be initialised.
        let mut info = KBox::new(unsafe { core::mem::zeroed() }, GFP_KERNEL)?;
        // SAFETY: `tm` is live; `info` is valid for writes, at the address it keeps.
        unsafe { bindings::dm_disk_bitset_init(tm.as_ptr(), &mut *info) };
        // INVARIANT: Initialised in place for `tm` just now.
        Ok(Self {
            info,
            tm: tm.as_ptr(),
            root,
            len,
        })
    }

    /// A new bitset of `len` bits, all clear (`dm_bitset_empty`, then [`DiskBitset::resize`]).
    ///
    /// # Context
    ///
    /// Process context; sleeps.
    pub fn create(tm: &mut TransactionManager, len: u32) -> Result<Self> {
        let mut b = Self::init(tm, 0, 0)?;
        let mut root = 0;
        // SAFETY: `info` is initialised for `tm`, which `&mut` gives us alone.
        b.with(tm, |info| unsafe {
            bindings::dm_bitset_empty(info, &mut root)
        })?;
        b.root = root;
        b.resize(tm, len, false)?;
        Ok(b)
    }

    /// The bitset of `len` bits saved at `root`.
    pub fn open(tm: &TransactionManager, root: u64, len: u32) -> Result<Self> {
        Self::init(tm, root, len)
    }

    /// The current root, to save in a superblock (after [`DiskBitset::flush`]).
    pub fn root(&self) -> u64 {
        self.root
    }

    /// The length in bits.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the bitset has no bits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Runs `f` on the description after checking that `tm` is the one it was made for.
    fn with(
        &mut self,
        tm: &mut TransactionManager,
        f: impl FnOnce(*mut bindings::dm_disk_bitset) -> crate::ffi::c_int,
    ) -> Result {
        if tm.as_ptr() != self.tm {
            return Err(EINVAL);
        }
        to_result(f(&mut *self.info))
    }

    /// Runs a C operation that takes the bitset's root and may write a new one, and keeps the
    /// new root. The C functions leave `*new_root` alone when nothing changed, so it starts at
    /// the old root.
    fn update(
        &mut self,
        tm: &mut TransactionManager,
        f: impl FnOnce(*mut bindings::dm_disk_bitset, u64, &mut u64) -> crate::ffi::c_int,
    ) -> Result {
        let root = self.root;
        let mut new_root = root;
        self.with(tm, |info| f(info, root, &mut new_root))?;
        self.root = new_root;
        Ok(())
    }

    /// Changes the length to `new_len` bits; new bits are `value`.
    ///
    /// `dm_bitset_resize` never yields, and growing by 2^31 bits inserts about 66,000 array
    /// blocks: the resize is done in steps of [`RESIZE_STEP`] bits (each length between the
    /// old and the new one a multiple of it, so whole words), offering the CPU between them.
    /// The steps add up to the one resize (no commit comes between them). The one-word cache
    /// is written and forgotten first: a cached word past a shrunk end could not be written
    /// back, and one grown again would be answered from the cache with its old bits.
    ///
    /// On failure the bitset may be part way through a step: drop it (and the transaction).
    ///
    /// # Context
    ///
    /// Process context; sleeps.
    pub fn resize(&mut self, tm: &mut TransactionManager, new_len: u32, value: bool) -> Result {
        self.flush_and_forget(tm)?;
        while self.len != new_len {
            let old_len = self.len;
            let next = if new_len > old_len {
                (old_len / RESIZE_STEP)
                    .saturating_add(1)
                    .saturating_mul(RESIZE_STEP)
                    .min(new_len)
            } else {
                // The step at or below, at least `new_len`: strictly below `old_len`.
                (old_len.saturating_sub(1) / RESIZE_STEP)
                    .saturating_mul(RESIZE_STEP)
                    .max(new_len)
            };
            // SAFETY: As in `create`; `old_len` is the bitset's length.
            self.update(tm, |info, root, new_root| unsafe {
                bindings::dm_bitset_resize(info, root, old_len, next, value, new_root)
            })?;
            self.len = next;
            crate::task::cond_resched();
        }
        Ok(())
    }

    fn check_index(&self, index: u32) -> Result {
        if index < self.len {
            Ok(())
        } else {
            Err(EINVAL)
        }
    }

    /// Sets bit `index`.
    pub fn set(&mut self, tm: &mut TransactionManager, index: u32) -> Result {
        self.check_index(index)?;
        // SAFETY: As in `create`.
        self.update(tm, |info, root, new_root| unsafe {
            bindings::dm_bitset_set_bit(info, root, index, new_root)
        })
    }

    /// Clears bit `index`.
    pub fn clear(&mut self, tm: &mut TransactionManager, index: u32) -> Result {
        self.check_index(index)?;
        // SAFETY: As in `create`.
        self.update(tm, |info, root, new_root| unsafe {
            bindings::dm_bitset_clear_bit(info, root, index, new_root)
        })
    }

    /// Tests bit `index` (reading may write the cached word first).
    pub fn test(&mut self, tm: &mut TransactionManager, index: u32) -> Result<bool> {
        self.check_index(index)?;
        let mut bit = false;
        // SAFETY: As in `create`.
        self.update(tm, |info, root, new_root| unsafe {
            bindings::dm_bitset_test_bit(info, root, index, new_root, &mut bit)
        })?;
        Ok(bit)
    }

    /// Writes the cached word (`dm_bitset_flush`).
    pub fn flush(&mut self, tm: &mut TransactionManager) -> Result {
        // SAFETY: As in `create`.
        self.update(tm, |info, root, new_root| unsafe {
            bindings::dm_bitset_flush(info, root, new_root)
        })
    }

    /// The number of 64-bit words.
    pub fn nr_words(&self) -> u32 {
        self.len.div_ceil(64)
    }

    /// Writes the cached word and forgets it: the array is then changed under the bit cache,
    /// which would otherwise write a stale copy of a word back, or answer from one.
    fn flush_and_forget(&mut self, tm: &mut TransactionManager) -> Result {
        self.flush(tm)?;
        self.info.set_current_index_set(false);
        Ok(())
    }

    /// Sets word `index` (bits `64 * index` to `64 * index + 63`) to `bits`
    /// (`dm_array_set_value`). Bits past the length must be clear.
    pub fn set_word(&mut self, tm: &mut TransactionManager, index: u32, bits: u64) -> Result {
        let tail = self.len % 64;
        let past_end =
            index.checked_add(1) == Some(self.nr_words()) && tail != 0 && bits >> tail != 0;
        if index >= self.nr_words() || past_end {
            return Err(EINVAL);
        }
        self.flush_and_forget(tm)?;
        let le = bits.to_le();
        // SAFETY: As in `create`; `info` holds the bitset's array description, whose values are
        // little-endian 64-bit words, and `le` is one, alive during the call.
        self.update(tm, |info, root, new_root| unsafe {
            bindings::dm_array_set_value(
                core::ptr::addr_of_mut!((*info).array_info),
                root,
                index,
                core::ptr::from_ref(&le).cast(),
                new_root,
            )
        })
    }

    /// Rewrites every word: word `i` becomes `f(i)` (bits past the length cleared). The array
    /// is emptied (in steps, as [`DiskBitset::resize`] shrinks), deleted, and made anew with
    /// `dm_array_new`, which fills each array block whole (509 words) before inserting it:
    /// for a change of many words, far cheaper than a `dm_array_set_value` per word (a btree
    /// lookup and insert each). The CPU is offered every [`REWRITE_YIELD_WORDS`] words.
    ///
    /// On failure the bitset may be part way through: drop it (and the transaction).
    ///
    /// # Context
    ///
    /// Process context; sleeps. `f` is called in order, with array blocks locked (it may
    /// sleep, and must not touch this metadata).
    pub fn rewrite<F: FnMut(u32) -> u64>(&mut self, tm: &mut TransactionManager, f: F) -> Result {
        let len = self.len;
        self.resize(tm, 0, false)?;
        let root = self.root;
        // SAFETY: As in `create`; `root` is the bitset's (now empty) array, which is deleted
        // and replaced below.
        self.with(tm, |info| unsafe {
            bindings::dm_array_del(core::ptr::addr_of_mut!((*info).array_info), root)
        })?;
        let mut filler = Filler { f, len, calls: 0 };
        let mut new_root = 0;
        let nr_words = len.div_ceil(64);
        // SAFETY: As in `create`; `info` holds the bitset's array description, whose values are
        // little-endian 64-bit words; `fill_word::<F>` is called with `filler`, a `Filler<F>`
        // that lives until `dm_array_new` returns (it keeps no pointer to it).
        self.with(tm, |info| unsafe {
            bindings::dm_array_new(
                core::ptr::addr_of_mut!((*info).array_info),
                &mut new_root,
                nr_words,
                Some(fill_word::<F>),
                core::ptr::from_mut(&mut filler).cast(),
            )
        })?;
        self.root = new_root;
        self.len = len;
        Ok(())
    }

    /// Word `index` (bits `64 * index` to `64 * index + 63`), as the array has it after the
    /// cached word is written (`dm_array_get_value`).
    pub fn word(&mut self, tm: &mut TransactionManager, index: u32) -> Result<u64> {
        if index >= self.nr_words() {
            return Err(EINVAL);
        }
        self.flush_and_forget(tm)?;
        let root = self.root;
        let mut le = 0u64;
        // SAFETY: As in `create`; `info` holds the bitset's array description, whose values are
        // little-endian 64-bit words, and `le` is valid for writing one.
        self.with(tm, |info| unsafe {
            bindings::dm_array_get_value(
                core::ptr::addr_of_mut!((*info).array_info),
                root,
                index,
                core::ptr::from_mut(&mut le).cast(),
            )
        })?;
        Ok(u64::from_le(le))
    }

    /// Calls `f(index, word)` for every 64-bit word, in order, with a `dm_array` cursor, after
    /// writing the cached word; stops at the first error `f` returns. Bits past the length
    /// read as they are on disk (clear, unless the metadata is damaged).
    pub fn for_each_word(
        &mut self,
        tm: &mut TransactionManager,
        mut f: impl FnMut(u32, u64) -> Result,
    ) -> Result {
        self.flush_and_forget(tm)?;
        let (root, nr) = (self.root, self.nr_words());
        if nr == 0 {
            return Ok(());
        }
        // SAFETY: An all-zero cursor is a valid value for `begin`, and for `end` should
        // `begin` fail early.
        let mut c: bindings::dm_array_cursor = unsafe { core::mem::zeroed() };
        // SAFETY: As in `create`; `c` is valid for writes.
        let mut result = self.with(tm, |info| unsafe {
            bindings::dm_array_cursor_begin(
                core::ptr::addr_of_mut!((*info).array_info),
                root,
                &mut c,
            )
        });
        if result.is_ok() {
            for i in 0..nr {
                if i > 0 {
                    // SAFETY: The cursor was begun and has `nr - i` entries left.
                    result = to_result(unsafe { bindings::dm_array_cursor_next(&mut c) });
                    if result.is_err() {
                        break;
                    }
                }
                let mut value: *mut crate::ffi::c_void = core::ptr::null_mut();
                // SAFETY: The cursor is positioned on an entry.
                unsafe { bindings::dm_array_cursor_get_value(&mut c, &mut value) };
                if value.is_null() {
                    result = Err(EIO);
                    break;
                }
                // SAFETY: `value` points to the entry, a little-endian 64-bit word in the
                // array block the cursor holds (maybe not 8-byte aligned).
                let word = u64::from_le(unsafe { value.cast::<u64>().read_unaligned() });
                result = f(i, word);
                if result.is_err() {
                    break;
                }
            }
        }
        // SAFETY: Always ended, even when `begin` failed (it may leave btree nodes locked,
        // which `end` releases).
        unsafe { bindings::dm_array_cursor_end(&mut c) };
        result
    }

    /// Calls `f(index, bit)` for every bit, in order, with a cursor (`dm_bitset_cursor_*`),
    /// after writing the cached word.
    pub fn for_each(
        &mut self,
        tm: &mut TransactionManager,
        mut f: impl FnMut(u32, bool),
    ) -> Result {
        self.flush(tm)?;
        let (root, len) = (self.root, self.len);
        if len == 0 {
            return Ok(());
        }
        // SAFETY: An all-zero cursor is a valid value for `begin`, and for `end` should
        // `begin` fail early (it then releases nothing).
        let mut c: bindings::dm_bitset_cursor = unsafe { core::mem::zeroed() };
        // SAFETY: As in `create`; `c` is valid for writes.
        let begun = self.with(tm, |info| unsafe {
            bindings::dm_bitset_cursor_begin(info, root, len, &mut c)
        });
        let mut result = begun;
        if result.is_ok() {
            for i in 0..len {
                if i > 0 {
                    // SAFETY: The cursor was begun and has `len - i` entries left.
                    result = to_result(unsafe { bindings::dm_bitset_cursor_next(&mut c) });
                    if result.is_err() {
                        break;
                    }
                }
                // SAFETY: The cursor is positioned on an entry.
                f(i, unsafe { bindings::dm_bitset_cursor_get_value(&mut c) });
            }
        }
        // SAFETY: Always ended, even when `begin` failed: a failed begin can leave btree
        // nodes locked, which `end` releases (and a double end is harmless).
        unsafe { bindings::dm_bitset_cursor_end(&mut c) };
        result
    }
}

// SPDX-License-Identifier: GPL-2.0

//! On-disk bitsets (`dm_bitset`, an array of little-endian 64-bit words in a btree).
//!
//! C header: [`dm-bitset.h`](srctree/drivers/md/persistent-data/dm-bitset.h)
//!
//! A bitset is a root block number; every change returns the new root (copy-on-write), which
//! the caller keeps and saves in its superblock at commit. (The C functions leave `*new_root`
//! alone when nothing changed, so the wrappers start it at the old root.) Changes of single bits are cached in
//! the [`DiskBitset`] and written by [`DiskBitset::flush`], which must precede a commit.
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

/// The bitset's description and its one-word cache (`struct dm_disk_bitset`).
///
/// # Invariants
///
/// `info` was initialised by `dm_disk_bitset_init` for the transaction manager `tm`, in place:
/// it points into itself (`dm_array_info_init` sets the btree value type's context to the
/// array info), so it lives in its own allocation and never moves.
pub struct DiskBitset {
    info: KBox<bindings::dm_disk_bitset>,
    tm: *mut bindings::dm_transaction_manager,
}

// SAFETY: The bitset description may be used from any thread, one at a time (`&mut self`).
unsafe impl Send for DiskBitset {}

impl DiskBitset {
    /// Describes bitsets stored through `tm`.
    pub fn new(tm: &TransactionManager) -> Result<Self> {
        // SAFETY: An all-zero `dm_disk_bitset` is a valid value to be initialised.
        let mut info = KBox::new(unsafe { core::mem::zeroed() }, GFP_KERNEL)?;
        // SAFETY: `tm` is live; `info` is valid for writes, at the address it keeps.
        unsafe { bindings::dm_disk_bitset_init(tm.as_ptr(), &mut *info) };
        // INVARIANT: Initialised in place for `tm` just now.
        Ok(Self {
            info,
            tm: tm.as_ptr(),
        })
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

    /// A new, empty bitset; returns its root (`dm_bitset_empty`).
    pub fn empty(&mut self, tm: &mut TransactionManager) -> Result<u64> {
        let mut root = 0;
        // SAFETY: `info` is initialised for `tm`, which `&mut` gives us alone.
        self.with(tm, |info| unsafe {
            bindings::dm_bitset_empty(info, &mut root)
        })?;
        Ok(root)
    }

    /// Resizes bitset `root` from `old_len` to `new_len` bits, new bits set to `value`.
    pub fn resize(
        &mut self,
        tm: &mut TransactionManager,
        root: u64,
        old_len: u32,
        new_len: u32,
        value: bool,
    ) -> Result<u64> {
        let mut new_root = root;
        // SAFETY: As in `empty`.
        self.with(tm, |info| unsafe {
            bindings::dm_bitset_resize(info, root, old_len, new_len, value, &mut new_root)
        })?;
        Ok(new_root)
    }

    /// Sets bit `index` of bitset `root`; returns the new root.
    pub fn set(&mut self, tm: &mut TransactionManager, root: u64, index: u32) -> Result<u64> {
        let mut new_root = root;
        // SAFETY: As in `empty`.
        self.with(tm, |info| unsafe {
            bindings::dm_bitset_set_bit(info, root, index, &mut new_root)
        })?;
        Ok(new_root)
    }

    /// Clears bit `index` of bitset `root`; returns the new root.
    pub fn clear(&mut self, tm: &mut TransactionManager, root: u64, index: u32) -> Result<u64> {
        let mut new_root = root;
        // SAFETY: As in `empty`.
        self.with(tm, |info| unsafe {
            bindings::dm_bitset_clear_bit(info, root, index, &mut new_root)
        })?;
        Ok(new_root)
    }

    /// Tests bit `index` of bitset `root`; returns the bit and the new root (reading may flush
    /// the cached word).
    pub fn test(
        &mut self,
        tm: &mut TransactionManager,
        root: u64,
        index: u32,
    ) -> Result<(bool, u64)> {
        let mut new_root = root;
        let mut bit = false;
        // SAFETY: As in `empty`.
        self.with(tm, |info| unsafe {
            bindings::dm_bitset_test_bit(info, root, index, &mut new_root, &mut bit)
        })?;
        Ok((bit, new_root))
    }

    /// Writes the cached word of bitset `root`; returns the new root (`dm_bitset_flush`).
    pub fn flush(&mut self, tm: &mut TransactionManager, root: u64) -> Result<u64> {
        let mut new_root = root;
        // SAFETY: As in `empty`.
        self.with(tm, |info| unsafe {
            bindings::dm_bitset_flush(info, root, &mut new_root)
        })?;
        Ok(new_root)
    }

    /// Calls `f(index, bit)` for each of the `len` bits of bitset `root`, in order, with a
    /// cursor (`dm_bitset_cursor_*`). The bitset must be flushed.
    pub fn for_each(
        &mut self,
        tm: &mut TransactionManager,
        root: u64,
        len: u32,
        mut f: impl FnMut(u32, bool),
    ) -> Result {
        if len == 0 {
            return Ok(());
        }
        // SAFETY: An all-zero cursor is a valid value to be initialised by `begin`.
        let mut c: bindings::dm_bitset_cursor = unsafe { core::mem::zeroed() };
        // SAFETY: As in `empty`; `c` is valid for writes.
        self.with(tm, |info| unsafe {
            bindings::dm_bitset_cursor_begin(info, root, len, &mut c)
        })?;
        let mut result = Ok(());
        for i in 0..len {
            if i > 0 {
                // SAFETY: The cursor was begun and has `len - i` entries left.
                if let Err(e) = to_result(unsafe { bindings::dm_bitset_cursor_next(&mut c) }) {
                    result = Err(e);
                    break;
                }
            }
            // SAFETY: The cursor is positioned on an entry.
            f(i, unsafe { bindings::dm_bitset_cursor_get_value(&mut c) });
        }
        // SAFETY: The cursor was begun; ending it releases its locked blocks.
        unsafe { bindings::dm_bitset_cursor_end(&mut c) };
        result
    }
}

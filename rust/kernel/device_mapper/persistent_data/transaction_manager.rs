// SPDX-License-Identifier: GPL-2.0

//! The transaction manager with the metadata space map: copy-on-write ("shadowing") of
//! metadata blocks, so that a commit switches atomically from one consistent state to the next.
//!
//! C headers: [`dm-transaction-manager.h`](srctree/drivers/md/persistent-data/dm-transaction-manager.h),
//! [`dm-space-map.h`](srctree/drivers/md/persistent-data/dm-space-map.h)
//!
//! A commit is two steps: [`TransactionManager::pre_commit`] writes every changed block but the
//! superblock, then the caller fills its superblock (with [`TransactionManager::space_map_root`]
//! and its own roots) and [`TransactionManager::commit`] writes it last. A crash before the
//! superblock is written leaves the previous superblock, which only points at blocks the
//! transaction did not change.
//!
//! # Contexts
//!
//! Process context only (all of it does I/O). Not thread-safe: callers serialise use of one
//! transaction manager (the `&mut self` methods enforce it for changes).

use super::block_manager::{BlockManager, BlockValidator};
use crate::{
    bindings,
    error::{code::*, to_result, Result},
};
use core::ptr::NonNull;

/// The size of the space map root a superblock stores (`SPACE_MAP_ROOT_SIZE`).
pub const SPACE_MAP_ROOT_SIZE: usize = 128;

/// The block size the metadata space map works with (`DM_SM_METADATA_BLOCK_SIZE`, 4 KiB): its
/// index block is exactly that big.
pub const METADATA_BLOCK_SIZE: u32 = 4096;

/// The most blocks a metadata space map can track (`DM_SM_METADATA_MAX_BLOCKS` of
/// `dm-space-map-metadata.h`: 255 index entries of 16320 blocks each).
pub const METADATA_MAX_BLOCKS: u64 = 255 * ((1 << 14) - 64);

/// Checks what the space map code would trust in a saved root (`struct disk_sm_root`: four
/// little-endian u64, nr_blocks, nr_allocated, bitmap_root, ref_count_root) before it opens it:
/// a root that checks out but lies would make it index out of bounds.
fn check_sm_root(root: &[u8], device_blocks: u64) -> Result {
    let word = |i: usize| {
        root.get(i * 8..i * 8 + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or(EINVAL)
    };
    let (nr_blocks, nr_allocated) = (word(0)?, word(1)?);
    let (bitmap_root, ref_count_root) = (word(2)?, word(3)?);
    if nr_blocks > METADATA_MAX_BLOCKS.min(device_blocks)
        || nr_allocated > nr_blocks
        || bitmap_root >= nr_blocks
        || ref_count_root >= nr_blocks
    {
        return Err(EINVAL);
    }
    Ok(())
}

/// A transaction manager and its metadata space map over a [`BlockManager`].
///
/// # Invariants
///
/// `tm` and `sm` were created together over `bm`'s manager and are destroyed in drop, before
/// `bm`.
pub struct TransactionManager {
    tm: NonNull<bindings::dm_transaction_manager>,
    sm: NonNull<bindings::dm_space_map>,
    bm: BlockManager,
}

// SAFETY: The transaction manager may be used from any thread, one thread at a time: it is not
// `Sync` (share it behind a mutex), and changes take `&mut self`.
unsafe impl Send for TransactionManager {}

impl TransactionManager {
    /// Formats new metadata: an empty metadata space map covering the device, with the
    /// superblock at `superblock` (`dm_tm_create_with_sm`). The block manager's blocks must be
    /// [`METADATA_BLOCK_SIZE`] bytes.
    pub fn create(bm: BlockManager, superblock: u64) -> Result<Self> {
        if bm.block_size() != METADATA_BLOCK_SIZE || superblock >= bm.nr_blocks() {
            return Err(EINVAL);
        }
        let mut tm = core::ptr::null_mut();
        let mut sm = core::ptr::null_mut();
        // SAFETY: The block manager is live; `tm` and `sm` are valid for writes.
        to_result(unsafe {
            bindings::dm_tm_create_with_sm(bm.as_ptr(), superblock, &mut tm, &mut sm)
        })?;
        Self::from_parts(tm, sm, bm)
    }

    /// Opens existing metadata whose space map root was saved in the superblock
    /// (`dm_tm_open_with_sm`). The root is checked first: its block count must fit the device
    /// and the space map, and its roots lie within it.
    pub fn open(bm: BlockManager, superblock: u64, sm_root: &[u8]) -> Result<Self> {
        if bm.block_size() != METADATA_BLOCK_SIZE || superblock >= bm.nr_blocks() {
            return Err(EINVAL);
        }
        check_sm_root(sm_root, bm.nr_blocks())?;
        let mut root = [0u8; SPACE_MAP_ROOT_SIZE];
        let saved = root.get_mut(..sm_root.len()).ok_or(EINVAL)?;
        saved.copy_from_slice(sm_root);
        let mut tm = core::ptr::null_mut();
        let mut sm = core::ptr::null_mut();
        // SAFETY: The block manager is live; `root` is a writable copy of the root (the C
        // function takes a non-const pointer); `tm` and `sm` are valid for writes.
        to_result(unsafe {
            bindings::dm_tm_open_with_sm(
                bm.as_ptr(),
                superblock,
                root.as_mut_ptr().cast(),
                sm_root.len(),
                &mut tm,
                &mut sm,
            )
        })?;
        Self::from_parts(tm, sm, bm)
    }

    fn from_parts(
        tm: *mut bindings::dm_transaction_manager,
        sm: *mut bindings::dm_space_map,
        bm: BlockManager,
    ) -> Result<Self> {
        match (NonNull::new(tm), NonNull::new(sm)) {
            // INVARIANT: Both were just created over `bm`.
            (Some(tm), Some(sm)) => Ok(Self { tm, sm, bm }),
            _ => Err(EINVAL),
        }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::dm_transaction_manager {
        self.tm.as_ptr()
    }

    /// The block manager underneath, e.g. to lock the superblock.
    pub fn block_manager(&self) -> &BlockManager {
        &self.bm
    }

    /// Writes every block the transaction changed, except the superblock (`dm_tm_pre_commit`).
    pub fn pre_commit(&mut self) -> Result {
        // SAFETY: The transaction manager is live and ours alone (`&mut self`).
        to_result(unsafe { bindings::dm_tm_pre_commit(self.as_ptr()) })
    }

    /// Writes the superblock at `location` last and starts a new transaction (`dm_tm_commit`).
    ///
    /// The superblock is rewritten whole: `fill` gets it zeroed, with the space map's root to
    /// store, and fills in everything; `validator` then prepares it (checksum) as it is written.
    /// It runs [`TransactionManager::pre_commit`] first (again, if the caller did), so that the
    /// root it saves describes blocks already on disk.
    pub fn commit(
        &mut self,
        location: u64,
        validator: &'static BlockValidator,
        fill: impl FnOnce(&mut [u8], &[u8; SPACE_MAP_ROOT_SIZE]),
    ) -> Result {
        self.pre_commit()?;
        let sm_root = self.space_map_root()?;
        let mut superblock = self.bm.write_lock_zero(location, validator)?;
        fill(superblock.data_mut(), &sm_root);
        let b = superblock.into_raw();
        // SAFETY: The transaction manager is live and ours alone; `b` is a write-locked block
        // of its block manager, whose lock `dm_tm_commit` releases.
        to_result(unsafe { bindings::dm_tm_commit(self.as_ptr(), b.as_ptr()) })
    }

    /// The space map's root, to save in the superblock (`dm_sm_copy_root`).
    pub fn space_map_root(&self) -> Result<[u8; SPACE_MAP_ROOT_SIZE]> {
        let mut root = [0u8; SPACE_MAP_ROOT_SIZE];
        // SAFETY: The space map is live; `root` is writable for its length.
        to_result(unsafe {
            bindings::dm_sm_copy_root(self.sm.as_ptr(), root.as_mut_ptr().cast(), root.len())
        })?;
        Ok(root)
    }

    /// How many metadata blocks there are (`dm_sm_get_nr_blocks`).
    pub fn nr_blocks(&self) -> Result<u64> {
        let mut n = 0;
        // SAFETY: The space map is live; `n` is valid for writes.
        to_result(unsafe { bindings::dm_sm_get_nr_blocks(self.sm.as_ptr(), &mut n) })?;
        Ok(n)
    }

    /// How many metadata blocks are free (`dm_sm_get_nr_free`).
    pub fn nr_free(&self) -> Result<u64> {
        let mut n = 0;
        // SAFETY: The space map is live; `n` is valid for writes.
        to_result(unsafe { bindings::dm_sm_get_nr_free(self.sm.as_ptr(), &mut n) })?;
        Ok(n)
    }
}

impl Drop for TransactionManager {
    fn drop(&mut self) {
        // SAFETY: By the type invariants both are live and destroyed once, here, before the
        // block manager (a field, dropped after this).
        unsafe {
            bindings::dm_sm_destroy(self.sm.as_ptr());
            bindings::dm_tm_destroy(self.tm.as_ptr());
        }
    }
}

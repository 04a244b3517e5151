// SPDX-License-Identifier: GPL-2.0

//! The block manager: fixed-size metadata blocks on a device, cached by dm-bufio, locked for
//! reading or writing, checked and prepared by validators.
//!
//! C header: [`drivers/md/persistent-data/dm-block-manager.h`](srctree/drivers/md/persistent-data/dm-block-manager.h)
//!
//! # Contexts and aliasing
//!
//! Everything here sleeps (it reads and writes the device): process context only.
//!
//! The block manager's own locks are no-ops unless `CONFIG_DM_DEBUG_BLOCK_MANAGER_LOCKING`
//! is set, so the types do the excluding: read locks borrow the manager shared, and write
//! locks (and everything else that changes it) borrow it `&mut`. A block can therefore not be
//! read-locked and write-locked, or write-locked twice, at the same time; and the manager is
//! not `Sync` (share it behind a mutex).

use crate::{
    bindings,
    device_mapper::Device,
    error::{from_err_ptr, to_result, Error, Result},
    str::CStr,
    sync::Arc,
    types::Opaque,
};
use core::{marker::PhantomData, ptr::NonNull};

/// The error a [`Validator`] returns for a block whose checksum is wrong (`EILSEQ`, as the
/// validators of persistent-data itself).
pub fn bad_checksum() -> Error {
    Error::from_errno(-(bindings::EILSEQ as crate::ffi::c_int))
}

/// The checksum persistent-data uses on disk: crc32c of `data` (seeded with `!0`, not
/// inverted at the end), XORed with `init_xor` (`dm_bm_checksum`).
///
/// # Examples
///
/// CRC-32C's published check value for `"123456789"` is `0xe3069283`; persistent-data's form
/// is its inverse:
///
/// ```
/// use kernel::device_mapper::persistent_data::block_manager::checksum;
///
/// assert_eq!(checksum(b"123456789", 0), !0xe306_9283);
/// assert_eq!(checksum(b"123456789", 0x5a5a_5a5a), !0xe306_9283 ^ 0x5a5a_5a5a);
/// ```
pub fn checksum(data: &[u8], init_xor: u32) -> u32 {
    // SAFETY: `data` is valid for reads of its length.
    unsafe { bindings::dm_bm_checksum(data.as_ptr().cast(), data.len(), init_xor) }
}

/// Checks blocks as they are read and prepares them before they are written, e.g. by
/// verifying and setting a checksum and the block's own location.
pub trait Validator: 'static {
    /// Fills in what `check` verifies, just before the block is written.
    fn prepare_for_write(data: &mut [u8], location: u64);

    /// Verifies a block that was read; an error fails the lock that read it.
    fn check(data: &[u8], location: u64) -> Result;
}

/// A validator as the block manager sees it (`struct dm_block_validator`).
///
/// The block manager remembers which validator a cached block was checked with and compares
/// addresses, so declare each one as a `static`:
///
/// ```
/// use kernel::{
///     c_str,
///     device_mapper::persistent_data::block_manager::{BlockValidator, Validator},
///     prelude::*,
/// };
///
/// /// A block that holds its own location in its first eight bytes.
/// struct Superblock;
///
/// impl Validator for Superblock {
///     fn prepare_for_write(data: &mut [u8], location: u64) {
///         if let Some(d) = data.get_mut(..8) {
///             d.copy_from_slice(&location.to_le_bytes());
///         }
///     }
///
///     fn check(data: &[u8], location: u64) -> Result {
///         match data.get(..8) {
///             Some(d) if d == location.to_le_bytes() => Ok(()),
///             _ => Err(EINVAL),
///         }
///     }
/// }
///
/// static SUPERBLOCK: BlockValidator = BlockValidator::new::<Superblock>(c_str!("superblock"));
/// ```
#[repr(transparent)]
pub struct BlockValidator(Opaque<bindings::dm_block_validator>);

// SAFETY: The validator is immutable after construction; its callbacks may run on any thread.
unsafe impl Sync for BlockValidator {}

impl BlockValidator {
    /// The validator for `V`, named `name` in the block manager's messages.
    pub const fn new<V: Validator>(name: &'static CStr) -> Self {
        Self(Opaque::new(bindings::dm_block_validator {
            name: crate::str::as_char_ptr_in_const_context(name),
            prepare_for_write: Some(prepare_for_write_callback::<V>),
            check: Some(check_callback::<V>),
        }))
    }

    fn as_ptr(&self) -> *const bindings::dm_block_validator {
        self.0.get()
    }
}

/// # Safety
///
/// Called by the block manager (dm-bufio) with a dirty block it is about to write out.
///
/// dm-bufio may write a dirty block back while its holder still has it write-locked (to make
/// room in its cache, or on a flush), in C as here: the holder's bytes and this callback's then
/// overlap, and a block written back mid-change is dirty again and written once more later.
/// This is persistent-data's design; Rust code only changes block data through `data_mut` of
/// a write lock, and validators only compute over the bytes.
unsafe extern "C" fn prepare_for_write_callback<V: Validator>(
    _v: *const bindings::dm_block_validator,
    b: *mut bindings::dm_block,
    block_size: usize,
) {
    // SAFETY: The block's data is `block_size` bytes (see above for who else may hold it).
    let (data, location) = unsafe {
        (
            core::slice::from_raw_parts_mut(bindings::dm_block_data(b).cast(), block_size),
            bindings::dm_block_location(b),
        )
    };
    V::prepare_for_write(data, location);
}

/// # Safety
///
/// Called by the block manager with a block it has read and is about to hand out; others may
/// hold it read-locked (an unchecked lock checks on the next checked one), nobody writes it.
unsafe extern "C" fn check_callback<V: Validator>(
    _v: *const bindings::dm_block_validator,
    b: *mut bindings::dm_block,
    block_size: usize,
) -> crate::ffi::c_int {
    // SAFETY: The data is `block_size` bytes that nobody writes during the check.
    let (data, location) = unsafe {
        (
            core::slice::from_raw_parts(bindings::dm_block_data(b).cast(), block_size) as &[u8],
            bindings::dm_block_location(b),
        )
    };
    match V::check(data, location) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// A block manager over a metadata device (`dm_block_manager_create`).
///
/// # Invariants
///
/// `bm` is a live block manager over `device`'s block device, destroyed only in drop, after
/// every lock (which borrows the manager) is released.
pub struct BlockManager {
    bm: NonNull<bindings::dm_block_manager>,
    device: Arc<Device>,
}

// SAFETY: The block manager may be used from any thread; it is not `Sync` (see the module
// documentation): one thread at a time uses it, e.g. behind a mutex.
unsafe impl Send for BlockManager {}

impl BlockManager {
    /// Creates a block manager over `device` with blocks of `block_size` bytes;
    /// `max_held_per_thread` is how many buffers dm-bufio keeps in reserve (C users pass 5).
    pub fn new(device: &Arc<Device>, block_size: u32, max_held_per_thread: u32) -> Result<Self> {
        // SAFETY: The device's block device is open while `device` is held, which the manager
        // keeps until it is destroyed.
        let bm = unsafe {
            bindings::dm_block_manager_create(device.bdev(), block_size, max_held_per_thread)
        };
        let bm = from_err_ptr(bm)?;
        // INVARIANT: Created just now; `device` is kept.
        Ok(Self {
            bm: NonNull::new(bm).ok_or(crate::error::code::ENOMEM)?,
            device: device.clone(),
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::dm_block_manager {
        self.bm.as_ptr()
    }

    /// The device the manager works on.
    pub fn device(&self) -> &Arc<Device> {
        &self.device
    }

    /// The block size in bytes.
    pub fn block_size(&self) -> u32 {
        // SAFETY: The manager is live.
        unsafe { bindings::dm_bm_block_size(self.as_ptr()) }
    }

    /// How many blocks the device holds.
    pub fn nr_blocks(&self) -> u64 {
        // SAFETY: The manager is live.
        unsafe { bindings::dm_bm_nr_blocks(self.as_ptr()) }
    }

    fn lock(
        &self,
        f: unsafe extern "C" fn(
            *mut bindings::dm_block_manager,
            bindings::dm_block_t,
            *const bindings::dm_block_validator,
            *mut *mut bindings::dm_block,
        ) -> crate::ffi::c_int,
        location: u64,
        validator: Option<&'static BlockValidator>,
    ) -> Result<NonNull<bindings::dm_block>> {
        let v = validator.map_or(core::ptr::null(), BlockValidator::as_ptr);
        let mut b = core::ptr::null_mut();
        // SAFETY: The manager is live, the validator static or NULL (no check), `b` valid for
        // writes.
        to_result(unsafe { f(self.as_ptr(), location, v, &mut b) })?;
        NonNull::new(b).ok_or(crate::error::code::EIO)
    }

    /// Locks block `location` for reading, checked by `validator`.
    pub fn read_lock(
        &self,
        location: u64,
        validator: &'static BlockValidator,
    ) -> Result<ReadBlock<'_>> {
        let b = self.lock(bindings::dm_bm_read_lock, location, Some(validator))?;
        // INVARIANT: Read-locked just now.
        Ok(ReadBlock {
            block: Block::new(b, self),
        })
    }

    /// Locks block `location` for reading without any check, e.g. to see whether a
    /// superblock is all zeroes (not yet formatted) before checking it. Fails with `EINVAL`
    /// for a cached block already checked by a validator.
    pub fn read_lock_unchecked(&self, location: u64) -> Result<ReadBlock<'_>> {
        let b = self.lock(bindings::dm_bm_read_lock, location, None)?;
        // INVARIANT: Read-locked just now.
        Ok(ReadBlock {
            block: Block::new(b, self),
        })
    }

    /// Locks block `location` for writing without reading it: its data starts zeroed.
    pub fn write_lock_zero(
        &mut self,
        location: u64,
        validator: &'static BlockValidator,
    ) -> Result<WriteBlock<'_>> {
        let b = self.lock(bindings::dm_bm_write_lock_zero, location, Some(validator))?;
        // INVARIANT: Write-locked just now.
        Ok(WriteBlock {
            block: Block::new(b, self),
        })
    }

    /// Writes all dirty blocks and waits for them (`dm_bm_flush`).
    pub fn flush(&mut self) -> Result {
        // SAFETY: The manager is live.
        to_result(unsafe { bindings::dm_bm_flush(self.as_ptr()) })
    }

    /// Whether the manager refuses write locks.
    pub fn is_read_only(&self) -> bool {
        // SAFETY: The manager is live.
        unsafe { bindings::dm_bm_is_read_only(self.as_ptr()) }
    }

    /// Refuses write locks from now on (e.g. after a metadata error).
    pub fn set_read_only(&mut self) {
        // SAFETY: The manager is live.
        unsafe { bindings::dm_bm_set_read_only(self.as_ptr()) }
    }

    /// Allows write locks again.
    pub fn set_read_write(&mut self) {
        // SAFETY: The manager is live.
        unsafe { bindings::dm_bm_set_read_write(self.as_ptr()) }
    }
}

impl Drop for BlockManager {
    /// # Context
    ///
    /// Sleeps (writes back dirty blocks and waits for them): process context.
    fn drop(&mut self) {
        // SAFETY: By the type invariants the manager is live and no lock is held (locks borrow
        // it). Destroying it writes back dirty blocks.
        unsafe { bindings::dm_block_manager_destroy(self.as_ptr()) }
    }
}

/// A locked block; unlocked when dropped.
///
/// # Invariants
///
/// `b` is locked by the manager `'a` borrows, and unlocked only in drop.
struct Block<'a> {
    b: NonNull<bindings::dm_block>,
    size: usize,
    _bm: PhantomData<&'a BlockManager>,
}

impl<'a> Block<'a> {
    fn new(b: NonNull<bindings::dm_block>, bm: &'a BlockManager) -> Self {
        Self {
            b,
            size: bm.block_size() as usize,
            _bm: PhantomData,
        }
    }

    fn location(&self) -> u64 {
        // SAFETY: The block is locked.
        unsafe { bindings::dm_block_location(self.b.as_ptr()) }
    }

    fn data_ptr(&self) -> *mut u8 {
        // SAFETY: The block is locked.
        unsafe { bindings::dm_block_data(self.b.as_ptr()).cast() }
    }
}

impl Drop for Block<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants the block is locked, and unlocked once, here.
        unsafe { bindings::dm_bm_unlock(self.b.as_ptr()) }
    }
}

/// A block locked for reading (others may read it at the same time).
pub struct ReadBlock<'a> {
    block: Block<'a>,
}

impl ReadBlock<'_> {
    /// The block's number.
    pub fn location(&self) -> u64 {
        self.block.location()
    }

    /// The block's bytes.
    pub fn data(&self) -> &[u8] {
        // SAFETY: A read-locked block's data is `size` bytes that nobody writes while it is
        // locked: write locks need the manager `&mut`, which this lock's borrow excludes.
        unsafe { core::slice::from_raw_parts(self.block.data_ptr(), self.block.size) }
    }
}

/// A block locked for writing (nobody else holds it).
pub struct WriteBlock<'a> {
    block: Block<'a>,
}

impl WriteBlock<'_> {
    /// Gives up the lock to someone who will release it (e.g. `dm_tm_commit`).
    pub(crate) fn into_raw(self) -> NonNull<bindings::dm_block> {
        core::mem::ManuallyDrop::new(self).block.b
    }

    /// The block's number.
    pub fn location(&self) -> u64 {
        self.block.location()
    }

    /// The block's bytes.
    pub fn data(&self) -> &[u8] {
        // SAFETY: A write-locked block's data is `size` bytes that no other lock reaches while
        // this one exists (it borrows the manager `&mut`); see `prepare_for_write_callback`
        // for dm-bufio's write-back.
        unsafe { core::slice::from_raw_parts(self.block.data_ptr(), self.block.size) }
    }

    /// The block's bytes, to change; the validator prepares them before they are written.
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: As above, and `&mut self` makes this the only access.
        unsafe { core::slice::from_raw_parts_mut(self.block.data_ptr(), self.block.size) }
    }
}

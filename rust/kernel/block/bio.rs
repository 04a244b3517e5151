// SPDX-License-Identifier: GPL-2.0

//! Block I/O requests as bios, for stacking drivers such as device-mapper targets.
//!
//! C header: [`include/linux/bio.h`](srctree/include/linux/bio.h)
//!
//! A stacking driver receives a bio, and from then on it must do exactly one of: send it on
//! (to the device it was remapped to), give it back to whoever handed it over (device-mapper
//! core, for a remapped bio), or end it with a status. [`Bio`] is that obligation as a value:
//! its methods that do one of those things consume it, and dropping it ends the bio with an
//! I/O error, so a bio can be neither lost (its submitter would wait forever) nor ended twice.
//!
//! # Contexts
//!
//! Bios are ended from any context, including hard and soft interrupts: ending one (`end`,
//! dropping it, dropping a [`BioList`]) and reading or changing its fields never sleeps.
//! Ending one inside its own `end_io` completes it when `end_io` returns, without calling
//! `end_io` again (re-entering it on the same stack could recurse without bound).
//! Submitting one ([`Bio::submit`]) may sleep.

use crate::{
    bindings,
    device_mapper::per_bio::{Header, PerBioData},
    error::{code::EINVAL, Result},
};
use core::{marker::PhantomData, mem::ManuallyDrop, ptr::NonNull};

/// The sector size of the block layer, in bytes, as a shift.
pub const SECTOR_SHIFT: u32 = 9;

/// The operation of a bio (`enum req_op`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Read sectors (`REQ_OP_READ`).
    Read,
    /// Write sectors (`REQ_OP_WRITE`); an empty write with [`Bio::is_preflush`] is a flush.
    Write,
    /// Flush the volatile write cache (`REQ_OP_FLUSH`, only seen by request-based drivers).
    Flush,
    /// Discard sectors (`REQ_OP_DISCARD`).
    Discard,
    /// Securely erase sectors (`REQ_OP_SECURE_ERASE`).
    SecureErase,
    /// Write zeroes to sectors (`REQ_OP_WRITE_ZEROES`).
    WriteZeroes,
    /// Any other operation (zone management, driver-private), by its number.
    Other(u32),
}

impl Operation {
    fn from_opf(opf: bindings::blk_opf_t) -> Self {
        match opf & bindings::REQ_OP_MASK {
            bindings::req_op_REQ_OP_READ => Self::Read,
            bindings::req_op_REQ_OP_WRITE => Self::Write,
            bindings::req_op_REQ_OP_FLUSH => Self::Flush,
            bindings::req_op_REQ_OP_DISCARD => Self::Discard,
            bindings::req_op_REQ_OP_SECURE_ERASE => Self::SecureErase,
            bindings::req_op_REQ_OP_WRITE_ZEROES => Self::WriteZeroes,
            other => Self::Other(other),
        }
    }
}

/// The completion status of a bio (`blk_status_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(bindings::blk_status_t);

impl Status {
    /// Success (`BLK_STS_OK`).
    pub const OK: Status = Status(bindings::BLK_STS_OK as bindings::blk_status_t);
    /// An I/O error (`BLK_STS_IOERR`).
    pub const IOERR: Status = Status(bindings::BLK_STS_IOERR);
    /// The operation is not supported (`BLK_STS_NOTSUPP`).
    pub const NOTSUPP: Status = Status(bindings::BLK_STS_NOTSUPP);
    /// Out of space (`BLK_STS_NOSPC`).
    pub const NOSPC: Status = Status(bindings::BLK_STS_NOSPC);

    /// Whether this is success.
    pub fn is_ok(self) -> bool {
        self == Self::OK
    }

    /// The raw value.
    pub fn as_raw(self) -> bindings::blk_status_t {
        self.0
    }

    pub(crate) fn from_raw(raw: bindings::blk_status_t) -> Self {
        Status(raw)
    }
}

/// A bio that this driver has to send on, hand back or end (see the [module documentation]).
///
/// `P` is the type of the per-bio data a device-mapper target keeps in front of the bio
/// (`dm_per_bio_data`); it is `()` for bios without any.
///
/// [module documentation]: self
///
/// # Invariants
///
/// `ptr` points to a valid `struct bio` that this value is responsible for: nobody ends or
/// submits it while this value exists. It is a bio device-mapper handed to a target (a clone
/// in a `dm_target_io`) whose `per_io_data_size` is `PerBioData::<P>::SIZE`, and its per-bio
/// data holds an initialised `PerBioData<P>` (the kernel crate's header, then the target's
/// `P`: see `device_mapper::per_bio`).
pub struct Bio<P = ()> {
    ptr: NonNull<bindings::bio>,
    _p: PhantomData<P>,
}

// SAFETY: A bio is not tied to the thread that received it: it may be submitted or ended from
// any thread, which is what moving a `Bio` to another thread allows. The per-bio data moves
// with it, hence the bound on `P`.
unsafe impl<P: Send> Send for Bio<P> {}

// SAFETY: `&Bio` only reads the bio's fields, which only its owner changes.
unsafe impl<P: Sync> Sync for Bio<P> {}

impl<P> Bio<P> {
    /// Takes responsibility for a bio.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid bio that device-mapper handed to a target, that the caller
    /// is responsible for and hands over (no one else ends or submits it), and whose per-bio
    /// data holds an initialised `PerBioData<P>` (see the type invariants).
    pub(crate) unsafe fn from_raw(ptr: NonNull<bindings::bio>) -> Self {
        // INVARIANT: Guaranteed by the safety requirements.
        Self {
            ptr,
            _p: PhantomData,
        }
    }

    /// The bio's address, e.g. to compare bios.
    pub fn as_ptr(&self) -> NonNull<bindings::bio> {
        self.ptr
    }

    /// Gives up responsibility for the bio, returning its pointer.
    pub fn into_raw(self) -> NonNull<bindings::bio> {
        ManuallyDrop::new(self).ptr
    }

    /// The bio, for reading and writing single fields through the pointer: no reference to the
    /// whole `struct bio` is made, as the block layer may change fields this value does not
    /// own (e.g. the remaining count of a chained bio) on other CPUs meanwhile.
    fn raw(&self) -> *mut bindings::bio {
        self.ptr.as_ptr()
    }

    /// The operation and flags (`bi_opf`).
    fn opf(&self) -> bindings::blk_opf_t {
        // SAFETY: By the type invariants `ptr` points to a valid bio; its submitter set `bi_opf`,
        // which nothing changes while this value holds the bio.
        unsafe { (*self.raw()).bi_opf }
    }

    /// The position (`bi_iter`): only the bio's holder, this value, changes it.
    fn iter(&self) -> bindings::bvec_iter {
        // SAFETY: By the type invariants `ptr` points to a valid bio, whose iterator only this
        // value changes while it exists.
        unsafe { (*self.raw()).bi_iter }
    }

    /// The operation.
    pub fn op(&self) -> Operation {
        Operation::from_opf(self.opf())
    }

    /// Whether the operation writes (writes, discards, write-zeroes, flushes, ...).
    pub fn is_write(&self) -> bool {
        // Same as `op_is_write()`: writing operations have odd numbers.
        self.opf() & 1 != 0
    }

    /// Whether the volatile write cache must be flushed before the bio's data is written
    /// (`REQ_PREFLUSH`).
    pub fn is_preflush(&self) -> bool {
        self.opf() & bindings::REQ_PREFLUSH != 0
    }

    /// Whether the bio's data must be on stable storage when it completes (`REQ_FUA`).
    pub fn is_fua(&self) -> bool {
        self.opf() & bindings::REQ_FUA != 0
    }

    /// The first sector, in 512-byte units.
    pub fn sector(&self) -> u64 {
        self.iter().bi_sector
    }

    /// Sets the first sector.
    pub fn set_sector(&mut self, sector: u64) {
        // SAFETY: By the type invariants the bio is valid and only this value changes its
        // position (`&mut self`).
        unsafe { (*self.raw()).bi_iter.bi_sector = sector };
    }

    /// The size in bytes.
    pub fn size(&self) -> u32 {
        self.iter().bi_size
    }

    /// The size in 512-byte sectors.
    pub fn sectors(&self) -> u32 {
        self.size() >> SECTOR_SHIFT
    }

    /// Narrows a discard to `sectors` sectors from `sector` (a discard carries no data, so its
    /// range can be set freely). Fails with `EINVAL` for other operations, or if the new range
    /// is not within the old one.
    pub fn narrow_discard(&mut self, sector: u64, sectors: u32) -> Result {
        let (old_start, old_len) = (self.sector(), u64::from(self.sectors()));
        let bytes = sectors.checked_mul(1 << SECTOR_SHIFT).ok_or(EINVAL)?;
        let inside = sector >= old_start
            && sector
                .checked_add(u64::from(sectors))
                .is_some_and(|end| end <= old_start.saturating_add(old_len));
        if self.op() != Operation::Discard || !inside {
            return Err(EINVAL);
        }
        // SAFETY: By the type invariants the bio is valid and only this value changes its
        // position (`&mut self`).
        unsafe {
            (*self.raw()).bi_iter.bi_sector = sector;
            (*self.raw()).bi_iter.bi_size = bytes;
        }
        Ok(())
    }

    /// Makes the bio go to `bdev` (`bio_set_dev`).
    ///
    /// # Safety
    ///
    /// `bdev` must be a valid block device that stays open until the bio completes.
    pub(crate) unsafe fn set_bdev(&mut self, bdev: *mut bindings::block_device) {
        self.header().set_misdirected(false);
        // SAFETY: By the type invariants the bio is valid and ours to change; `bdev` is valid by
        // the safety requirements.
        unsafe { bindings::bio_set_dev(self.ptr.as_ptr(), bdev) }
    }

    /// The per-bio data.
    pub fn data(&self) -> &P {
        // SAFETY: By the type invariants the per-bio data holds an initialised
        // `PerBioData<P>`, and this value is the only one that reaches its `data`.
        unsafe { &*core::ptr::addr_of!((*self.per_bio()).data) }
    }

    /// The per-bio data, to change.
    pub fn data_mut(&mut self) -> &mut P {
        // SAFETY: As for `data`; `&mut self` makes this the only access.
        unsafe { &mut *core::ptr::addr_of_mut!((*self.per_bio()).data) }
    }

    /// The kernel crate's header in the per-bio data.
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: By the type invariants the per-bio data holds an initialised
        // `PerBioData<P>`; the header is only used through atomics.
        unsafe { &*core::ptr::addr_of!((*self.per_bio()).header) }
    }

    fn per_bio(&self) -> *mut PerBioData<P> {
        // SAFETY: By the type invariants, the bio belongs to a device-mapper target whose
        // per-bio data is `PerBioData::<P>::SIZE` bytes.
        unsafe { bindings::dm_per_bio_data(self.ptr.as_ptr(), PerBioData::<P>::SIZE).cast() }
    }

    /// Sends the bio to the device it is set to, as device-mapper sends the bios a target
    /// remaps (`dm_submit_bio_remap`): associated with the original bio's blk-cgroup, its I/O
    /// accounted to the mapped device (once: device-mapper's accounting skips a bio already
    /// accounted), the `block_bio_remap` tracepoint, then `submit_bio_noacct`. A target that
    /// submits a bio itself (deferred, or after a copy) so does what device-mapper would have
    /// done had `map` returned it remapped.
    ///
    /// # Context
    ///
    /// May sleep (`submit_bio_noacct` may wait, e.g. for a request or a throttle): process
    /// context, as a target's `map`, its work items and kcopyd's completions run in; never
    /// from `end_io` or another completion in interrupt context.
    ///
    /// Inside the bio's own `end_io` (a misuse of the context, but not one that may make
    /// `end_io` run again on this stack) the bio is submitted when `end_io` returns.
    ///
    /// A bio pointed at a device of another target (see `Device::set_bio_device`) is failed
    /// with an I/O error instead.
    pub fn submit(self) {
        if self.header().misdirected() {
            crate::pr_warn!("a bio was pointed at a device of another target: failed\n");
            self.end(Status::IOERR);
            return;
        }
        if self.header().defer_submit() {
            // The `end_io` trampoline submits it (see `device_mapper::per_bio`).
            self.into_raw();
            return;
        }
        let ptr = self.into_raw();
        // SAFETY: We were responsible for the valid bio `ptr`, and hand that over to the block
        // layer. By the type invariants it is a bio device-mapper handed to a target (a clone
        // in a `dm_target_io`), which is what `dm_submit_bio_remap` needs.
        unsafe { bindings::dm_submit_bio_remap(ptr.as_ptr(), core::ptr::null_mut()) }
    }

    /// Ends the bio with `status` (`bio_endio`).
    ///
    /// While the bio is in its target's `end_io` (ended there, or by another thread to which
    /// the target handed a kept bio before `end_io` returned), it is completed with `status`
    /// when `end_io` returns, without calling `end_io` again.
    pub fn end(self, status: Status) {
        if self.header().defer_end(status) {
            // The `end_io` trampoline completes it (see `device_mapper::per_bio`).
            self.into_raw();
            return;
        }
        let ptr = self.into_raw();
        // SAFETY: We were responsible for the valid bio `ptr`; ending it ends that.
        unsafe {
            (*ptr.as_ptr()).bi_status = status.as_raw();
            bindings::bio_endio(ptr.as_ptr());
        }
    }
}

impl<P> Drop for Bio<P> {
    /// A bio that is dropped without being sent on or ended fails with an I/O error, so that
    /// whoever waits for it does not wait forever.
    fn drop(&mut self) {
        if self.header().defer_end(Status::IOERR) {
            // The `end_io` trampoline completes it (see `device_mapper::per_bio`).
            return;
        }
        // SAFETY: By the type invariants we are responsible for the valid bio; ending it (as
        // `bio_io_error` does) ends that.
        unsafe {
            (*self.ptr.as_ptr()).bi_status = bindings::BLK_STS_IOERR;
            bindings::bio_endio(self.ptr.as_ptr());
        }
    }
}

/// A list of bios, e.g. those a driver defers to process later (`struct bio_list`).
///
/// Bios leave the list in the order they entered it. Dropping a list that still holds bios ends
/// them with an I/O error (see [`Bio`]).
///
/// # Invariants
///
/// `list` is a valid `bio_list` whose bios each satisfy the invariants of `Bio<P>` and belong
/// to this list only.
pub struct BioList<P = ()> {
    list: bindings::bio_list,
    _p: PhantomData<P>,
}

// SAFETY: The list only holds bios, which are `Send` if `P` is (see `Bio`).
unsafe impl<P: Send> Send for BioList<P> {}

impl<P> BioList<P> {
    /// An empty list.
    pub const fn new() -> Self {
        // INVARIANT: An empty `bio_list` has NULL head and tail.
        Self {
            list: bindings::bio_list {
                head: core::ptr::null_mut(),
                tail: core::ptr::null_mut(),
            },
            _p: PhantomData,
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.list.head.is_null()
    }

    /// Adds a bio at the end.
    pub fn push(&mut self, bio: Bio<P>) {
        let ptr = bio.into_raw();
        // SAFETY: The list is valid by the type invariants; the bio is valid and its
        // responsibility moves to the list.
        unsafe { bindings::bio_list_add(&mut self.list, ptr.as_ptr()) }
    }

    /// Takes the bio at the front.
    pub fn pop(&mut self) -> Option<Bio<P>> {
        // SAFETY: The list is valid by the type invariants.
        let ptr = NonNull::new(unsafe { bindings::bio_list_pop(&mut self.list) })?;
        // SAFETY: By the type invariants the bio satisfies `Bio<P>`'s invariants and was the
        // list's to hand over.
        Some(unsafe { Bio::from_raw(ptr) })
    }

    /// Moves all bios of `other` to the end of this list.
    pub fn append(&mut self, other: &mut BioList<P>) {
        // SAFETY: Both lists are valid; `bio_list_merge` links the bios of `other` into ours.
        unsafe { bindings::bio_list_merge(&mut self.list, &mut other.list) };
        // INVARIANT: `bio_list_merge` leaves `other` pointing at the moved bios: empty it by
        // hand (assigning a new `BioList` would drop the old one, ending those bios).
        other.list.head = core::ptr::null_mut();
        other.list.tail = core::ptr::null_mut();
    }

    /// Takes all bios, leaving this list empty.
    pub fn take(&mut self) -> BioList<P> {
        core::mem::take(self)
    }
}

impl<P> Default for BioList<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P> Iterator for BioList<P> {
    type Item = Bio<P>;

    fn next(&mut self) -> Option<Bio<P>> {
        self.pop()
    }
}

impl<P> Drop for BioList<P> {
    fn drop(&mut self) {
        while let Some(bio) = self.pop() {
            bio.end(Status::IOERR);
        }
    }
}

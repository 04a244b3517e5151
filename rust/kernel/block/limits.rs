// SPDX-License-Identifier: GPL-2.0

//! Queue limits (`struct queue_limits`), as stacking drivers see and adjust them.
//!
//! C header: [`include/linux/blkdev.h`](srctree/include/linux/blkdev.h)

use crate::{bindings, types::Opaque};

/// The I/O limits of a request queue, all sizes in bytes unless the name says sectors.
///
/// # Invariants
///
/// Wraps a valid `struct queue_limits`; `&mut QueueLimits` is handed out only while the caller
/// may change it (e.g. in a device-mapper target's `io_hints`).
#[repr(transparent)]
pub struct QueueLimits(Opaque<bindings::queue_limits>);

impl QueueLimits {
    /// # Safety
    ///
    /// `ptr` must be valid for `'a`, and only changed through the returned reference, if at
    /// all, during `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::queue_limits) -> &'a mut Self {
        // SAFETY: `QueueLimits` is a transparent wrapper; validity is guaranteed by the caller.
        unsafe { &mut *ptr.cast() }
    }

    /// # Safety
    ///
    /// `ptr` must be valid for reads for `'a`.
    pub(crate) unsafe fn from_raw_ref<'a>(ptr: *const bindings::queue_limits) -> &'a Self {
        // SAFETY: `QueueLimits` is a transparent wrapper; validity is guaranteed by the caller.
        unsafe { &*ptr.cast() }
    }

    /// The limits, for reading and writing single fields through the pointer: no reference to
    /// the whole `struct queue_limits` is made (a device's live limits may be updated by others
    /// under the queue's limits lock).
    fn raw(&self) -> *mut bindings::queue_limits {
        self.0.get()
    }

    /// The smallest I/O size the device handles without a penalty.
    pub fn io_min(&self) -> u32 {
        // SAFETY: By the type invariants the limits are valid; one field is read.
        unsafe { (*self.raw()).io_min }
    }

    /// Sets the smallest I/O size the device handles without a penalty.
    pub fn set_io_min(&mut self, bytes: u32) {
        // SAFETY: By the type invariants the limits are valid and ours to change (`&mut self`);
        // one field is written.
        unsafe { (*self.raw()).io_min = bytes };
    }

    /// The I/O size the device handles best.
    pub fn io_opt(&self) -> u32 {
        // SAFETY: By the type invariants the limits are valid; one field is read.
        unsafe { (*self.raw()).io_opt }
    }

    /// Sets the I/O size the device handles best.
    pub fn set_io_opt(&mut self, bytes: u32) {
        // SAFETY: By the type invariants the limits are valid and ours to change (`&mut self`);
        // one field is written.
        unsafe { (*self.raw()).io_opt = bytes };
    }

    /// The granularity of discards.
    pub fn discard_granularity(&self) -> u32 {
        // SAFETY: By the type invariants the limits are valid; one field is read.
        unsafe { (*self.raw()).discard_granularity }
    }

    /// Sets the granularity of discards.
    pub fn set_discard_granularity(&mut self, bytes: u32) {
        // SAFETY: By the type invariants the limits are valid and ours to change (`&mut self`);
        // one field is written.
        unsafe { (*self.raw()).discard_granularity = bytes };
    }

    /// The largest discard the hardware takes, in sectors.
    pub fn max_hw_discard_sectors(&self) -> u32 {
        // SAFETY: By the type invariants the limits are valid; one field is read.
        unsafe { (*self.raw()).max_hw_discard_sectors }
    }

    /// Sets the largest discard the hardware takes, in sectors (0: no discards).
    pub fn set_max_hw_discard_sectors(&mut self, sectors: u32) {
        // SAFETY: By the type invariants the limits are valid and ours to change (`&mut self`);
        // one field is written.
        unsafe { (*self.raw()).max_hw_discard_sectors = sectors };
    }

    /// The alignment of discards.
    pub fn discard_alignment(&self) -> u32 {
        // SAFETY: By the type invariants the limits are valid; one field is read.
        unsafe { (*self.raw()).discard_alignment }
    }

    /// Sets the alignment of discards.
    pub fn set_discard_alignment(&mut self, bytes: u32) {
        // SAFETY: By the type invariants the limits are valid and ours to change (`&mut self`);
        // one field is written.
        unsafe { (*self.raw()).discard_alignment = bytes };
    }

    /// The most segments a discard may have.
    pub fn max_discard_segments(&self) -> u16 {
        // SAFETY: By the type invariants the limits are valid; one field is read.
        unsafe { (*self.raw()).max_discard_segments }
    }

    /// Sets the most segments a discard may have.
    pub fn set_max_discard_segments(&mut self, segments: u16) {
        // SAFETY: By the type invariants the limits are valid and ours to change (`&mut self`);
        // one field is written.
        unsafe { (*self.raw()).max_discard_segments = segments };
    }

    /// The logical block size.
    pub fn logical_block_size(&self) -> u32 {
        // SAFETY: By the type invariants the limits are valid; one field is read.
        unsafe { (*self.raw()).logical_block_size }
    }
}

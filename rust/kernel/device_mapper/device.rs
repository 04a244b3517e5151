// SPDX-License-Identifier: GPL-2.0

//! Block devices a target uses (`struct dm_dev`).

use super::{target::TargetState, Target};
use crate::{
    alloc::flags::GFP_KERNEL,
    bindings,
    block::{bio::Bio, limits::QueueLimits},
    error::{to_result, Result},
    str::CStr,
};
// (7.3: `CStrExt`, whose methods `as_char_ptr` and `from_char_ptr` are, comes with the prelude;
// 6.12 needs nothing.)
#[allow(unused_imports)]
use crate::prelude::*;
use core::ptr::NonNull;

/// How a target opens a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Read only, e.g. a source that must never be written.
    ReadOnly,
    /// Read and write.
    ReadWrite,
    /// As the table is opened (read-only tables open their devices read-only).
    Table,
}

/// A block device a target opened with `dm_get_device`, open until the target is destroyed.
///
/// Only a target's constructor can open devices ([`Target::get_device`]). A `Device` is a
/// handle: dropping it does not close the device. The target's destructor puts every device
/// the constructor got (`dm_put_device`, see `TargetState::release`), after device-mapper has
/// seen the last bio of the target complete and after the target's data is dropped. So a bio
/// sent to a device ([`Device::set_bio_device`]) can never outlive it, whatever safe code does
/// with the handle meanwhile (before, a `Device` dropped under a bio in flight closed the
/// device the bio was on).
///
/// Handles normally live in the target's private data, dropped by the destructor. One kept
/// elsewhere makes the destructor wait for it (it reads the device), instead of putting a
/// device still in use.
///
/// # Invariants
///
/// `dev` was returned by `dm_get_device` for the target whose `TargetState` is `state`, which
/// lists it (to put it in the destructor) and counts this value. The count keeps the
/// destructor, and so `dev`, from finishing before this value is dropped.
pub struct Device {
    dev: NonNull<bindings::dm_dev>,
    state: NonNull<TargetState>,
    writable: bool,
}

// SAFETY: A `dm_dev` may be used and put from any thread; it is reference counted by the table.
unsafe impl Send for Device {}

// SAFETY: `&Device` only reads fields that do not change while the device is open.
unsafe impl Sync for Device {}

impl Device {
    pub(crate) fn get(target: &mut Target, path: &CStr, mode: Mode) -> Result<Device> {
        let ti = target.as_raw();
        let mode = match mode {
            Mode::ReadOnly => bindings::BLK_OPEN_READ,
            Mode::ReadWrite => bindings::BLK_OPEN_READ | bindings::BLK_OPEN_WRITE,
            // SAFETY: `ti` is a valid target being constructed, so its table is valid.
            Mode::Table => unsafe { bindings::dm_table_get_mode((*ti).table) },
        };
        // SAFETY: While a Rust target's constructor runs, `private` is its `TargetState`.
        let state = unsafe { (*ti).private.cast::<TargetState>() };
        let state = NonNull::new(state).ok_or(crate::error::code::EINVAL)?;
        // `as_raw` returns a valid, hence non-null, pointer.
        let ti = NonNull::new(ti).ok_or(crate::error::code::EINVAL)?;
        // SAFETY: While the constructor runs (`&mut Target`), the state is alive and its
        // `opened` is only reached through the target (handles made earlier reach only the
        // count beside it): nothing else borrows it during this call.
        let opened = unsafe { &mut (*state.as_ptr()).opened };
        // Room first: once got, the device must be listed to be put.
        opened.reserve(1, GFP_KERNEL)?;
        let mut dev = core::ptr::null_mut();
        // SAFETY: `ti` is valid, `path` is a NUL-terminated string, and `dev` is valid for
        // writes.
        to_result(unsafe {
            bindings::dm_get_device(ti.as_ptr(), path.as_char_ptr(), mode, &mut dev)
        })?;
        let Some(dev) = NonNull::new(dev) else {
            return Err(crate::error::code::ENODEV);
        };
        // Cannot fail (room was reserved above); were it to, the device is put back.
        if let Err(e) = opened.push(dev, GFP_KERNEL) {
            // SAFETY: `dev` was just got for `ti` and is listed nowhere.
            unsafe { bindings::dm_put_device(ti.as_ptr(), dev.as_ptr()) };
            return Err(e.into());
        }
        // SAFETY: The state lives until the destructor has seen the count drop to zero.
        unsafe { state.as_ref() }.get();
        // INVARIANT: `dm_get_device` succeeded, so `dev` is a device of the table of `ti`; the
        // state lists it and counts this handle.
        Ok(Device {
            dev,
            state,
            writable: mode & bindings::BLK_OPEN_WRITE != 0,
        })
    }

    pub(crate) fn bdev(&self) -> *mut bindings::block_device {
        // SAFETY: By the type invariants `dev` is a valid, open `dm_dev`.
        unsafe { (*self.dev.as_ptr()).bdev }
    }

    /// The device's name as device-mapper shows it in tables: `<major>:<minor>` (ASCII; "?"
    /// if it were not UTF-8).
    pub fn name(&self) -> &str {
        // SAFETY: `name` is a NUL-terminated array set by `dm_get_device`, unchanged while the
        // device is open.
        let name = unsafe { CStr::from_char_ptr((*self.dev.as_ptr()).name.as_ptr()) };
        name.to_str().unwrap_or("?")
    }

    /// Whether the device was opened for writing.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The size in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        // SAFETY: `bdev` is valid while the device is open.
        unsafe { bindings::bdev_nr_sectors(self.bdev()) }
    }

    /// The logical block size in bytes.
    pub fn logical_block_size(&self) -> u32 {
        // SAFETY: As above.
        unsafe { bindings::bdev_logical_block_size(self.bdev()) }
    }

    /// The largest discard the device takes, in sectors; 0 if it cannot discard.
    pub fn max_discard_sectors(&self) -> u32 {
        // SAFETY: As above.
        unsafe { bindings::bdev_max_discard_sectors(self.bdev()) }
    }

    /// The limits of the device's queue, e.g. to pass its discard limits up.
    pub fn limits(&self) -> &QueueLimits {
        // SAFETY: The queue of an open device lives as long as the device is open; its limits
        // only change under the queue's limits lock, when they are replaced as a whole. Only a
        // shared reference is made.
        unsafe {
            QueueLimits::from_raw_ref(core::ptr::addr_of!(
                (*bindings::bdev_get_queue(self.bdev())).limits
            ))
        }
    }

    /// Flushes the device's volatile write cache and waits for it (`blkdev_issue_flush`).
    ///
    /// Sleeps: process context only.
    pub fn issue_flush(&self) -> Result {
        // SAFETY: `bdev` is valid while the device is open.
        to_result(unsafe { bindings::blkdev_issue_flush(self.bdev()) })
    }

    /// Sends `bio` to this device: `bio` will go there unchanged but for its device.
    ///
    /// The device must be one of the target that mapped the bio: one of another target (a
    /// handle shared between instances) may be closed while the bio is on it, as its target's
    /// destruction does not wait for other targets' bios. Such a bio is marked instead, and
    /// failed with an I/O error where it would be sent (returned remapped from `map`, or
    /// submitted).
    pub fn set_bio_device<P>(&self, bio: &mut Bio<P>) {
        if !bio
            .header()
            .mapped_by(self.state.as_ptr().cast_const().cast())
        {
            bio.header().set_misdirected(true);
            return;
        }
        // SAFETY: The device is put only by the destructor of its target (type invariants),
        // which mapped the bio (checked above); device-mapper destroys a target only after
        // every bio handed to it has completed.
        unsafe { bio.set_bdev(self.bdev()) }
    }
}

impl Drop for Device {
    /// Lets the destructor go ahead as far as this handle is concerned; the device stays open
    /// until then.
    ///
    /// # Context
    ///
    /// Any context: does not sleep.
    fn drop(&mut self) {
        // SAFETY: By the type invariants the state is alive while it counts this handle, which
        // is going away.
        unsafe { TargetState::put(self.state) };
    }
}

/// The result of visiting devices for `iterate_devices`: device-mapper's callouts answer with a
/// number, and visiting stops at the first that is not zero.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Visited(pub(crate) crate::ffi::c_int);

impl Visited {
    /// The result of visiting no devices.
    pub const NONE: Visited = Visited(0);

    /// Visits more devices with `f`, unless the visit so far asked to stop.
    pub fn and_then(self, f: impl FnOnce() -> Visited) -> Visited {
        if self.0 == 0 {
            f()
        } else {
            self
        }
    }
}

/// Device-mapper's visitor for `iterate_devices`: the target shows it each device it sends
/// I/O to, with the area it uses, so that core can check sizes and stack queue limits.
pub struct DeviceVisitor<'a> {
    ti: *mut bindings::dm_target,
    callout: bindings::iterate_devices_callout_fn,
    data: *mut crate::ffi::c_void,
    _p: core::marker::PhantomData<&'a ()>,
}

impl DeviceVisitor<'_> {
    /// # Safety
    ///
    /// `ti`, `callout` and `data` must be those device-mapper passed to `iterate_devices`, valid
    /// for the visitor's lifetime.
    pub(crate) unsafe fn new(
        ti: *mut bindings::dm_target,
        callout: bindings::iterate_devices_callout_fn,
        data: *mut crate::ffi::c_void,
    ) -> Self {
        Self {
            ti,
            callout,
            data,
            _p: core::marker::PhantomData,
        }
    }

    /// Shows `dev`, of which the target uses `len` sectors from `start`.
    pub fn visit(&mut self, dev: &Device, start: u64, len: u64) -> Visited {
        match self.callout {
            // SAFETY: The callout, `ti` and `data` come from device-mapper for this iteration
            // (type invariants of `new`); `dev` is an open device of this target's table.
            Some(f) => Visited(unsafe { f(self.ti, dev.dev.as_ptr(), start, len, self.data) }),
            None => Visited(0),
        }
    }
}

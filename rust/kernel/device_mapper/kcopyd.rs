// SPDX-License-Identifier: GPL-2.0

//! Copying and zeroing ranges of block devices in the background (dm-kcopyd).
//!
//! C header: [`include/linux/dm-kcopyd.h`](srctree/include/linux/dm-kcopyd.h)
//!
//! A [`Client`] runs jobs: [`Client::copy`] reads a range of one device and writes it to up to
//! eight destinations, [`Client::zero`] writes zeroes. Each job carries a pointer of the
//! caller's choice (an [`Arc`] or a [`KBox`]) that the job owns while it runs and hands to
//! [`CopyDone::copy_done`] when it completes, exactly once, with the result. Ownership goes to
//! C with `into_foreign` when the job starts and comes back with `from_foreign` in the
//! completion, which C calls once per job; nothing else can reach it in between, so it can be
//! neither used after the completion nor completed twice.
//!
//! Jobs write to devices long after `copy` returns. The client therefore holds a reference to
//! every [`Device`] it may use and refuses regions on other devices; dropping the client waits
//! for all its jobs before it lets go of the devices.
//!
//! # Contexts
//!
//! - `copy`, `zero`: process context; they may sleep, waiting for a job structure from
//!   kcopyd's mempool (`GFP_NOIO`), which earlier jobs return as they complete. Starting a job
//!   from [`CopyDone::copy_done`] can therefore wait on kcopyd itself: queue work instead.
//! - [`CopyDone::copy_done`]: kcopyd's worker thread, process context; it may sleep but must
//!   not drop the last reference to the [`Client`] (dropping a client waits for its jobs,
//!   including the one completing: a deadlock).
//! - [`Client::copy_wait`]: process context; it sleeps until its copy has completed.
//! - Dropping the [`Client`]: process context; it sleeps until all jobs have completed.
//!
//! [`KBox`]: crate::alloc::KBox

use super::Device;
use crate::{
    alloc::{flags::GFP_KERNEL, KVec},
    bindings,
    error::{code::*, Error, Result},
    sync::{Arc, WaitCount},
    types::{ForeignOwnable, Opaque},
};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

/// The most destinations one copy may have (`DM_KCOPYD_MAX_REGIONS`).
pub const MAX_DESTINATIONS: usize = bindings::DM_KCOPYD_MAX_REGIONS as usize;

/// How much of the devices' bandwidth kcopyd may use (`struct dm_kcopyd_throttle`).
///
/// Declare it as a `static`, shared by all clients of a module.
///
/// # Invariants
///
/// Wraps a `dm_kcopyd_throttle`; kcopyd reads and updates it with its own locking.
#[repr(transparent)]
pub struct Throttle(Opaque<bindings::dm_kcopyd_throttle>);

// SAFETY: kcopyd accesses the throttle from any thread under its throttle spinlock.
unsafe impl Sync for Throttle {}

impl Throttle {
    /// A throttle allowing `percent` (1..=100) of the time for I/O; 100 is no throttling.
    pub const fn new(percent: u32) -> Self {
        Self(Opaque::new(bindings::dm_kcopyd_throttle {
            throttle: percent,
            num_io_jobs: 0,
            io_period: 0,
            total_period: 0,
            last_jiffies: 0,
        }))
    }
}

// SAFETY: `Throttle` is a transparent wrapper of an `Opaque` (an `UnsafeCell`) holding a
// `dm_kcopyd_throttle`, whose `throttle` percentage is a `u32` at this offset, which kcopyd
// reads with single loads and only a module parameter writes.
unsafe impl crate::module_param::UintParamStorage for Throttle {
    const OFFSET: usize = core::mem::offset_of!(bindings::dm_kcopyd_throttle, throttle);
}

/// Declares a module's kcopyd [`Throttle`] as a `static`, unthrottled (100%), with module
/// parameters that set its percentage: `1..=100` of the time kcopyd may spend on I/O, anything
/// else refused with `-EINVAL` (C's `DECLARE_DM_KCOPYD_THROTTLE_WITH_MODULE_PARM` takes any
/// number, and 0 makes kcopyd's thread sleep forever). Each name in `params` is a parameter
/// (`/sys/module/<module>/parameters/<name>`, mode 0644) over the same percentage, so an old
/// name can stay beside a new one.
///
/// ```ignore
/// kernel::declare_kcopyd_throttle! {
///     static THROTTLE;
///     module: "dm_clone_rs",
///     params: ["copy_throttle"],
///     description: "Percentage of time kcopyd may spend on copy I/O",
/// }
/// ```
#[macro_export]
macro_rules! declare_kcopyd_throttle {
    (static $id:ident; module: $module:literal, params: [$($name:literal),+ $(,)?],
     description: $desc:literal $(,)?) => {
        static $id: $crate::device_mapper::kcopyd::Throttle =
            $crate::device_mapper::kcopyd::Throttle::new(100);
        $(
            // The percentage lives in a static of this module, read by kcopyd with
            // `READ_ONCE` and written only by the parameter code: what the macro needs.
            $crate::__module_param_uint! {
                module: $module,
                name: $name,
                var: &$id,
                range: 1..=100,
                perm: 0o644,
                description: $desc,
            }
        )+
    };
}

/// What happens when a kcopyd job completes, for the pointer type that the job carries.
pub trait CopyDone {
    /// The pointer a job owns, e.g. `Arc<Self>` or `KBox<Self>`.
    type Pointer: ForeignOwnable + Send;

    /// The job completed with `result`. Runs in kcopyd's thread, once per job.
    fn copy_done(this: Self::Pointer, result: CopyResult);
}

/// The outcome of a kcopyd job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyResult {
    /// Reading the source failed.
    pub read_error: bool,
    /// One bit per destination whose write failed.
    pub write_errors: u64,
}

impl CopyResult {
    /// Whether everything was read and written.
    pub fn is_ok(&self) -> bool {
        !self.read_error && self.write_errors == 0
    }
}

/// The job of a [`Client::copy_wait`]: its caller sleeps until `pending` is zero, then reads
/// `ok`. The caller holds its own reference, so the job outlives the completion's.
struct Waited {
    pending: WaitCount,
    ok: AtomicBool,
}

impl CopyDone for Waited {
    type Pointer = Arc<Waited>;

    fn copy_done(this: Arc<Waited>, result: CopyResult) {
        // Before the count: the waiter reads `ok` once the count is zero (`SeqCst` both).
        this.ok.store(result.is_ok(), Ordering::SeqCst);
        this.pending.sub(1);
    }
}

/// A range of sectors on one of a client's devices.
#[derive(Clone, Copy)]
pub struct Region<'a> {
    /// The device.
    pub device: &'a Arc<Device>,
    /// The first sector.
    pub sector: u64,
    /// The number of sectors.
    pub count: u64,
}

/// A kcopyd client, with the devices its jobs may use (`dm_kcopyd_client_create`).
///
/// # Invariants
///
/// `kc` is a live client, destroyed only in drop; `devices` stay referenced until then, so
/// every block device a job uses stays open while the job runs.
pub struct Client {
    kc: NonNull<bindings::dm_kcopyd_client>,
    devices: KVec<Arc<Device>>,
}

// SAFETY: A kcopyd client may be used and destroyed from any thread.
unsafe impl Send for Client {}

// SAFETY: Starting jobs on a client is thread-safe (kcopyd locks internally).
unsafe impl Sync for Client {}

impl Client {
    /// Creates a client for jobs on `devices`, throttled by `throttle`.
    pub fn new(throttle: Option<&'static Throttle>, devices: &[Arc<Device>]) -> Result<Self> {
        let mut held = KVec::with_capacity(devices.len(), GFP_KERNEL)?;
        for d in devices {
            held.push(d.clone(), GFP_KERNEL)?;
        }
        let throttle = throttle.map_or(core::ptr::null_mut(), |t| t.0.get());
        // SAFETY: The throttle, if any, is static.
        let kc = unsafe { bindings::dm_kcopyd_client_create(throttle) };
        let kc = crate::error::from_err_ptr(kc)?;
        // INVARIANT: A successful create returns a live client.
        Ok(Self {
            kc: NonNull::new(kc).ok_or(ENOMEM)?,
            devices: held,
        })
    }

    fn raw_region(&self, r: &Region<'_>, write: bool) -> Result<bindings::dm_io_region> {
        if !self.devices.iter().any(|d| Arc::ptr_eq(d, r.device)) {
            return Err(EINVAL);
        }
        // The block layer only warns about writes to a read-only open; refuse them here.
        if write && !r.device.is_writable() {
            return Err(EROFS);
        }
        Ok(bindings::dm_io_region {
            bdev: r.device.bdev(),
            sector: r.sector,
            count: r.count,
        })
    }

    /// Copies `from` to the same number of sectors at each of `to` (device, first sector).
    ///
    /// `job` is handed to `T::copy_done` when the copy completes. Fails at once, keeping
    /// nothing, if a region is on a device the client was not made for, a destination was not
    /// opened for writing, or there are no or more than [`MAX_DESTINATIONS`] destinations.
    pub fn copy<T: CopyDone>(
        &self,
        from: Region<'_>,
        to: &[(&Arc<Device>, u64)],
        job: T::Pointer,
    ) -> Result<(), (Error, T::Pointer)> {
        let mut dests = [bindings::dm_io_region {
            bdev: core::ptr::null_mut(),
            sector: 0,
            count: 0,
        }; MAX_DESTINATIONS];
        if to.is_empty() || to.len() > MAX_DESTINATIONS {
            return Err((EINVAL, job));
        }
        let mut src = match self.raw_region(&from, false) {
            Ok(r) => r,
            Err(e) => return Err((e, job)),
        };
        for (slot, (device, sector)) in dests.iter_mut().zip(to) {
            let region = Region {
                device,
                sector: *sector,
                count: from.count,
            };
            *slot = match self.raw_region(&region, true) {
                Ok(r) => r,
                Err(e) => return Err((e, job)),
            };
        }
        let n = to.len() as u32;
        // SAFETY: The client is live; `src` and `dests` describe open devices the client holds
        // (kcopyd copies the regions before returning); `n` is within `1..=MAX_DESTINATIONS`;
        // `notify` and `context` are as `start` requires.
        Self::start::<T>(job, |notify, context| unsafe {
            bindings::dm_kcopyd_copy(
                self.kc.as_ptr(),
                &mut src,
                n,
                dests.as_mut_ptr(),
                0,
                notify,
                context,
            )
        });
        Ok(())
    }

    /// Copies `from` to each of `to`, as [`Client::copy`], and sleeps until the copy has
    /// completed: for a caller with nothing else to do meanwhile (e.g. a resume). Process
    /// context. `EIO` if reading or any write failed.
    pub fn copy_wait(&self, from: Region<'_>, to: &[(&Arc<Device>, u64)]) -> Result {
        let job = Arc::new(
            Waited {
                pending: WaitCount::new(1),
                ok: AtomicBool::new(false),
            },
            GFP_KERNEL,
        )?;
        self.copy::<Waited>(from, to, job.clone())
            .map_err(|(e, _)| e)?;
        job.pending.wait_zero();
        if job.ok.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(EIO)
        }
    }

    /// Writes zeroes to `region`; `job` is handed to `T::copy_done` when done.
    pub fn zero<T: CopyDone>(
        &self,
        region: Region<'_>,
        job: T::Pointer,
    ) -> Result<(), (Error, T::Pointer)> {
        let mut dest = match self.raw_region(&region, true) {
            Ok(r) => r,
            Err(e) => return Err((e, job)),
        };
        // SAFETY: As in `copy`, with one destination.
        Self::start::<T>(job, |notify, context| unsafe {
            bindings::dm_kcopyd_zero(self.kc.as_ptr(), 1, &mut dest, 0, notify, context)
        });
        Ok(())
    }

    /// Hands `job` to C and starts a kcopyd job with `submit(notify, context)`, which must
    /// pass both to kcopyd unchanged: kcopyd then calls `notify(.., context)` exactly once,
    /// which hands the job back to `T::copy_done`.
    fn start<T: CopyDone>(
        job: T::Pointer,
        submit: impl FnOnce(bindings::dm_kcopyd_notify_fn, *mut crate::ffi::c_void),
    ) {
        let context: *const crate::ffi::c_void = job.into_foreign();
        submit(Some(notify::<T>), context.cast_mut());
    }
}

impl Drop for Client {
    /// # Context
    ///
    /// Sleeps (waits for the client's jobs): process context.
    fn drop(&mut self) {
        // SAFETY: By the type invariants the client is live. Destroying it waits for all its
        // jobs to complete, before `devices` are dropped after this function.
        unsafe { bindings::dm_kcopyd_client_destroy(self.kc.as_ptr()) }
    }
}

/// The completion kcopyd calls once per job.
///
/// # Safety
///
/// `context` must come from `T::Pointer::into_foreign` in `Client::copy` or `Client::zero`,
/// and this must be the only call for it (kcopyd calls a job's function once).
unsafe extern "C" fn notify<T: CopyDone>(
    read_err: crate::ffi::c_int,
    write_err: crate::ffi::c_ulong,
    context: *mut crate::ffi::c_void,
) {
    // SAFETY: By the safety requirements the pointer is ours to take back, once.
    let job = unsafe { T::Pointer::from_foreign(context) };
    T::copy_done(
        job,
        CopyResult {
            read_error: read_err != 0,
            // `unsigned long` is at most 64 bits wide.
            write_errors: write_err as u64,
        },
    );
}

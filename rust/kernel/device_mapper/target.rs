// SPDX-License-Identifier: GPL-2.0

//! Target types, target instances and their callbacks.

use super::{
    per_bio::{Left, PerBioData},
    Args, Device, DeviceVisitor, Mode, StatusFlags, StatusType, StatusWriter, Visited,
};
use crate::{
    alloc::{flags::GFP_KERNEL, KBox, KVec},
    bindings,
    block::{
        bio::{Bio, Status},
        limits::QueueLimits,
    },
    build_error, c_str,
    error::{code::*, to_result, Error, Result, VTABLE_DEFAULT_ERROR},
    pr_err, pr_warn,
    str::CStr,
    sync::WaitCount,
    types::{ForeignOwnable, Opaque},
    ThisModule,
};
use core::{ffi::c_int, marker::PhantomData, pin::Pin, ptr::NonNull};
// (7.3: `CStrExt`, whose methods `as_char_ptr` and `from_char_ptr` are, comes with the prelude;
// 6.12 needs nothing.)
#[allow(unused_imports)]
use crate::prelude::*;

/// An error of a constructor or a message: an errno and the text the user sees.
///
/// For a constructor the text becomes `ti->error`, which device-mapper logs with the device's
/// name when it refuses the table; for a message it is logged. The text is static, as
/// device-mapper keeps only the pointer.
#[derive(Clone, Copy, Debug)]
pub struct TargetError {
    code: Error,
    msg: &'static CStr,
}

impl TargetError {
    /// An error with its own text.
    pub const fn new(code: Error, msg: &'static CStr) -> Self {
        Self { code, msg }
    }

    /// An invalid argument (`-EINVAL`) with its text.
    pub const fn invalid(msg: &'static CStr) -> Self {
        Self::new(EINVAL, msg)
    }

    /// The errno.
    pub fn code(&self) -> Error {
        self.code
    }

    /// The text.
    pub fn message(&self) -> &'static CStr {
        self.msg
    }
}

impl From<Error> for TargetError {
    fn from(code: Error) -> Self {
        let msg = if code == ENOMEM {
            c_str!("Out of memory")
        } else {
            c_str!("Operation failed")
        };
        Self { code, msg }
    }
}

impl From<crate::alloc::AllocError> for TargetError {
    fn from(_: crate::alloc::AllocError) -> Self {
        ENOMEM.into()
    }
}

/// Gives an errno result the text the user sees, for a constructor or a message:
///
/// ```
/// use kernel::{c_str, device_mapper::{ResultExt, TargetError}, error::code::ENODEV, prelude::*};
///
/// fn open() -> Result<u32> { Err(ENODEV) }
/// let e: TargetError = open().ti_error(c_str!("Error opening source device")).unwrap_err();
/// assert_eq!(e.code(), ENODEV);
/// assert_eq!(e.message().to_bytes(), b"Error opening source device");
/// ```
pub trait ResultExt<T> {
    /// The error, if any, with text `msg`.
    fn ti_error(self, msg: &'static CStr) -> Result<T, TargetError>;
}

impl<T, E: Into<Error>> ResultExt<T> for core::result::Result<T, E> {
    fn ti_error(self, msg: &'static CStr) -> Result<T, TargetError> {
        self.map_err(|e| TargetError::new(e.into(), msg))
    }
}

/// What `map` did with a bio.
pub enum MapResult<P = ()> {
    /// The bio was pointed at another device and sector: device-mapper submits it
    /// (`DM_MAPIO_REMAPPED`).
    Remapped(Bio<P>),
    /// The target took care of the bio: it submitted, deferred or ended it
    /// (`DM_MAPIO_SUBMITTED`).
    Submitted,
    /// Device-mapper should retry the bio later (`DM_MAPIO_REQUEUE`).
    Requeue(Bio<P>),
    /// Device-mapper should fail the bio with an I/O error (`DM_MAPIO_KILL`).
    Kill(Bio<P>),
}

/// What `end_io` decided about a completed bio it was handed.
///
/// `end_io` owns the completed bio while it runs: it gives it back to device-mapper, or keeps
/// it ([`EndIoResult::Kept`]) to complete it later. A kept bio is completed with [`Bio::end`]
/// (device-mapper's completion then runs again, and calls `end_io` again with the same bio),
/// or sent again with [`Bio::submit`]; dropping it ends it with an I/O error. Ended inside
/// `end_io` itself, it completes when `end_io` returns, without a second `end_io` (which
/// would run on the same stack: see `per_bio`). This is
/// `DM_ENDIO_INCOMPLETE`, as dm-writecache uses it for FUA writes that complete after a
/// commit. Ownership makes the misuses impossible: a target cannot both keep a bio and give it
/// back, nor give back one it did not get without the trampoline noticing.
pub enum EndIoResult<P = ()> {
    /// Complete the bio to its submitter with the (possibly changed) status (`DM_ENDIO_DONE`).
    Done(Bio<P>),
    /// Retry the bio (`DM_ENDIO_REQUEUE`).
    Requeue(Bio<P>),
    /// The target kept the bio and will end or resubmit it (`DM_ENDIO_INCOMPLETE`).
    Kept,
}

/// A target instance: one line of a device-mapper table (`struct dm_target`).
///
/// The constructor gets `&mut Target`, with which it sets the target up; every other callback
/// gets `&Target`.
///
/// # Invariants
///
/// Wraps a valid `struct dm_target` of a live table.
#[repr(transparent)]
pub struct Target(Opaque<bindings::dm_target>);

impl Target {
    /// # Safety
    ///
    /// `ptr` must be a valid target of a live table for `'a`, not changed by others during `'a`
    /// except through device-mapper's own synchronisation.
    unsafe fn from_raw<'a>(ptr: *mut bindings::dm_target) -> &'a Self {
        // SAFETY: `Target` is a transparent wrapper; validity is guaranteed by the caller.
        unsafe { &*ptr.cast() }
    }

    /// # Safety
    ///
    /// As [`Target::from_raw`], and nothing else may access the target during `'a` (as in the
    /// constructor).
    unsafe fn from_raw_mut<'a>(ptr: *mut bindings::dm_target) -> &'a mut Self {
        // SAFETY: As above.
        unsafe { &mut *ptr.cast() }
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::dm_target {
        self.0.get()
    }

    /// The target, for reading single fields through the pointer: no reference to the whole
    /// `struct dm_target` is made, as device-mapper core may change fields this code does not
    /// read while a target's methods run.
    fn raw(&self) -> *mut bindings::dm_target {
        self.0.get()
    }

    /// The table the target is in (`ti->table`): set by device-mapper core before the
    /// constructor, never changed.
    fn table(&self) -> *mut bindings::dm_table {
        // SAFETY: By the type invariants the target is valid; one field is read.
        unsafe { (*self.raw()).table }
    }

    fn raw_mut(&mut self) -> &mut bindings::dm_target {
        // SAFETY: By the type invariants the target is valid; `&mut self` is only handed out to
        // the constructor, which has the target to itself.
        unsafe { &mut *self.0.get() }
    }

    /// The first sector of the target in the mapped device.
    pub fn begin(&self) -> u64 {
        // SAFETY: By the type invariants the target is valid; one field, set by device-mapper
        // core before the constructor and never changed, is read.
        unsafe { (*self.raw()).begin }
    }

    /// The length of the target in sectors.
    pub fn len(&self) -> u64 {
        // SAFETY: By the type invariants the target is valid; one field, set by device-mapper
        // core before the constructor and never changed, is read.
        unsafe { (*self.raw()).len }
    }

    /// Whether the target has no sectors (never for a table device-mapper accepted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sector of `bio` relative to the start of the target (`dm_target_offset`).
    pub fn offset<P>(&self, bio: &Bio<P>) -> u64 {
        bio.sector().wrapping_sub(self.begin())
    }

    /// The name of the mapped device, `<major>:<minor>` (ASCII; "?" if it were not UTF-8), for
    /// messages.
    pub fn device_name(&self) -> &str {
        // SAFETY: The table of a live target is valid, and so is its mapped device's name.
        let name = unsafe { CStr::from_char_ptr(bindings::dm_table_device_name(self.table())) };
        name.to_str().unwrap_or("?")
    }

    /// A handle that raises events on this target's table from work the target runs later
    /// (see [`EventHandle`]); only a constructor can make one.
    pub fn event_handle(&mut self) -> Result<EventHandle> {
        let ti = NonNull::new(self.as_raw()).ok_or(EINVAL)?;
        // SAFETY: While a Rust target's constructor runs, `private` is its `TargetState`.
        let state =
            NonNull::new(unsafe { (*ti.as_ptr()).private.cast::<TargetState>() }).ok_or(EINVAL)?;
        // SAFETY: The state lives until the destructor has seen the count drop to zero.
        unsafe { state.as_ref() }.get();
        // INVARIANT: The state counts the new handle (nothing can fail after the count).
        Ok(EventHandle { ti, state })
    }

    /// Whether the mapped device is suspended (`dm_suspended`).
    pub fn is_suspended(&self) -> bool {
        // SAFETY: The target is valid.
        unsafe { bindings::dm_suspended(self.as_raw()) != 0 }
    }

    /// Whether the mapped device is being suspended without flushing (`dm_noflush_suspending`).
    pub fn is_noflush_suspending(&self) -> bool {
        // SAFETY: The target is valid.
        unsafe { bindings::dm_noflush_suspending(self.as_raw()) != 0 }
    }

    /// Whether the table was loaded read-write.
    pub fn is_table_writable(&self) -> bool {
        // SAFETY: The table of a live target is valid.
        unsafe { bindings::dm_table_get_mode(self.table()) & bindings::BLK_OPEN_WRITE != 0 }
    }

    /// Opens a device of the table (`dm_get_device`); only a constructor can.
    pub fn get_device(&mut self, path: &CStr, mode: Mode) -> Result<Device> {
        Device::get(self, path, mode)
    }

    /// How many empty flush bios the target gets for a flush (0: flushes do not reach it).
    pub fn set_num_flush_bios(&mut self, n: u32) {
        self.raw_mut().num_flush_bios = n;
    }

    /// How many discard bios the target gets for a discard (0: no discards).
    pub fn set_num_discard_bios(&mut self, n: u32) {
        self.raw_mut().num_discard_bios = n;
    }

    /// How many write-zeroes bios the target gets (0: none).
    pub fn set_num_write_zeroes_bios(&mut self, n: u32) {
        self.raw_mut().num_write_zeroes_bios = n;
    }

    /// How many secure-erase bios the target gets (0: none).
    pub fn set_num_secure_erase_bios(&mut self, n: u32) {
        self.raw_mut().num_secure_erase_bios = n;
    }

    /// Splits bios so that none crosses a multiple of `sectors`, counted from the start of the
    /// target (`dm_set_target_max_io_len`).
    pub fn set_max_io_len(&mut self, sectors: u32) -> Result {
        // SAFETY: The target is valid and being constructed.
        to_result(unsafe { bindings::dm_set_target_max_io_len(self.as_raw(), sectors.into()) })
    }

    /// Whether the target takes discards even if its devices do not.
    pub fn set_discards_supported(&mut self, on: bool) {
        self.raw_mut().set_discards_supported(on);
    }

    /// Whether flushes reach the target even though its devices have no volatile cache.
    pub fn set_flush_supported(&mut self, on: bool) {
        self.raw_mut().set_flush_supported(on);
    }
}

/// Raises device-mapper events on a target's table from work the target runs on its own, e.g.
/// a worker that finishes a job or sees an error (`dm_table_event`).
///
/// Like a [`Device`], a handle is counted in the target's state: the destructor waits until
/// every handle is dropped, so the table it points to outlives it.
///
/// # Invariants
///
/// `ti` is a target whose `TargetState` is `state`, which counts this handle; the count keeps
/// the destructor, and so the table, from finishing before the handle is dropped.
pub struct EventHandle {
    ti: NonNull<bindings::dm_target>,
    state: NonNull<TargetState>,
}

// SAFETY: `dm_table_event` may be called from any thread in process context.
unsafe impl Send for EventHandle {}

// SAFETY: As above; the handle has no state of its own.
unsafe impl Sync for EventHandle {}

impl EventHandle {
    /// Raises an event: `dmsetup wait` and udev see it. Sleeps (it takes a mutex): process
    /// context only, never from `map` or `end_io`.
    pub fn raise(&self) {
        // SAFETY: By the type invariants the target and its table are alive.
        unsafe { bindings::dm_table_event((*self.ti.as_ptr()).table) }
    }
}

impl Drop for EventHandle {
    fn drop(&mut self) {
        // SAFETY: By the type invariants the state is alive while it counts this handle, which
        // is going away.
        unsafe { TargetState::put(self.state) };
    }
}

/// What a target's callbacks get of its data: a borrow of the [`TargetOperations::Data`]
/// made by `ctr` (`&T` for a `KBox<T>` or an `Arc<T>`). The alias upstream's blk-mq
/// abstractions use.
pub type ForeignBorrowed<'a, T> = <T as ForeignOwnable>::Borrowed<'a>;

/// The callbacks of a target type (`struct target_type`).
///
/// Only [`TargetOperations::ctr`] and [`TargetOperations::map`] are required; device-mapper
/// leaves out what a target does not implement.
///
/// # Contexts and concurrency
///
/// - `ctr` and `dtr` (dropping [`TargetOperations::Data`]) run in process context, alone.
/// - `map` runs in the context of whoever submits I/O, on many CPUs at once; it must not wait
///   for I/O. It gets `&Data`: shared state needs locks or atomics.
/// - `end_io` runs where bios complete, often in hard or soft interrupt context: it must not
///   sleep.
/// - `status`, `message`, the suspend and resume hooks, `iterate_devices` and `io_hints` run in
///   process context, concurrently with `map` and `end_io`. The suspend and resume hooks are
///   serialised by device-mapper's suspend lock; `status` and `message` are not serialised with
///   each other (both only hold the live table), so state they share needs its own lock.
#[macros::vtable]
pub trait TargetOperations: Sized + 'static {
    /// The target's private data, made by `ctr` and dropped when the target is destroyed.
    type Data: ForeignOwnable + Send + Sync;

    /// Data kept with each bio the target maps (`per_io_data_size`); set to its default before
    /// `map` sees the bio. Being `Copy`, it needs no drop when the bio completes.
    type PerBio: Default + Copy + Send + Sync;

    /// Builds a target from the arguments of its table line.
    fn ctr(target: &mut Target, args: Args<'_>) -> Result<Self::Data, TargetError>;

    /// Maps a bio: remaps it, takes care of it, or fails it.
    fn map(
        this: ForeignBorrowed<'_, Self::Data>,
        target: &Target,
        bio: Bio<Self::PerBio>,
    ) -> MapResult<Self::PerBio>;

    /// Sees a bio the target mapped complete, with its status, which it may change, and gives
    /// it back or keeps it (see [`EndIoResult`]). Runs in interrupt context: must not sleep.
    fn end_io(
        _this: ForeignBorrowed<'_, Self::Data>,
        _target: &Target,
        _bio: Bio<Self::PerBio>,
        _status: &mut Status,
    ) -> EndIoResult<Self::PerBio> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Reports the target's state or table line.
    fn status(
        _this: ForeignBorrowed<'_, Self::Data>,
        _target: &Target,
        _kind: StatusType,
        _flags: StatusFlags,
        _out: &mut StatusWriter<'_>,
    ) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Handles `dmsetup message`; may write a reply to `out`.
    fn message(
        _this: ForeignBorrowed<'_, Self::Data>,
        _target: &Target,
        _args: Args<'_>,
        _out: &mut StatusWriter<'_>,
    ) -> Result<(), TargetError> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called before the device is suspended, while I/O still flows.
    fn presuspend(_this: ForeignBorrowed<'_, Self::Data>, _target: &Target) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called once the device is suspended: no new bios reach `map`.
    fn postsuspend(_this: ForeignBorrowed<'_, Self::Data>, _target: &Target) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called before the device resumes; an error keeps it suspended.
    fn preresume(_this: ForeignBorrowed<'_, Self::Data>, _target: &Target) -> Result {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Called when the device resumes.
    fn resume(_this: ForeignBorrowed<'_, Self::Data>, _target: &Target) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Shows device-mapper each device the target sends I/O to.
    fn iterate_devices(
        _this: ForeignBorrowed<'_, Self::Data>,
        _target: &Target,
        _visitor: &mut DeviceVisitor<'_>,
    ) -> Visited {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Adjusts the queue limits stacked from the target's devices.
    fn io_hints(
        _this: ForeignBorrowed<'_, Self::Data>,
        _target: &Target,
        _limits: &mut QueueLimits,
    ) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// The C callbacks of a target type `T`, each calling the trait method.
///
/// What device-mapper guarantees to every callback but `ctr`: `ti` is a valid target of a live
/// table whose `private` is what `T::Data::into_foreign` returned in a successful `ctr`, not yet
/// passed to `dtr`.
struct Callbacks<T: TargetOperations>(PhantomData<T>);

impl<T: TargetOperations> Callbacks<T> {
    /// # Safety
    ///
    /// `ti` must be a target as described on [`Callbacks`].
    unsafe fn data<'a>(ti: *mut bindings::dm_target) -> ForeignBorrowed<'a, T::Data> {
        // SAFETY: `private` is the `TargetState` set up in `ctr`, whose `data` came from
        // `into_foreign` and is only given back to `from_foreign` in `dtr`, which device-mapper
        // does not run concurrently with other callbacks.
        unsafe { T::Data::borrow((*(*ti).private.cast::<TargetState>()).data.cast_mut()) }
    }

    /// # Safety
    ///
    /// Called by device-mapper as `ctr`: `ti` is a new target that the constructor has to
    /// itself, and `argv` holds `argc` valid NUL-terminated strings.
    unsafe extern "C" fn ctr_callback(
        ti: *mut bindings::dm_target,
        argc: crate::ffi::c_uint,
        argv: *mut *mut crate::ffi::c_char,
    ) -> c_int {
        // SAFETY: `ti` is valid and ours alone during the constructor.
        let target = unsafe { Target::from_raw_mut(ti) };
        // Fits: checked in `Registration::new`.
        target.raw_mut().per_io_data_size = PerBioData::<T::PerBio>::SIZE as u32;
        // SAFETY: `argv` holds `argc` valid strings, alive until we return.
        let argv = match unsafe { collect_args(argc, argv) } {
            Ok(argv) => argv,
            Err(e) => return fail_ctr(target, e.into()),
        };
        let state = match KBox::new(TargetState::new(), GFP_KERNEL) {
            Ok(state) => KBox::into_raw(state),
            Err(e) => return fail_ctr(target, e.into()),
        };
        // `Device`s opened by the constructor count themselves in the state.
        target.raw_mut().private = state.cast();
        let result = T::ctr(target, Args::new(&argv));
        match result {
            Ok(data) => {
                // SAFETY: `state` is valid (allocated above); the target is ours alone.
                unsafe { (*state).data = data.into_foreign() };
                0
            }
            Err(e) => {
                // SAFETY: `state` came from `KBox::into_raw` above, and nothing else uses it once
                // the constructor's devices are gone.
                unsafe { TargetState::release(state, target) };
                target.raw_mut().private = core::ptr::null_mut();
                fail_ctr(target, e)
            }
        }
    }

    /// # Safety
    ///
    /// Called by device-mapper as `dtr`, once, for a target as described on [`Callbacks`].
    unsafe extern "C" fn dtr_callback(ti: *mut bindings::dm_target) {
        // SAFETY: `private` is the `TargetState` made in `ctr`; device-mapper calls `dtr` once,
        // with no other callback running or to come.
        let state = unsafe { (*ti).private.cast::<TargetState>() };
        // SAFETY: `data` came from `into_foreign` in `ctr` and is taken back only here.
        drop(unsafe { T::Data::from_foreign((*state).data.cast_mut()) });
        // SAFETY: `state` came from `KBox::into_raw` in `ctr`; no callback uses it any more.
        unsafe { TargetState::release(state, Target::from_raw(ti)) };
    }

    /// # Safety
    ///
    /// Called by device-mapper as `map`, for a target as described on [`Callbacks`], with a
    /// valid bio it hands over, whose per-bio data is `per_io_data_size` bytes.
    unsafe extern "C" fn map_callback(
        ti: *mut bindings::dm_target,
        bio: *mut bindings::bio,
    ) -> c_int {
        let Some(bio) = NonNull::new(bio) else {
            return bindings::DM_MAPIO_KILL as c_int;
        };
        // SAFETY: `ti` is as described on `Callbacks`: its `private` is its `TargetState`.
        let state = unsafe { (*ti).private.cast_const() };
        // SAFETY: The per-bio data of a bio of this target is `PerBioData::<T::PerBio>::SIZE`
        // bytes (set in `ctr`), aligned for it (checked in `Registration::new`), and ours to
        // initialise.
        unsafe {
            bindings::dm_per_bio_data(bio.as_ptr(), PerBioData::<T::PerBio>::SIZE)
                .cast::<PerBioData<T::PerBio>>()
                .write(PerBioData::new(state))
        };
        let original = bio;
        // SAFETY: The bio is handed over to us; its per-bio data was just initialised.
        let bio = unsafe { Bio::<T::PerBio>::from_raw(bio) };
        // SAFETY: `ti` is as described on `Callbacks`.
        let (target, this) = unsafe { (Target::from_raw(ti), Self::data(ti)) };
        let (result, bio) = match T::map(this, target, bio) {
            MapResult::Remapped(bio) => (bindings::DM_MAPIO_REMAPPED, bio),
            MapResult::Submitted => return bindings::DM_MAPIO_SUBMITTED as c_int,
            MapResult::Requeue(bio) => (bindings::DM_MAPIO_REQUEUE, bio),
            MapResult::Kill(bio) => (bindings::DM_MAPIO_KILL, bio),
        };
        // Device-mapper acts on the bio it passed in. A target that returns another one (kept
        // from an earlier call) kept this one: deal with the returned bio here, as device-mapper
        // would, and tell device-mapper the target took care of its bio.
        if bio.as_ptr() != original {
            pr_warn!(
                "{}: map returned a bio it was not given\n",
                target.device_name()
            );
            match result {
                bindings::DM_MAPIO_REMAPPED => bio.submit(),
                _ => bio.end(Status::IOERR),
            }
            return bindings::DM_MAPIO_SUBMITTED as c_int;
        }
        if result == bindings::DM_MAPIO_REMAPPED && bio.header().misdirected() {
            pr_warn!(
                "{}: map pointed a bio at a device of another target: failed\n",
                target.device_name()
            );
            bio.end(Status::IOERR);
            return bindings::DM_MAPIO_SUBMITTED as c_int;
        }
        // Device-mapper takes the bio back: responsibility returns to it.
        bio.into_raw();
        result as c_int
    }

    /// # Safety
    ///
    /// Called by device-mapper as `end_io`, for a target as described on [`Callbacks`], with a
    /// bio this target mapped and a valid status.
    unsafe extern "C" fn end_io_callback(
        ti: *mut bindings::dm_target,
        bio: *mut bindings::bio,
        error: *mut bindings::blk_status_t,
    ) -> c_int {
        let Some(bio) = NonNull::new(bio) else {
            return bindings::DM_ENDIO_DONE as c_int;
        };
        let original = bio;
        // SAFETY: `error` is valid for reads and writes during this call.
        let mut status = Status::from_raw(unsafe { *error });
        // A bio ended by another task before `end_io` returned is handed to `end_io` again,
        // here rather than on a new stack (see `per_bio`).
        loop {
            // SAFETY: The bio was mapped by this target, so its per-bio data holds a
            // `PerBioData<T::PerBio>`. During this call device-mapper hands it over: it acts on
            // it again only if we return `DM_ENDIO_DONE` or `DM_ENDIO_REQUEUE`, and a bio kept
            // (`DM_ENDIO_INCOMPLETE`) is the target's to end or submit (dm.c: "The target will
            // handle the io").
            let bio = unsafe { Bio::<T::PerBio>::from_raw(original) };
            // SAFETY: The per-bio data stays valid until the bio completes, which it cannot
            // before `leave` below: an end meanwhile is recorded in the header and done here,
            // and a submission from another task waits for `leave`.
            let header = unsafe { &*core::ptr::from_ref(bio.header()) };
            header.enter();
            // SAFETY: `ti` is as described on `Callbacks`.
            let (target, this) = unsafe { (Target::from_raw(ti), Self::data(ti)) };
            let (result, bio) = match T::end_io(this, target, bio, &mut status) {
                EndIoResult::Done(bio) => (bindings::DM_ENDIO_DONE, Some(bio)),
                EndIoResult::Requeue(bio) => (bindings::DM_ENDIO_REQUEUE, Some(bio)),
                EndIoResult::Kept => (bindings::DM_ENDIO_INCOMPLETE, None),
            };
            match bio {
                Some(bio) if bio.as_ptr() == original => {
                    // Held by the target until now: nothing was done to it meanwhile.
                    let _ = header.leave();
                    // SAFETY: As above.
                    unsafe { *error = status.as_raw() };
                    // Device-mapper takes the bio back: responsibility returns to it.
                    bio.into_raw();
                    return result as c_int;
                }
                Some(other) => {
                    // The target kept the bio it was given and returned one kept earlier:
                    // complete that one here (device-mapper only acts on the one it passed in).
                    pr_warn!(
                        "{}: end_io returned a bio it was not given\n",
                        target.device_name()
                    );
                    other.end(status);
                }
                None => {}
            }
            // Kept (or given up): after `Untouched` the bio may be completed by others at any
            // time, and is not touched again.
            match header.leave() {
                Left::Untouched => return bindings::DM_ENDIO_INCOMPLETE as c_int,
                Left::Ended(ended) => {
                    // SAFETY: As above.
                    unsafe { *error = ended.as_raw() };
                    return bindings::DM_ENDIO_DONE as c_int;
                }
                Left::EndedElsewhere(ended) => status = ended,
                Left::Submit => {
                    // SAFETY: Submitted from inside `end_io`: the bio was handed back to us for
                    // that, and its per-bio data is still initialised.
                    unsafe { Bio::<T::PerBio>::from_raw(original) }.submit();
                    return bindings::DM_ENDIO_INCOMPLETE as c_int;
                }
            }
        }
    }

    /// # Safety
    ///
    /// Called by device-mapper as `status`, for a target as described on [`Callbacks`], with a
    /// result buffer valid for `maxlen` bytes.
    unsafe extern "C" fn status_callback(
        ti: *mut bindings::dm_target,
        kind: bindings::status_type_t,
        flags: crate::ffi::c_uint,
        result: *mut crate::ffi::c_char,
        maxlen: crate::ffi::c_uint,
    ) {
        // SAFETY: `result` is valid for `maxlen` bytes and ours during this call.
        let mut out = unsafe { StatusWriter::from_raw(result.cast(), maxlen) };
        let Some(kind) = StatusType::from_raw(kind) else {
            return;
        };
        // SAFETY: `ti` is as described on `Callbacks`.
        let (target, this) = unsafe { (Target::from_raw(ti), Self::data(ti)) };
        T::status(this, target, kind, StatusFlags::from_raw(flags), &mut out);
    }

    /// # Safety
    ///
    /// Called by device-mapper as `message`, for a target as described on [`Callbacks`], with
    /// `argc` valid strings in `argv` and a result buffer valid for `maxlen` bytes.
    unsafe extern "C" fn message_callback(
        ti: *mut bindings::dm_target,
        argc: crate::ffi::c_uint,
        argv: *mut *mut crate::ffi::c_char,
        result: *mut crate::ffi::c_char,
        maxlen: crate::ffi::c_uint,
    ) -> c_int {
        // SAFETY: `result` is valid for `maxlen` bytes and ours during this call.
        let mut out = unsafe { StatusWriter::from_raw(result.cast(), maxlen) };
        // SAFETY: `argv` holds `argc` valid strings, alive until we return.
        let argv = match unsafe { collect_args(argc, argv) } {
            Ok(argv) => argv,
            Err(e) => return e.to_errno(),
        };
        // SAFETY: `ti` is as described on `Callbacks`.
        let (target, this) = unsafe { (Target::from_raw(ti), Self::data(ti)) };
        match T::message(this, target, Args::new(&argv), &mut out) {
            // Device-mapper returns the reply to user space only when told there is one.
            Ok(()) => c_int::from(!out.is_empty()),
            Err(e) => {
                let name = argv.first().copied().unwrap_or(c_str!(""));
                pr_warn!(
                    "{}: message '{}': {}\n",
                    target.device_name(),
                    name,
                    e.message()
                );
                e.code().to_errno()
            }
        }
    }

    /// # Safety
    ///
    /// Called by device-mapper as the suspend or resume hook, for a target as described on
    /// [`Callbacks`].
    unsafe extern "C" fn presuspend_callback(ti: *mut bindings::dm_target) {
        // SAFETY: `ti` is as described on `Callbacks`.
        let (target, this) = unsafe { (Target::from_raw(ti), Self::data(ti)) };
        T::presuspend(this, target);
    }

    /// # Safety
    ///
    /// As for [`Callbacks::presuspend_callback`].
    unsafe extern "C" fn postsuspend_callback(ti: *mut bindings::dm_target) {
        // SAFETY: `ti` is as described on `Callbacks`.
        let (target, this) = unsafe { (Target::from_raw(ti), Self::data(ti)) };
        T::postsuspend(this, target);
    }

    /// # Safety
    ///
    /// As for [`Callbacks::presuspend_callback`].
    unsafe extern "C" fn preresume_callback(ti: *mut bindings::dm_target) -> c_int {
        // SAFETY: `ti` is as described on `Callbacks`.
        let (target, this) = unsafe { (Target::from_raw(ti), Self::data(ti)) };
        match T::preresume(this, target) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// As for [`Callbacks::presuspend_callback`].
    unsafe extern "C" fn resume_callback(ti: *mut bindings::dm_target) {
        // SAFETY: `ti` is as described on `Callbacks`.
        let (target, this) = unsafe { (Target::from_raw(ti), Self::data(ti)) };
        T::resume(this, target);
    }

    /// # Safety
    ///
    /// Called by device-mapper as `iterate_devices`, for a target as described on
    /// [`Callbacks`], with its callout and the callout's data.
    unsafe extern "C" fn iterate_devices_callback(
        ti: *mut bindings::dm_target,
        callout: bindings::iterate_devices_callout_fn,
        data: *mut crate::ffi::c_void,
    ) -> c_int {
        // SAFETY: `ti`, `callout` and `data` are what device-mapper passed for this iteration.
        let mut visitor = unsafe { DeviceVisitor::new(ti, callout, data) };
        // SAFETY: `ti` is as described on `Callbacks`.
        let (target, this) = unsafe { (Target::from_raw(ti), Self::data(ti)) };
        T::iterate_devices(this, target, &mut visitor).0
    }

    /// # Safety
    ///
    /// Called by device-mapper as `io_hints`, for a target as described on [`Callbacks`], with
    /// limits that are ours to change during the call.
    unsafe extern "C" fn io_hints_callback(
        ti: *mut bindings::dm_target,
        limits: *mut bindings::queue_limits,
    ) {
        // SAFETY: The limits are valid and ours to change during this call.
        let limits = unsafe { QueueLimits::from_raw(limits) };
        // SAFETY: `ti` is as described on `Callbacks`.
        let (target, this) = unsafe { (Target::from_raw(ti), Self::data(ti)) };
        T::io_hints(this, target, limits);
    }

    fn build(
        name: &'static CStr,
        version: [u32; 3],
        module: *mut bindings::module,
    ) -> bindings::target_type {
        bindings::target_type {
            features: 0,
            name: name.as_char_ptr(),
            module,
            version,
            ctr: Some(Self::ctr_callback),
            dtr: Some(Self::dtr_callback),
            map: Some(Self::map_callback),
            clone_and_map_rq: None,
            release_clone_rq: None,
            end_io: if T::HAS_END_IO {
                Some(Self::end_io_callback)
            } else {
                None
            },
            rq_end_io: None,
            presuspend: if T::HAS_PRESUSPEND {
                Some(Self::presuspend_callback)
            } else {
                None
            },
            presuspend_undo: None,
            postsuspend: if T::HAS_POSTSUSPEND {
                Some(Self::postsuspend_callback)
            } else {
                None
            },
            preresume: if T::HAS_PRERESUME {
                Some(Self::preresume_callback)
            } else {
                None
            },
            resume: if T::HAS_RESUME {
                Some(Self::resume_callback)
            } else {
                None
            },
            status: if T::HAS_STATUS {
                Some(Self::status_callback)
            } else {
                None
            },
            message: if T::HAS_MESSAGE {
                Some(Self::message_callback)
            } else {
                None
            },
            prepare_ioctl: None,
            report_zones: None,
            busy: None,
            iterate_devices: if T::HAS_ITERATE_DEVICES {
                Some(Self::iterate_devices_callback)
            } else {
                None
            },
            io_hints: if T::HAS_IO_HINTS {
                Some(Self::io_hints_callback)
            } else {
                None
            },
            direct_access: None,
            dax_zero_page_range: None,
            dax_recovery_write: None,
            list: bindings::list_head {
                next: core::ptr::null_mut(),
                prev: core::ptr::null_mut(),
            },
        }
    }
}

/// What `ti->private` points to for a target written in Rust.
///
/// # Invariants
///
/// `devices` counts the [`Device`] handles and the [`EventHandle`]s made for the target that
/// are not yet dropped (a handle reads its device, an event handle uses the table); `opened`
/// lists every device the constructor got with `dm_get_device` and that is not put yet (only
/// `release` puts them); `data` is
/// null until the constructor succeeds, then what `Data::into_foreign` returned, until `dtr`.
///
/// # Locking
///
/// `opened` is changed only by the constructor (which has the target to itself) and by
/// `release` (in `ctr` or `dtr`, with no other callback running); `devices` is atomic.
pub(crate) struct TargetState {
    devices: WaitCount,
    pub(crate) opened: KVec<NonNull<bindings::dm_dev>>,
    data: *const crate::ffi::c_void,
}

impl TargetState {
    fn new() -> Self {
        Self {
            devices: WaitCount::new(0),
            opened: KVec::new(),
            data: core::ptr::null(),
        }
    }

    /// Counts one more `Device` or `EventHandle` of the target.
    pub(crate) fn get(&self) {
        self.devices.add(1);
    }

    /// Drops the count of a `Device` or `EventHandle`, waking the destructor if it waits for
    /// the last one.
    ///
    /// # Safety
    ///
    /// `state` must be alive and count a `Device` or `EventHandle` that is going away; after
    /// this call it may be freed (by [`TargetState::release`]).
    pub(crate) unsafe fn put(state: NonNull<TargetState>) {
        // SAFETY: Alive, by the safety requirements; `sub_raw` uses it only as an address
        // once the count is down (`release` may free it then).
        unsafe { WaitCount::sub_raw(core::ptr::addr_of!((*state.as_ptr()).devices), 1) };
    }

    /// Waits until every `Device` and `EventHandle` of the target has been dropped, puts the
    /// devices the constructor got, then frees the state.
    ///
    /// Handles read their device and `EventHandle`s use the table, which device-mapper
    /// destroys right after `dtr`. They normally live in the target's data, dropped just
    /// before this; one that safe code kept elsewhere makes this wait (`wait_var_event`,
    /// woken by the last [`TargetState::put`]), reported in the log, rather than put a device
    /// in use. Device-mapper calls `dtr` only once no bio of the target is in flight, so no
    /// bio is on a device put here.
    ///
    /// # Context
    ///
    /// Sleeps (waits; `dm_put_device` takes the table's mutex and may close the device):
    /// `ctr` and `dtr` run in process context.
    ///
    /// # Safety
    ///
    /// `state` must come from `KBox::into_raw` in `ctr`, and not be used by callbacks any more.
    unsafe fn release(state: *mut TargetState, target: &Target) {
        // SAFETY: `state` is valid until freed below.
        let devices = unsafe { &(*state).devices };
        if devices.get() != 0 {
            pr_err!(
                "{}: destructor waits for devices the target still holds\n",
                target.device_name()
            );
            // `dtr` and `ctr` run in process context, holding no spinlock.
            devices.wait_zero();
        }
        // SAFETY: By the safety requirements, `state` came from `KBox::into_raw` and nobody
        // else uses it now that no `Device` refers to it.
        let state = unsafe { KBox::from_raw(state) };
        for dev in state.opened.iter() {
            // SAFETY: `dev` was got by `dm_get_device` for this target, whose table is live
            // (we are in its `ctr` or `dtr`), and is put only here.
            unsafe { bindings::dm_put_device(target.as_raw(), dev.as_ptr()) };
        }
        drop(state);
    }
}

/// Sets `ti->error` and returns the errno for a failed constructor.
fn fail_ctr(target: &mut Target, e: TargetError) -> c_int {
    // `ti->error` is `char *` for historical reasons; device-mapper only reads it.
    target.raw_mut().error = e.message().as_char_ptr().cast_mut();
    e.code().to_errno()
}

/// Views device-mapper's `argv` as a vector of C strings.
///
/// # Safety
///
/// `argv` must hold `argc` valid NUL-terminated strings, alive for `'a`.
unsafe fn collect_args<'a>(
    argc: crate::ffi::c_uint,
    argv: *mut *mut crate::ffi::c_char,
) -> Result<KVec<&'a CStr>> {
    let argc = argc as usize;
    let mut v = KVec::with_capacity(argc, GFP_KERNEL)?;
    for i in 0..argc {
        // SAFETY: `argv` holds `argc` valid string pointers.
        let arg = unsafe { CStr::from_char_ptr(*argv.add(i)) };
        v.push(arg, GFP_KERNEL)?;
    }
    Ok(v)
}

/// A registered target type; dropping it unregisters it (`dm_register_target`).
///
/// Targets of the type point at it (`ti->type`) until they are destroyed, so it must live as
/// long as the module: device-mapper holds a reference to the module while any target of the
/// type exists, so the module cannot be unloaded while tables use it. Modules get this right by
/// construction with [`module_dm_target!`](crate::module_dm_target).
///
/// # Invariants
///
/// `tt` is registered with device-mapper until drop.
pub struct Registration<T: TargetOperations> {
    tt: Pin<KBox<Opaque<bindings::target_type>>>,
    _p: PhantomData<T>,
}

// SAFETY: After registration, device-mapper core accesses the target type under its own lock;
// we only touch it again to unregister it, from whatever thread drops the registration.
unsafe impl<T: TargetOperations> Send for Registration<T> {}

// SAFETY: `&Registration` gives no access to the target type.
unsafe impl<T: TargetOperations> Sync for Registration<T> {}

impl<T: TargetOperations> Registration<T> {
    /// Registers target type `name`, version `version`, implemented by `T`, for `module`.
    ///
    /// # Safety
    ///
    /// The registration must not be dropped before `module` is unloaded (it is the module's
    /// own, dropped in its exit function).
    pub unsafe fn new(
        module: &'static ThisModule,
        name: &'static CStr,
        version: [u32; 3],
    ) -> Result<Self> {
        const {
            // Device-mapper places per-bio data right before its `struct dm_target_io`, which
            // is 8-byte aligned on 64-bit (4 on 32-bit).
            assert!(
                core::mem::align_of::<PerBioData<T::PerBio>>() <= core::mem::align_of::<u64>(),
                "per-bio data is only 8-byte aligned"
            );
            assert!(
                PerBioData::<T::PerBio>::SIZE <= u32::MAX as usize,
                "per-bio data too large"
            );
        };
        let tt = KBox::pin(
            Opaque::new(Callbacks::<T>::build(name, version, module.as_ptr())),
            GFP_KERNEL,
        )?;
        // SAFETY: `tt` is a valid target type at a fixed address until it is unregistered in
        // drop; `name` is static.
        to_result(unsafe { bindings::dm_register_target(tt.get()) }).inspect_err(|e| {
            if *e == EBUSY {
                pr_err!(
                    "target type `{}' is already registered by another module (e.g. the C \
                     implementation): unload that module first\n",
                    name
                );
            }
        })?;
        // INVARIANT: Registered just now.
        Ok(Self {
            tt,
            _p: PhantomData,
        })
    }
}

impl<T: TargetOperations> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants the target type is registered.
        unsafe { bindings::dm_unregister_target(self.tt.get()) }
    }
}

/// Declares a module that registers one device-mapper target type for as long as it is loaded.
///
/// This example is not a doctest: it declares a module, and doctests are built into the kernel
/// image, where it would register `rlinear` at boot. `rust/md/dm_rlinear.rs` compiles the same
/// declaration.
///
/// ```ignore
/// module_dm_target! {
///     type: RLinear,
///     target: "rlinear",
///     version: [1, 0, 0],
///     name: "dm_rlinear",
///     description: "...",
///     license: "GPL",
/// }
/// ```
#[macro_export]
macro_rules! module_dm_target {
    (type: $type:ty, target: $target:literal, version: [$a:expr, $b:expr, $c:expr],
     $($rest:tt)*) => {
        struct __DmTargetModule {
            _registration: $crate::device_mapper::Registration<$type>,
        }

        impl $crate::Module for __DmTargetModule {
            fn init(module: &'static $crate::ThisModule) -> $crate::error::Result<Self> {
                Ok(Self {
                    // SAFETY: The registration is a field of the module, which is dropped only
                    // when the module is unloaded.
                    _registration: unsafe {
                        $crate::device_mapper::Registration::new(
                            module,
                            $crate::c_str!($target),
                            [$a, $b, $c],
                        )
                    }?,
                })
            }
        }

        $crate::prelude::module! {
            type: __DmTargetModule,
            $($rest)*
        }
    };
}

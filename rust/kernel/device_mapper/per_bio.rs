// SPDX-License-Identifier: GPL-2.0

//! The per-bio data of a Rust target, and what the kernel crate keeps there: which target
//! mapped the bio, and whether it is in its own `end_io`.
//!
//! Device-mapper gives each bio it hands a target `per_io_data_size` bytes of the target's
//! own (`dm_per_bio_data`). A Rust target's are a [`PerBioData<P>`]: a [`Header`] the kernel
//! crate keeps, then the target's `P`. This file owns that layout (the size the constructor
//! sets, the offset of `P`) and the header's two jobs.
//!
//! **A bio goes only to a device of the target that mapped it.** A `Device` stays open until
//! its target is destroyed, which device-mapper does only once the target's bios are done; a
//! bio of another target (safe code can share a handle between instances through a static)
//! is not waited for. The map trampoline records the target in the header, and
//! `Device::set_bio_device` with a device of another target marks the bio misdirected instead
//! of pointing it there: such a bio is failed where it would be sent ([`Header::misdirected`]).
//!
//! **A bio is never ended inside its own `end_io`.** `bio_endio` on a device-mapper bio runs
//! device-mapper's completion, which calls the target's `end_io` with the same bio. A target
//! that ends (or drops) the bio it is handed in `end_io` would so re-enter `end_io` on the same
//! stack, and again if that call does the same: without bound. So the `end_io` trampoline
//! marks the bio as being in `end_io` ([`Header::enter`]) and `Bio::end`, its drop and
//! `Bio::submit` check the mark. While it is set:
//! - an end from inside `end_io` (the same task: its stack, or an interrupt of it) only
//!   records the status, and the trampoline completes the bio with it when `end_io` returns
//!   (`DM_ENDIO_DONE`, no second `end_io`);
//! - an end from another task (a kept bio handed over before the trampoline has returned) is
//!   recorded too, and the trampoline then calls `end_io` again, in a loop rather than
//!   recursively: as `bio_endio` would have had it come a moment later;
//! - a submission from inside `end_io` (a context error: it may sleep) is done by the
//!   trampoline on return; one from another task sleeps until the trampoline has left
//!   ([`Header::leave`] wakes it), since the trampoline's context may be an interrupt.
//!
//! Whether an end or a submission comes from inside `end_io` is told by the task: code that
//! runs with the trampoline's `current` is on its stack, or interrupts it on its CPU.
//!
//! Ending *another* bio inside `end_io` still runs that bio's `end_io` on the same stack (one
//! level per bio ended, as in C).

use crate::{bindings, block::bio::Status};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};

/// The bytes device-mapper keeps in front of each bio of a Rust target.
///
/// `per_io_data_size` is [`PerBioData::SIZE`]; the map trampoline writes a new value into it
/// for every bio it hands the target.
#[repr(C)]
pub(crate) struct PerBioData<P> {
    pub(crate) header: Header,
    pub(crate) data: P,
}

impl<P> PerBioData<P> {
    /// The size device-mapper is told (`per_io_data_size`), and passes to `dm_per_bio_data`.
    pub(crate) const SIZE: usize = core::mem::size_of::<Self>();
}

impl<P: Default> PerBioData<P> {
    /// The value for a bio that `target` (its `TargetState`) is about to map.
    pub(crate) fn new(target: *const crate::ffi::c_void) -> Self {
        Self {
            header: Header::new(target),
            data: P::default(),
        }
    }
}

/// `state`'s kinds (its low two bits). Not in `end_io`: ends and submissions go ahead.
const IDLE: u32 = 0;
/// In the trampoline's call of `end_io`.
const IN_END_IO: u32 = 1;
/// Ended while in `end_io`; the status is in the bits above [`STATUS_SHIFT`].
const ENDED: u32 = 2;
/// Submitted from inside `end_io`.
const SUBMIT: u32 = 3;
const KIND_MASK: u32 = 3;
/// With `IN_END_IO`: a task sleeps until the trampoline leaves.
const WAITER: u32 = 1 << 2;
/// With `ENDED`: ended by another task than the trampoline's.
const ELSEWHERE: u32 = 1 << 3;
const STATUS_SHIFT: u32 = 8;

/// The kernel crate's part of a bio's per-bio data (see the [module documentation](self)).
///
/// # Invariants
///
/// `state` is `IDLE`, `IN_END_IO` (maybe with `WAITER`), `ENDED | status << STATUS_SHIFT`
/// (maybe with `ELSEWHERE`) or `SUBMIT`; it leaves `IDLE` only in [`Header::enter`], called by
/// the one who holds the bio, and is `IDLE` again after [`Header::leave`]. `owner` is the
/// `current` of the last `enter`. `target` is the `TargetState` of the target that mapped the
/// bio. The fields are atomics because the trampoline reads the header while the target, to
/// which it handed the bio, may use it on another CPU.
pub(crate) struct Header {
    state: AtomicU32,
    owner: AtomicPtr<bindings::task_struct>,
    target: AtomicPtr<crate::ffi::c_void>,
    misdirected: AtomicBool,
}

/// What happened to a bio while it was in `end_io`, as [`Header::leave`] found it.
pub(crate) enum Left {
    /// Nothing: the target kept it, or gave it back.
    Untouched,
    /// It was ended with this status from inside `end_io`: complete it (`DM_ENDIO_DONE`).
    Ended(Status),
    /// It was ended with this status by another task: call `end_io` again with it.
    EndedElsewhere(Status),
    /// It was submitted from inside `end_io`: submit it now.
    Submit,
}

fn current() -> *mut bindings::task_struct {
    // SAFETY: `get_current` has no requirements; the pointer is only compared, never used.
    unsafe { bindings::get_current() }
}

impl Header {
    fn new(target: *const crate::ffi::c_void) -> Self {
        Self {
            state: AtomicU32::new(IDLE),
            owner: AtomicPtr::new(core::ptr::null_mut()),
            target: AtomicPtr::new(target.cast_mut()),
            misdirected: AtomicBool::new(false),
        }
    }

    /// Whether `target` (a `TargetState`) mapped the bio.
    pub(crate) fn mapped_by(&self, target: *const crate::ffi::c_void) -> bool {
        core::ptr::eq(self.target.load(Ordering::Relaxed), target)
    }

    /// Marks the bio as pointed at a device of another target (`misdirected`), or not.
    pub(crate) fn set_misdirected(&self, misdirected: bool) {
        self.misdirected.store(misdirected, Ordering::Relaxed);
    }

    /// Whether the bio was last pointed at a device of another target: it must then be
    /// failed, not sent (that device may be closed under it).
    pub(crate) fn misdirected(&self) -> bool {
        self.misdirected.load(Ordering::Relaxed)
    }

    /// Marks the bio as in `end_io`, called by the trampoline that holds it.
    pub(crate) fn enter(&self) {
        self.owner.store(current(), Ordering::Relaxed);
        // Release: a task that ends or submits the bio got it from the target after this
        // (through a lock or a list, which orders it after), and reads `owner` after `state`.
        self.state.store(IN_END_IO, Ordering::Release);
    }

    /// Clears the mark, saying what was done to the bio meanwhile, and wakes a task waiting
    /// to submit it.
    ///
    /// After it returns [`Left::Untouched`] the bio may be completed by others at any time:
    /// the caller must not use it (nor this header) any more.
    pub(crate) fn leave(&self) -> Left {
        let old = self.state.swap(IDLE, Ordering::AcqRel);
        if old & WAITER != 0 {
            // SAFETY: The waiter holds the bio, so the header is alive; `wake_up_var` uses the
            // address only as a hash key, after the helper's full barrier.
            unsafe { bindings::wake_up_var_mb(self.state.as_ptr().cast()) };
        }
        // The status was stored from a `blk_status_t` (u8).
        let status = Status::from_raw(((old >> STATUS_SHIFT) & 0xff) as bindings::blk_status_t);
        match old & KIND_MASK {
            ENDED if old & ELSEWHERE != 0 => Left::EndedElsewhere(status),
            ENDED => Left::Ended(status),
            SUBMIT => Left::Submit,
            _ => Left::Untouched,
        }
    }

    /// Records `status` for the trampoline if the bio is in `end_io`: returns `true` if so
    /// (the caller must then not end the bio), `false` if the bio is to be ended now.
    pub(crate) fn defer_end(&self, status: Status) -> bool {
        let mut ended = ENDED | (u32::from(status.as_raw()) << STATUS_SHIFT);
        // Only `enter` wrote `owner`, before the `state` the exchange reads (acquire).
        if self.state.load(Ordering::Acquire) & KIND_MASK != IN_END_IO {
            return false;
        }
        if self.owner.load(Ordering::Relaxed) != current() {
            ended |= ELSEWHERE;
        }
        // (No `WAITER` can be set: a waiter is the bio's holder, busy submitting it.)
        self.state
            .compare_exchange(IN_END_IO, ended, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// For a submission: returns `true` if it comes from inside the bio's `end_io` and was
    /// recorded for the trampoline (the caller must then not submit the bio); otherwise waits
    /// until the bio is not in `end_io` and returns `false`.
    ///
    /// # Context
    ///
    /// Process context (a submission may sleep anyway): sleeps while another task's
    /// trampoline has the bio in `end_io`.
    pub(crate) fn defer_submit(&self) -> bool {
        loop {
            let state = self.state.load(Ordering::Acquire);
            if state & KIND_MASK != IN_END_IO {
                return false;
            }
            if self.owner.load(Ordering::Relaxed) == current() {
                if self
                    .state
                    .compare_exchange(state, SUBMIT, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            if state & WAITER == 0
                && self
                    .state
                    .compare_exchange(state, state | WAITER, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
            {
                continue;
            }
            // SAFETY: The state is alive (we hold the bio); the helper waits until its kind
            // is no longer `IN_END_IO`, and `leave` wakes it after changing it.
            unsafe { bindings::wait_var_event_bits_ne(self.state.as_ptr(), KIND_MASK, IN_END_IO) };
        }
    }
}

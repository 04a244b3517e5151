// SPDX-License-Identifier: GPL-2.0

//! The per-bio data of a Rust target, and what a bio ended inside its own `end_io` does.
//!
//! Device-mapper gives each bio it hands a target `per_io_data_size` bytes of the target's
//! own (`dm_per_bio_data`). A Rust target's are a [`PerBioData<P>`]: a [`Header`] the kernel
//! crate keeps, then the target's `P`. This file owns that layout (the size the constructor
//! sets, the offset of `P`) and the header's one job:
//!
//! **A bio is never ended or sent inside its own `end_io`.** `bio_endio` on a device-mapper
//! bio runs device-mapper's completion, which calls the target's `end_io` with the same bio.
//! A target that ends (or drops) the bio it is handed in `end_io` would so re-enter `end_io`
//! on the same stack, and again if that call does the same: without bound. So the `end_io`
//! trampoline marks the bio as being in `end_io` ([`Header::enter`]) and [`Bio::end`], its
//! drop and [`Bio::submit`] check the mark: while it is set, ending only records the status
//! and the trampoline completes the bio with it when `end_io` returns (`DM_ENDIO_DONE`, no
//! second `end_io`); a submission is likewise done by the trampoline when `end_io` returns
//! (on that same stack, where the target asked for it). [`Header::leave`] clears the mark.
//!
//! The mark is on the bio, not on the stack: a target may keep the bio (`DM_ENDIO_INCOMPLETE`)
//! and hand it to another thread, which may end it before the trampoline has returned. Such
//! an end is recorded too, and completed by the trampoline (the bio is completed once, by
//! whoever comes second: a compare-and-exchange decides). A submission from another thread
//! waits until the trampoline has left instead (it cannot be done in the trampoline's
//! context, which may be an interrupt); the trampoline is running on another CPU then and
//! has only its return left, so the wait is short. Whether a submission comes from inside
//! `end_io` is told by the task: code that runs with the trampoline's `current` is on its
//! stack, or interrupts it on its CPU (where waiting for it could never end).
//!
//! [`Bio::end`]: crate::block::bio::Bio::end
//! [`Bio::submit`]: crate::block::bio::Bio::submit

use crate::{bindings, block::bio::Status};
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

/// The bytes device-mapper keeps in front of each bio of a Rust target.
///
/// `per_io_data_size` is `size_of::<PerBioData<P>>()`; the map trampoline writes a new value
/// into it for every bio it hands the target.
#[repr(C)]
pub(crate) struct PerBioData<P> {
    pub(crate) header: Header,
    pub(crate) data: P,
}

impl<P> PerBioData<P> {
    /// The size device-mapper is told (`per_io_data_size`), and passes to `dm_per_bio_data`.
    pub(crate) const SIZE: usize = core::mem::size_of::<Self>();
}

impl<P: Default> Default for PerBioData<P> {
    fn default() -> Self {
        Self {
            header: Header::new(),
            data: P::default(),
        }
    }
}

/// Not in `end_io`: ends and submissions go ahead.
const IDLE: u32 = 0;
/// In the trampoline's call of `end_io`.
const IN_END_IO: u32 = 1;
/// Ended while in `end_io`; the status is in the bits above [`STATUS_SHIFT`].
const ENDED: u32 = 2;
/// Submitted from inside `end_io`.
const SUBMIT: u32 = 3;
const KIND_MASK: u32 = 0xff;
const STATUS_SHIFT: u32 = 8;

/// The kernel crate's part of a bio's per-bio data: whether the bio is in `end_io`, and what
/// was done to it meanwhile (see the [module documentation](self)).
///
/// # Invariants
///
/// `state` is one of `IDLE`, `IN_END_IO`, `ENDED | status << STATUS_SHIFT` or `SUBMIT`; it
/// leaves `IDLE` only in [`Header::enter`], called by the one who holds the bio, and is
/// `IDLE` again after [`Header::leave`]. `owner` is the `current` of the last `enter`.
pub(crate) struct Header {
    state: AtomicU32,
    owner: AtomicPtr<bindings::task_struct>,
}

/// What happened to a bio while it was in `end_io`, as [`Header::leave`] found it.
pub(crate) enum Left {
    /// Nothing: the target kept it, or gave it back.
    Untouched,
    /// It was ended with this status: complete it with that (`DM_ENDIO_DONE`).
    Ended(Status),
    /// It was submitted from inside `end_io`: submit it now.
    Submit,
}

fn current() -> *mut bindings::task_struct {
    // SAFETY: `get_current` has no requirements; the pointer is only compared, never used.
    unsafe { bindings::get_current() }
}

impl Header {
    const fn new() -> Self {
        Self {
            state: AtomicU32::new(IDLE),
            owner: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// Marks the bio as in `end_io`, called by the trampoline that holds it.
    pub(crate) fn enter(&self) {
        self.owner.store(current(), Ordering::Relaxed);
        // Release: a thread that ends or submits the bio got it from the target after this
        // (through a lock or a list, which orders it after), and reads `owner` after `state`.
        self.state.store(IN_END_IO, Ordering::Release);
    }

    /// Clears the mark, saying what was done to the bio meanwhile.
    pub(crate) fn leave(&self) -> Left {
        let old = self.state.swap(IDLE, Ordering::AcqRel);
        match old & KIND_MASK {
            ENDED => Left::Ended(Status::from_raw(
                // The status was stored from a `blk_status_t` (u8).
                ((old >> STATUS_SHIFT) & 0xff) as bindings::blk_status_t,
            )),
            SUBMIT => Left::Submit,
            _ => Left::Untouched,
        }
    }

    /// Records `status` for the trampoline if the bio is in `end_io`: returns `true` if so
    /// (the caller must then not end the bio), `false` if the bio is to be ended now.
    pub(crate) fn defer_end(&self, status: Status) -> bool {
        let ended = ENDED | (u32::from(status.as_raw()) << STATUS_SHIFT);
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
    /// Process context (a submission may sleep anyway): waits, spinning, only while another
    /// CPU runs the trampoline's last steps.
    pub(crate) fn defer_submit(&self) -> bool {
        loop {
            if self.state.load(Ordering::Acquire) != IN_END_IO {
                return false;
            }
            if self.owner.load(Ordering::Relaxed) == current() {
                if self
                    .state
                    .compare_exchange(IN_END_IO, SUBMIT, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            core::hint::spin_loop();
        }
    }
}

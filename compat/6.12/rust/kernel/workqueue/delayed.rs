// SPDX-License-Identifier: GPL-2.0

//! Work that runs after a delay (`struct delayed_work`).
//!
//! 6.12 layer: [`DelayedWork`], [`new_delayed_work!`], [`impl_has_delayed_work!`] and
//! [`Queue::enqueue_delayed`] as mainline (7.3) has them in `workqueue.rs` (there
//! `enqueue_delayed` takes any queue: see below). Cancelling and disabling are ours on both
//! kernels (`delayed_sync.rs`).
//!
//! A [`DelayedWork`] field makes a struct a work item that can be queued with a delay, through
//! [`Queue::enqueue_delayed`]. It runs like any [`WorkItem`]: its `run` gets back the pointer
//! (e.g. the [`Arc`]) that was queued. A timer queues the work when the delay has passed.
//!
//! Delayed work goes on queues that live forever (the system ones, `&'static Queue`): a timer
//! still pending when a driver's own queue is destroyed would queue onto a freed queue. Work
//! that must run on an [`OwnedQueue`](super::OwnedQueue) is queued there by the delayed work.

use super::{HasWork, Queue, RawWorkItem, Work, WorkItem, WorkItemPointer};
use crate::{
    bindings,
    init::PinInit,
    pin_init,
    str::CStr,
    sync::{Arc, LockClassKey},
    time::Jiffies,
    types::Opaque,
};
use core::marker::PhantomData;
use macros::pin_data;

/// Creates a [`DelayedWork`] initialiser with the given name and new lock classes.
#[macro_export]
macro_rules! new_delayed_work {
    ($($name:literal)?) => {
        $crate::workqueue::DelayedWork::new(
            $crate::optional_name!($($name)?),
            $crate::static_lock_class!(),
            $crate::static_lock_class!(),
        )
    };
}
pub use new_delayed_work;

/// A work item that is queued after a delay: wraps the kernel's `struct delayed_work`.
///
/// Declare the field with [`impl_has_delayed_work!`](crate::impl_has_delayed_work).
#[pin_data]
#[repr(transparent)]
pub struct DelayedWork<T: ?Sized, const ID: u64 = 0> {
    #[pin]
    dwork: Opaque<bindings::delayed_work>,
    _inner: PhantomData<T>,
}

// SAFETY: Kernel work items are usable from any thread; the work item does not contain a `T`.
unsafe impl<T: ?Sized, const ID: u64> Send for DelayedWork<T, ID> {}
// SAFETY: As above.
unsafe impl<T: ?Sized, const ID: u64> Sync for DelayedWork<T, ID> {}

impl<T: ?Sized, const ID: u64> DelayedWork<T, ID> {
    /// Where the `work_struct` is inside a `DelayedWork` (inside `struct delayed_work`): what
    /// [`impl_has_delayed_work!`](crate::impl_has_delayed_work) adds to the field's offset, so
    /// that [`HasWork::OFFSET`] leads from the outer type to its `work_struct`.
    pub const WORK_OFFSET: usize = core::mem::offset_of!(bindings::delayed_work, work);

    /// Creates a new instance of [`DelayedWork`].
    #[inline]
    pub fn new(
        name: &'static CStr,
        work_key: &'static LockClassKey,
        timer_key: &'static LockClassKey,
    ) -> impl PinInit<Self>
    where
        T: WorkItem<ID>,
    {
        pin_init!(Self {
            dwork <- Opaque::ffi_init(|slot: *mut bindings::delayed_work| {
                // SAFETY: `slot` is valid for writes. The `WorkItemPointer` implementation
                // promises that `run` can be used as the work item function; the timer function
                // is the one `INIT_DELAYED_WORK` uses, and like it the timer is IRQ-safe.
                unsafe {
                    bindings::init_work_with_key(
                        core::ptr::addr_of_mut!((*slot).work),
                        Some(T::Pointer::run),
                        false,
                        name.as_char_ptr(),
                        work_key.as_ptr(),
                    );
                    bindings::init_timer_key(
                        core::ptr::addr_of_mut!((*slot).timer),
                        Some(bindings::delayed_work_timer_fn),
                        bindings::TIMER_IRQSAFE,
                        name.as_char_ptr(),
                        timer_key.as_ptr(),
                    );
                }
            }),
            _inner: PhantomData,
        })
    }

    /// The [`Work`] inside a delayed work item (its `work_struct`, at
    /// [`Self::WORK_OFFSET`]).
    ///
    /// # Safety
    ///
    /// `ptr` must not be dangling and must be properly aligned (its memory need not be
    /// initialised).
    #[inline]
    pub unsafe fn raw_as_work(ptr: *mut Self) -> *mut Work<T, ID> {
        let dwork = Opaque::raw_get(ptr.cast_const().cast::<Opaque<bindings::delayed_work>>());
        // SAFETY: `DelayedWork` is transparent over `Opaque<delayed_work>`, so `dwork` points
        // into the same allocation as `ptr` (not dangling, aligned, by the safety
        // requirements); projecting to a field reads nothing. `Work` is transparent over
        // `Opaque<work_struct>`.
        unsafe { core::ptr::addr_of_mut!((*dwork).work) }.cast()
    }

    /// The `delayed_work` whose `work_struct` `work` is: the inverse of
    /// [`Self::raw_as_work`].
    ///
    /// # Safety
    ///
    /// `work` must point at the `work_struct` of a `delayed_work`.
    #[inline]
    unsafe fn raw_of_work(work: *mut Work<T, ID>) -> *mut bindings::delayed_work {
        // SAFETY: By the safety requirements `work` is the `work` field of a `delayed_work`.
        unsafe {
            crate::container_of!(
                work.cast::<bindings::work_struct>(),
                bindings::delayed_work,
                work
            )
        }
        .cast_mut()
    }
}

/// Declares that a type's [`HasWork`] field is a [`DelayedWork`]; implement it with
/// [`impl_has_delayed_work!`](crate::impl_has_delayed_work).
///
/// # Safety
///
/// The [`HasWork`] implementation must point at the `work_struct` of a field of type
/// [`DelayedWork<T, ID>`] ([`DelayedWork::raw_as_work`], at [`DelayedWork::WORK_OFFSET`] in it).
pub unsafe trait HasDelayedWork<T, const ID: u64 = 0>: HasWork<T, ID> {}

/// Implements [`HasWork`] and [`HasDelayedWork`] for a type with a [`DelayedWork`] field.
#[macro_export]
macro_rules! impl_has_delayed_work {
    ($(impl$({$($generics:tt)*})?
       HasDelayedWork<$work_type:ty $(, $id:tt)?>
       for $self:ty
       { self.$field:ident }
    )*) => {$(
        // SAFETY: `raw_get_work` only compiles if the field is a `DelayedWork` of this type and
        // ID; it and `OFFSET` both lead to the field's `work_struct`.
        unsafe impl$(<$($generics)+>)? $crate::workqueue::HasWork<$work_type $(, $id)?> for $self {
            const OFFSET: usize = ::core::mem::offset_of!(Self, $field) as usize
                + $crate::workqueue::DelayedWork::<$work_type $(, $id)?>::WORK_OFFSET;

            #[inline]
            unsafe fn raw_get_work(
                ptr: *mut Self,
            ) -> *mut $crate::workqueue::Work<$work_type $(, $id)?> {
                // SAFETY: The caller promises that the pointer is not dangling.
                unsafe {
                    $crate::workqueue::DelayedWork::raw_as_work(
                        ::core::ptr::addr_of_mut!((*ptr).$field),
                    )
                }
            }
        }

        // SAFETY: The `HasWork` implementation above points at the `DelayedWork` field's work.
        unsafe impl$(<$($generics)+>)? $crate::workqueue::HasDelayedWork<$work_type $(, $id)?>
            for $self {}
    )*};
}
pub use impl_has_delayed_work;

impl Queue {
    /// Queues `w` to run after `delay` jiffies (`queue_delayed_work_on`).
    ///
    /// Like [`Queue::enqueue`], returns the work item back if it is already pending. Only for
    /// queues that are never destroyed (see the [module documentation](self)).
    pub fn enqueue_delayed<T, const ID: u64>(
        &'static self,
        w: Arc<T>,
        delay: Jiffies,
    ) -> <Arc<T> as RawWorkItem<ID>>::EnqueueOutput
    where
        T: HasDelayedWork<T, ID> + WorkItem<ID, Pointer = Arc<T>> + Send + Sync + 'static,
    {
        let queue_ptr = self.0.get();
        // SAFETY: As for `Queue::enqueue`: we only return `false` if the work is already
        // queued, and `Arc<T>` is `Send` and static. The `work_struct` that `__enqueue` passes is
        // that of the `delayed_work` of `T` (`HasDelayedWork`), whose `delayed_work` is what
        // `queue_delayed_work_on` needs.
        unsafe {
            w.__enqueue(move |work_ptr| {
                bindings::queue_delayed_work_on(
                    bindings::wq_misc_consts_WORK_CPU_UNBOUND as _,
                    queue_ptr,
                    DelayedWork::<T, ID>::raw_of_work(work_ptr.cast()),
                    delay,
                )
            })
        }
    }
}

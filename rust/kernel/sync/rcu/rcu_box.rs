// SPDX-License-Identifier: GPL-2.0

//! [`RcuBox`]: an owned, optional box that readers reach under an RCU [`Guard`] without any
//! lock, and that its owner can take away ([`RcuBoxOwner::retire`]): the value is dropped only
//! after a grace period, when no reader that saw it is left. A target uses it for in-core maps
//! it no longer needs (e.g. once every region of a clone is copied), which bios in flight may
//! still be reading. (Mainline's `Revocable` also drops its value after a grace period, but
//! gives no sleeping access to the owner and does not hand the value back.)

use super::{synchronize_rcu, Guard};
use crate::{
    alloc::KBox,
    new_mutex,
    prelude::{pin_data, pin_init, pinned_drop, PinInit},
    sync::{
        lock::{mutex::MutexBackend, Guard as LockGuard},
        Mutex,
    },
};
use core::{
    marker::PhantomData,
    pin::Pin,
    ptr,
    sync::atomic::{AtomicPtr, Ordering},
};

/// An optional `KBox<T>`: readers reach it under a [`Guard`] without a lock ([`RcuBox::get`]);
/// its owner side, serialised by a mutex, may read it while sleeping and may take it away
/// ([`RcuBox::owner`], [`RcuBoxOwner::retire`]).
///
/// # Invariants
///
/// `ptr` is null or a pointer from [`KBox::into_raw`], owned by this value. It only changes
/// from non-null to null, under `owner`; the value it pointed to is dropped only after an RCU
/// grace period that began after the change.
#[pin_data(PinnedDrop)]
pub struct RcuBox<T> {
    ptr: AtomicPtr<T>,
    #[pin]
    owner: Mutex<()>,
    _owns: PhantomData<KBox<T>>,
}

// SAFETY: Moving an `RcuBox` moves the `KBox<T>` it owns: `T: Send` makes that sound.
unsafe impl<T: Send> Send for RcuBox<T> {}

// SAFETY: `&RcuBox` hands out `&T` to any thread (`T: Sync`), and retiring drops the `T` on
// whichever thread retires it (`T: Send`).
unsafe impl<T: Send + Sync> Sync for RcuBox<T> {}

impl<T> RcuBox<T> {
    /// An `RcuBox` holding `value`.
    pub fn new(value: KBox<T>) -> impl PinInit<Self> {
        pin_init!(Self {
            ptr: AtomicPtr::new(KBox::into_raw(value)),
            owner <- new_mutex!(()),
            _owns: PhantomData,
        })
    }

    /// The value, if not retired, for as long as the read-side section `_guard` lasts.
    pub fn get<'a>(&'a self, _guard: &'a Guard) -> Option<&'a T> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: By the type invariants `p` is null or points to a valid `T`. A non-null `p`
        // loaded while `_guard`'s section is running stays valid until the section ends: it is
        // dropped only after a grace period that began after `ptr` stopped pointing to it,
        // which waits for this section. The reference cannot outlive `_guard`.
        unsafe { p.as_ref() }
    }

    /// The owner side: excludes other owners (and retiring) while it lives, so it may read the
    /// value while sleeping. Process context (takes a mutex).
    pub fn owner(&self) -> RcuBoxOwner<'_, T> {
        RcuBoxOwner {
            boxed: self,
            _guard: self.owner.lock(),
        }
    }
}

#[pinned_drop]
impl<T> PinnedDrop for RcuBox<T> {
    fn drop(self: Pin<&mut Self>) {
        let p = self.ptr.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: By the type invariants `p` came from `KBox::into_raw` and is owned by
            // this value; being dropped (`&mut`), it has no reader left holding a reference.
            drop(unsafe { KBox::from_raw(p) });
        }
    }
}

/// The owner side of an [`RcuBox`], holding its mutex.
pub struct RcuBoxOwner<'a, T> {
    boxed: &'a RcuBox<T>,
    _guard: LockGuard<'a, (), MutexBackend>,
}

impl<T> RcuBoxOwner<'_, T> {
    /// The value, if not retired. It stays valid while `self` lives (only an owner retires).
    pub fn get(&self) -> Option<&T> {
        let p = self.boxed.ptr.load(Ordering::Acquire);
        // SAFETY: By the type invariants `p` is null or points to a valid `T`; only a holder
        // of the owner mutex (which `self` holds) changes `ptr` and drops the value, so it
        // stays valid while the returned reference (borrowing `self`) lives.
        unsafe { p.as_ref() }
    }

    /// Takes the value away: readers see `None` from now on. Waits for the readers that may
    /// still see it ([`synchronize_rcu`]: sleeps), then returns it, for the caller to drop or
    /// keep.
    pub fn retire(self) -> Option<KBox<T>> {
        let p = self.boxed.ptr.swap(ptr::null_mut(), Ordering::AcqRel);
        if p.is_null() {
            return None;
        }
        synchronize_rcu();
        // SAFETY: `p` came from `KBox::into_raw` (type invariants) and is no longer reachable
        // through the `RcuBox`; every reader that loaded it did so in a read-side section begun
        // before the swap, which `synchronize_rcu` waited for, and no other owner exists while
        // `self` holds the mutex.
        Some(unsafe { KBox::from_raw(p) })
    }
}

// SPDX-License-Identifier: GPL-2.0

//! A spinlock that keeps local interrupts off while held.
//!
//! C header: [`include/linux/spinlock.h`](srctree/include/linux/spinlock.h)
//!
//! 6.12 layer: mainline (7.3) has `SpinLockIrq` under the same names (`new_spinlock_irq!`,
//! `lock()`), with the same nesting rule (the state saved by the outermost disable is restored
//! by the last enable). Unlike mainline's, this one is not for PREEMPT_RT, where a `spinlock_t`
//! sleeps and may not be taken with interrupts off: such a kernel does not build with it.

use crate::bindings;

#[cfg(CONFIG_PREEMPT_RT)]
compile_error!(
    "kernel::sync::SpinLockIrq of the 6.12 layer does not support PREEMPT_RT (use 7.3's)"
);

/// Creates a [`SpinLockIrq`] initialiser with the given name and a newly-created lock class.
///
/// It uses the name if one is given, otherwise it generates one based on the file name and line
/// number.
#[macro_export]
macro_rules! new_spinlock_irq {
    ($inner:expr $(, $name:literal)? $(,)?) => {
        $crate::sync::SpinLockIrq::new(
            $inner, $crate::optional_name!($($name)?), $crate::static_lock_class!())
    };
}
pub use new_spinlock_irq;

/// A spinlock for data shared with interrupt context.
///
/// A plain [`SpinLock`](super::spinlock::SpinLock) must not be taken in an interrupt handler or
/// a bio completion if process context also takes it: the interrupt could arrive while the same
/// CPU holds the lock, and spin forever. This lock disables local interrupts while it is held,
/// so it can be taken from any context, including hard and soft interrupts. Hold it briefly:
/// interrupts wait.
///
/// Interrupts are disabled with a per-CPU count rather than each guard saving and restoring
/// the interrupt state itself (`spin_lock_irqsave`): the state saved when the count leaves zero
/// is restored when it returns to zero. So guards of nested locks may be dropped in any order:
/// dropping an outer guard first leaves interrupts off until the last guard goes. (This is the
/// design of upstream's `local_interrupt_disable()`; upstream also hands out a
/// `LocalInterruptDisabled` token to take such locks without touching the count, which this
/// tree does not have.)
///
/// # Invariants
///
/// While a guard exists, local interrupts (and preemption) are off and the per-CPU count is
/// at least one for it: the task cannot leave the CPU, so the guard is dropped on the CPU
/// that took it (and it is not `Send`: dropped by the task that took it). Not for
/// `PREEMPT_RT`, where a `spinlock_t` sleeps.
///
/// # Examples
///
/// ```
/// use kernel::sync::{lock::spinlock_irq::irqs_disabled, new_spinlock_irq, SpinLockIrq};
///
/// struct InFlight {
///     count: u32,
/// }
///
/// let lock = KBox::pin_init(new_spinlock_irq!(InFlight { count: 0 }), GFP_KERNEL)?;
/// let was_off = irqs_disabled();
/// {
///     let mut guard = lock.lock();
///     // Interrupts are off while the lock is held...
///     assert!(irqs_disabled());
///     guard.count += 1;
/// }
/// // ...and back as they were once it is released.
/// assert_eq!(irqs_disabled(), was_off);
/// assert_eq!(lock.lock().count, 1);
///
/// // Nested guards dropped out of order: interrupts stay off until the last one goes.
/// let other = KBox::pin_init(new_spinlock_irq!(0u32), GFP_KERNEL)?;
/// let outer = lock.lock();
/// let inner = other.lock();
/// drop(outer);
/// assert!(irqs_disabled());
/// drop(inner);
/// assert_eq!(irqs_disabled(), was_off);
/// # Ok::<(), Error>(())
/// ```
pub type SpinLockIrq<T> = super::Lock<T, SpinLockIrqBackend>;

/// Whether interrupts are disabled on the local CPU (`irqs_disabled()`), e.g. to assert that a
/// [`SpinLockIrq`] is held where that matters. Any context.
pub fn irqs_disabled() -> bool {
    // SAFETY: `irqs_disabled` only reads the local CPU's interrupt flag.
    unsafe { bindings::irqs_disabled() }
}

/// A kernel `spinlock_t` taken with local interrupts off (counted, see [`SpinLockIrq`]).
pub struct SpinLockIrqBackend;

// SAFETY: The underlying kernel `spinlock_t` object ensures mutual exclusion. `relock` uses the
// default implementation that always calls the same locking method.
unsafe impl super::Backend for SpinLockIrqBackend {
    type State = bindings::spinlock_t;
    type GuardState = ();

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const crate::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: The safety requirements ensure that `ptr` is valid for writes, and `name` and
        // `key` are valid for read indefinitely.
        unsafe { bindings::__spin_lock_init(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: Disabling local interrupts (and preemption) has no requirements; `unlock`
        // enables them again, on the same CPU (the task cannot migrate meanwhile).
        unsafe { bindings::local_interrupt_disable() };
        // SAFETY: The safety requirements of this function ensure that `ptr` points to valid
        // memory, and that it has been initialised before.
        unsafe { bindings::spin_lock(ptr) }
    }

    unsafe fn unlock(ptr: *mut Self::State, _guard_state: &Self::GuardState) {
        // SAFETY: The safety requirements of this function ensure that `ptr` is valid and that
        // the caller is the owner of the spinlock.
        unsafe { bindings::spin_unlock(ptr) };
        // SAFETY: Pairs with the `local_interrupt_disable` of `lock`, on the same CPU.
        unsafe { bindings::local_interrupt_enable() }
    }
}

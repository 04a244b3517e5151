// SPDX-License-Identifier: GPL-2.0

//! A count that a thread can wait for to reach zero.
//!
//! C header: [`include/linux/wait_bit.h`](srctree/include/linux/wait_bit.h)
//! (`wait_var_event`, `wake_up_var`).

use crate::bindings;
use core::sync::atomic::{AtomicUsize, Ordering};

/// A count of things in flight (jobs, references) that a thread can wait for to reach zero:
/// `wait_var_event(&count, count == 0)`, with the last decrement calling `wake_up_var`. It
/// replaces a mutex, a condition variable and a counter, and no wake-up can be missed: the
/// waiter is on the queue before it tests the count again.
///
/// Changes are `SeqCst`, and [`WaitCount::wait_zero`] issues a full barrier (`smp_mb`) before
/// its first read of the count, so a count can take part in a store-then-load handshake with
/// a flag (a thread that counts itself and then reads the flag, against one that sets the flag
/// and then waits for zero: one of them sees the other); two counts waited for one after the
/// other are read in that order.
///
/// # Invariants
///
/// Waiters sleep on the address of `count`, which is only used as a key.
///
/// # Examples
///
/// ```
/// use kernel::sync::WaitCount;
///
/// let jobs = WaitCount::new(0);
/// jobs.add(2);
/// assert!(!jobs.sub(1));
/// assert_eq!(jobs.get(), 1);
/// assert!(jobs.sub(1));
/// // Zero already: returns at once.
/// jobs.wait_zero();
/// ```
#[repr(transparent)]
pub struct WaitCount {
    count: AtomicUsize,
}

impl WaitCount {
    /// A count starting at `n`.
    pub const fn new(n: usize) -> Self {
        Self {
            count: AtomicUsize::new(n),
        }
    }

    /// The count now.
    pub fn get(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Adds `n`.
    pub fn add(&self, n: usize) {
        self.count.fetch_add(n, Ordering::SeqCst);
    }

    /// Takes `n` away, waking the waiters if the count reaches zero; returns whether it did.
    /// Any context (waking does not sleep).
    pub fn sub(&self, n: usize) -> bool {
        // SAFETY: `self` is alive for the whole call.
        unsafe { Self::sub_raw(self, n) }
    }

    /// [`WaitCount::sub`] on a count that a waiter may free as soon as it reaches zero: after
    /// the decrement, `this` is only used as an address.
    ///
    /// # Safety
    ///
    /// `this` must point to a live `WaitCount` when called.
    pub unsafe fn sub_raw(this: *const Self, n: usize) -> bool {
        // SAFETY: Alive when called, by the safety requirements.
        let count = unsafe { &(*this).count };
        let addr = count.as_ptr();
        if count.fetch_sub(n, Ordering::SeqCst) != n {
            return false;
        }
        // SAFETY: `wake_up_var` only uses the address, as a hash key; the helper issues the
        // full barrier (`smp_mb`) it requires after the decrement, before it looks at the queue.
        unsafe { bindings::wake_up_var_mb(addr.cast()) };
        true
    }

    /// Sleeps until the count is zero. What the side that made it zero wrote before its
    /// decrement is seen after this returns (the test that sees zero is an acquire load).
    ///
    /// # Context
    ///
    /// Process context (sleeps); the caller holds no spinlock.
    pub fn wait_zero(&self) {
        // SAFETY: `count` is an `unsigned long`-sized atomic, alive while borrowed here; the
        // helper is `smp_mb(); wait_var_event(count, smp_load_acquire(count) == 0)`, which
        // tests, then puts the task on the queue (with a full barrier) before each further
        // test. Sleeping is allowed (process context).
        unsafe { bindings::wait_var_event_zero(self.count.as_ptr().cast()) }
    }
}

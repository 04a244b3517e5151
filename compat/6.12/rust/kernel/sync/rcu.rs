// SPDX-License-Identifier: GPL-2.0

//! Read-copy update: lock-free readers, and memory freed only once no reader can see it.
//!
//! C header: [`include/linux/rcupdate.h`](srctree/include/linux/rcupdate.h).
//!
//! 6.12 layer: [`Guard`], [`read_lock`] and [`synchronize_rcu`] have the names and shapes of
//! mainline's (7.3) `kernel::sync::rcu`, which 6.12 lacks. [`RcuBox`] is ours on both kernels
//! (in `rcu/rcu_box.rs`; on 7.3 added to mainline's module the same way).

use crate::bindings;
use core::marker::PhantomData;

mod rcu_box;
pub use rcu_box::{RcuBox, RcuBoxOwner};

/// An RCU read-side critical section (`rcu_read_lock`), ended when the guard is dropped.
///
/// Like a spinlock's guard, it must not be held across anything that sleeps (the debug
/// kernel's lockdep reports it).
///
/// # Invariants
///
/// The RCU read lock is held by the current task, from the guard's creation to its drop; the
/// guard stays on that task (it is neither `Send` nor `Sync`).
pub struct Guard {
    _not_send: PhantomData<*mut ()>,
}

impl Guard {
    /// Begins a read-side critical section. Any context.
    pub fn new() -> Self {
        // SAFETY: An FFI call without requirements; the drop ends the section.
        unsafe { bindings::rcu_read_lock() };
        // INVARIANT: The read lock was just taken, by this task.
        Self {
            _not_send: PhantomData,
        }
    }
}

impl Default for Guard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: By the type invariants, this task holds the read lock this guard took.
        unsafe { bindings::rcu_read_unlock() };
    }
}

/// Begins a read-side critical section (`rcu_read_lock`).
pub fn read_lock() -> Guard {
    Guard::new()
}

/// Waits until every read-side critical section begun before the call has ended
/// (`synchronize_rcu`). Sleeps: process context only, holding no spinlock or [`Guard`].
pub fn synchronize_rcu() {
    // SAFETY: An FFI call without requirements beyond the context, documented above (the
    // debug kernel's might_sleep checks it).
    unsafe { bindings::synchronize_rcu() }
}

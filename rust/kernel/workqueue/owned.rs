// SPDX-License-Identifier: GPL-2.0

//! Workqueues owned by a driver (`alloc_workqueue` / `destroy_workqueue`), and the per-CPU
//! system queue (`system_percpu_wq`), which neither kernel's crate names: mainline's
//! `workqueue::system()` is `system_wq`, deprecated in 7.3 (queueing on it warns).

use super::Queue;
// (7.3: `CStrExt`, whose method `as_char_ptr` is, comes with the prelude; 6.12 needs nothing.)
#[allow(unused_imports)]
use crate::prelude::*;
use crate::{bindings, error::code::ENOMEM, error::Result, str::CStr};
use core::{ops::Deref, ptr::NonNull};

/// The system's per-CPU workqueue (`system_percpu_wq`, what `schedule_work` uses): for short
/// work items, never destroyed.
pub fn system_percpu() -> &'static Queue {
    // SAFETY: `system_percpu_wq` is a valid workqueue, created at boot and never destroyed.
    unsafe { Queue::from_raw(bindings::system_percpu_wq) }
}

/// Flags of a workqueue (`enum wq_flags`), combined with `|`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueFlags(u32);

impl QueueFlags {
    /// No flags: a per-CPU queue ([`OwnedQueue::new`] adds `WQ_PERCPU`, which 7.3 requires of a
    /// queue that is not unbound).
    pub const NONE: QueueFlags = QueueFlags(0);
    /// Guarantees forward progress under memory pressure with a rescuer thread
    /// (`WQ_MEM_RECLAIM`): required for work that I/O completion, and so memory reclaim,
    /// may wait for.
    pub const MEM_RECLAIM: QueueFlags = QueueFlags(bindings::wq_flags_WQ_MEM_RECLAIM);
}

impl core::ops::BitOr for QueueFlags {
    type Output = QueueFlags;

    fn bitor(self, other: QueueFlags) -> QueueFlags {
        QueueFlags(self.0 | other.0)
    }
}

/// A workqueue of one's own, destroyed when dropped.
///
/// Dropping it waits until all work queued on it has run (`destroy_workqueue` drains the
/// queue). It dereferences to [`Queue`] for queueing work; delayed work cannot be queued on it
/// (a timer could outlive the queue), see [`DelayedWork`](super::DelayedWork).
///
/// # Examples
///
/// Each work item below takes 50 ms, one at a time (`max_active` 1), so they are still running
/// when the last is queued; the drop waits for all three:
///
/// ```
/// use kernel::{c_str, sync::Arc, time::ktime_get_ns, workqueue::{OwnedQueue, QueueFlags}};
/// use core::sync::atomic::{AtomicU32, Ordering};
///
/// let queue = OwnedQueue::new(c_str!("doctest_wq"), QueueFlags::MEM_RECLAIM, 1)?;
/// let runs = Arc::new(AtomicU32::new(0), GFP_KERNEL)?;
/// for _ in 0..3 {
///     let runs = runs.clone();
///     queue.try_spawn(GFP_KERNEL, move || {
///         let start = ktime_get_ns();
///         while ktime_get_ns() - start < 50_000_000 {
///             core::hint::spin_loop();
///         }
///         runs.fetch_add(1, Ordering::Release);
///     })?;
/// }
/// assert!(runs.load(Ordering::Acquire) < 3);
/// drop(queue); // Waits for the three.
/// assert_eq!(runs.load(Ordering::Acquire), 3);
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `ptr` is a workqueue from `alloc_workqueue`, not yet destroyed.
pub struct OwnedQueue {
    ptr: NonNull<bindings::workqueue_struct>,
}

// SAFETY: Workqueues may be used and destroyed from any thread.
unsafe impl Send for OwnedQueue {}

// SAFETY: Queueing work is thread-safe.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// Allocates a workqueue named `name` with `flags`, running at most `max_active` work items
    /// at once per CPU (0: the default).
    pub fn new(name: &CStr, flags: QueueFlags, max_active: i32) -> Result<Self> {
        let raw = flags.0 | bindings::wq_flags_WQ_PERCPU;
        // SAFETY: `name` is NUL-terminated; the helper is `alloc_workqueue("%s", flags,
        // max_active, name)`, which copies the formatted name.
        let ptr = unsafe { bindings::alloc_workqueue_named(name.as_char_ptr(), raw, max_active) };
        // INVARIANT: A non-NULL result is a new workqueue.
        Ok(Self {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Waits until the queue is empty, including work queued by the work that runs meanwhile
    /// (`drain_workqueue`). Queueing from elsewhere while it drains is a bug the kernel warns
    /// about. Sleeps: process context only.
    pub fn drain(&self) {
        // SAFETY: By the type invariants the workqueue is valid.
        unsafe { bindings::drain_workqueue(self.ptr.as_ptr()) }
    }
}

impl Deref for OwnedQueue {
    type Target = Queue;

    fn deref(&self) -> &Queue {
        // SAFETY: By the type invariants the workqueue is valid until drop.
        unsafe { Queue::from_raw(self.ptr.as_ptr()) }
    }
}

impl Drop for OwnedQueue {
    /// # Context
    ///
    /// Sleeps (waits for the queued work): process context, not from work on this queue.
    fn drop(&mut self) {
        // SAFETY: By the type invariants the workqueue is valid and not destroyed yet; nothing
        // can queue on it any more, as that needs a reference to `self`.
        unsafe { bindings::destroy_workqueue(self.ptr.as_ptr()) }
    }
}

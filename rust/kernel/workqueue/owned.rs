// SPDX-License-Identifier: GPL-2.0

//! Workqueues owned by a driver (`alloc_workqueue` / `destroy_workqueue`).

use super::Queue;
use crate::{bindings, c_str, error::code::ENOMEM, error::Result, str::CStr};
use core::{ops::Deref, ptr::NonNull};

/// Flags of a workqueue (`enum wq_flags`), combined with `|`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueFlags(u32);

impl QueueFlags {
    /// No flags: a per-CPU queue.
    pub const NONE: QueueFlags = QueueFlags(0);
    /// Guarantees forward progress under memory pressure with a rescuer thread
    /// (`WQ_MEM_RECLAIM`): required for work that I/O completion, and so memory reclaim,
    /// may wait for.
    pub const MEM_RECLAIM: QueueFlags = QueueFlags(bindings::wq_flags_WQ_MEM_RECLAIM);
    /// Work items may run on any CPU (`WQ_UNBOUND`).
    pub const UNBOUND: QueueFlags = QueueFlags(bindings::wq_flags_WQ_UNBOUND);
    /// Work items run at high priority (`WQ_HIGHPRI`).
    pub const HIGHPRI: QueueFlags = QueueFlags(bindings::wq_flags_WQ_HIGHPRI);
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
/// use kernel::{c_str, sync::Arc, time::{ktime_ms_delta, Ktime}, workqueue::{OwnedQueue, QueueFlags}};
/// use core::sync::atomic::{AtomicU32, Ordering};
///
/// let queue = OwnedQueue::new(c_str!("doctest_wq"), QueueFlags::MEM_RECLAIM, 1)?;
/// let runs = Arc::new(AtomicU32::new(0), GFP_KERNEL)?;
/// for _ in 0..3 {
///     let runs = runs.clone();
///     queue.try_spawn(GFP_KERNEL, move || {
///         let start = Ktime::ktime_get();
///         while ktime_ms_delta(Ktime::ktime_get(), start) < 50 {
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
        // SAFETY: The format takes one string, `name`, which is NUL-terminated;
        // `alloc_workqueue` copies the formatted name.
        let ptr = unsafe {
            bindings::alloc_workqueue(
                c_str!("%s").as_char_ptr(),
                flags.0,
                max_active,
                name.as_char_ptr(),
            )
        };
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
    fn drop(&mut self) {
        // SAFETY: By the type invariants the workqueue is valid and not destroyed yet; nothing
        // can queue on it any more, as that needs a reference to `self`.
        unsafe { bindings::destroy_workqueue(self.ptr.as_ptr()) }
    }
}

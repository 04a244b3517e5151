// SPDX-License-Identifier: GPL-2.0

//! Cancelling and disabling a [`DelayedWork`] (`cancel_delayed_work_sync`,
//! `disable_delayed_work_sync`), which mainline's (7.3) `DelayedWork` lacks.
//!
//! A delayed work item queued as an [`Arc`] holds a reference, which its `run` takes back.
//! Cancelled before it ran, nothing would: these hand it back, so that nothing leaks when
//! pending work is cancelled (e.g. when a device is torn down).
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h)
//!
//! # Examples
//!
//! ```
//! use core::sync::atomic::{AtomicU32, Ordering};
//! use kernel::{impl_has_delayed_work, new_delayed_work, sync::Arc};
//! use kernel::workqueue::{self, DelayedWork, WorkItem};
//!
//! #[pin_data]
//! struct Ticker {
//!     runs: AtomicU32,
//!     #[pin]
//!     work: DelayedWork<Ticker>,
//! }
//!
//! impl_has_delayed_work! {
//!     impl HasDelayedWork<Self> for Ticker { self.work }
//! }
//!
//! impl WorkItem for Ticker {
//!     type Pointer = Arc<Ticker>;
//!
//!     fn run(this: Arc<Ticker>) {
//!         this.runs.fetch_add(1, Ordering::Relaxed);
//!     }
//! }
//!
//! let queue = workqueue::system_percpu();
//! let ticker = Arc::pin_init(
//!     pin_init!(Ticker { runs: AtomicU32::new(0), work <- new_delayed_work!() }),
//!     GFP_KERNEL,
//! )?;
//!
//! // Queued for in an hour, then cancelled: the queued reference comes back.
//! assert!(queue.enqueue_delayed(ticker.clone(), 3_600_000).is_ok());
//! assert!(DelayedWork::cancel_sync(&ticker));
//! assert!(!DelayedWork::cancel_sync(&ticker));
//!
//! // Queued for in an hour, then disabled for good: the queued reference comes back, and
//! // queueing it again fails (handing the reference back).
//! assert!(queue.enqueue_delayed(ticker.clone(), 3_600_000).is_ok());
//! assert!(DelayedWork::disable_sync(&ticker));
//! assert!(queue.enqueue_delayed(ticker.clone(), 1).is_err());
//! assert_eq!(ticker.runs.load(Ordering::Relaxed), 0);
//! # Ok::<(), Error>(())
//! ```

use super::{DelayedWork, HasDelayedWork, Work, WorkItem};
use crate::{bindings, sync::Arc};

impl<T, const ID: u64> DelayedWork<T, ID>
where
    T: HasDelayedWork<T, ID> + WorkItem<ID, Pointer = Arc<T>>,
{
    /// `item` and its `delayed_work`.
    fn dwork_of(item: &Arc<T>) -> (*const T, *mut bindings::delayed_work) {
        let ptr: *const T = &**item;
        // SAFETY: `ptr` points to a live `T` (borrowed from `item`), so `raw_get_work` may be
        // called, and gives a pointer to its `Work` field, which `Work::raw_get` may take.
        let work = unsafe { Work::raw_get(T::raw_get_work(ptr.cast_mut())) };
        let offset = core::mem::offset_of!(bindings::delayed_work, work);
        // SAFETY: By the `HasDelayedWork` contract that `work_struct` is the `work` field of a
        // `delayed_work`, at `offset` from its start, inside the same allocation.
        let dwork = unsafe { work.byte_sub(offset) };
        (ptr, dwork.cast())
    }

    /// Calls `stop` (cancel or disable, `_sync`) on `item`'s delayed work; if it was pending,
    /// drops the reference it was queued with. Returns whether it was pending.
    fn stop_with(
        item: &Arc<T>,
        stop: unsafe extern "C" fn(*mut bindings::delayed_work) -> bool,
    ) -> bool {
        let (ptr, dwork) = Self::dwork_of(item);
        // SAFETY: `dwork` is `item`'s valid, initialised delayed work; `stop` is one of the
        // `*_delayed_work_sync` functions, which take such a pointer.
        let was_pending = unsafe { stop(dwork) };
        if was_pending {
            // SAFETY: The work was queued with a reference from `Arc::into_raw` that its `run`
            // would have taken back; stopped before it ran, it will not run, so the reference
            // is ours to drop.
            drop(unsafe { Arc::from_raw(ptr) });
        }
        was_pending
    }

    /// Cancels `item`'s delayed work if it is pending, and waits for it if it is running
    /// (`cancel_delayed_work_sync`). Returns whether pending work was cancelled; the reference
    /// it held is dropped then. It may be queued again afterwards.
    ///
    /// # Context
    ///
    /// Process context: sleeps.
    pub fn cancel_sync(item: &Arc<T>) -> bool {
        Self::stop_with(item, bindings::cancel_delayed_work_sync)
    }

    /// Disables `item`'s delayed work for good (`disable_delayed_work_sync`): cancels it if it
    /// is pending, waits for it if it is running, and makes every later
    /// [`Queue::enqueue_delayed`](super::Queue::enqueue_delayed) of it fail, handing the
    /// reference back. Returns whether pending work was cancelled; the reference it held is
    /// dropped then.
    ///
    /// For teardown: unlike [`Self::cancel_sync`], nothing that races with it can arm the
    /// work again (a timer armed after a cancel could fire while what it works on is being
    /// destroyed).
    ///
    /// # Context
    ///
    /// Process context: sleeps.
    pub fn disable_sync(item: &Arc<T>) -> bool {
        Self::stop_with(item, bindings::disable_delayed_work_sync)
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The copy controller: how many bytes the background copy keeps in flight (its *window*),
//! how many regions each kcopyd job takes, and the rate limit. It decides from what it
//! measures: the latency and throughput of its own copies, and the latency of user I/O.
//! The user guide's "The copy controller" gives the reasoning; in short:
//!
//! It works in rounds, like a delay-based TCP congestion controller (Vegas, LEDBAT, BBR). A
//! round ends when the bytes completed since it began reach the window it began with (about
//! one round trip through source and destination), or after `ROUND_MAX_NS`. At the end of a
//! round, the mean latency of the round's jobs is compared with the *base latency*, the lowest
//! round mean of the last `BASE_ROUNDS` rounds:
//!
//! - no queueing (mean below 5/4 of the base): the window grows, doubling while in slow start
//!   (the first rounds), else by one job;
//! - queueing, but the round's throughput beat the best of the last `BASE_ROUNDS` rounds by
//!   more than 1/16: it grows by one job (a deeper queue still buys throughput; beating only the
//!   previous round would let noise, a dip and a rebound, grow the window);
//! - queueing without a throughput gain: slow start ends and the window shrinks by a quarter.
//!
//! It only grows when the copy used the window (the worker stopped because of it), so a copy
//! limited by something else (the caps, the rate limit, few uncopied regions) does not inflate
//! it.
//!
//! User I/O: the user bios timed are those that depend on the source (reads of uncopied regions,
//! writes waiting for a copy): the ones the copy competes with. While they complete, every
//! `PROBE_PERIOD_NS` one round runs at the minimum
//! window (a *probe*), and the mean user latency during it becomes the user baseline; after
//! it the window restarts at half what it was, growing by a job per round (no burst). A round
//! whose mean user latency is above 17/16 of that baseline (plus `USER_SLACK_NS`) counts as
//! queueing without gain: the copy yields. While user bios complete there is no slow start,
//! and under a steady load (at least `USER_MIN_SAMPLES` of them in `LOAD_PERIOD_NS`) the
//! window is at most `USER_WINDOW_MAX_BYTES` (the tail of the user latency grows
//! with the window, where the mean does not). The window never goes below one job, so the
//! copy always advances, under any load.
//!
//! # Locking
//!
//! [`CopyControl`] keeps the [`Controller`] under a spinlock, which kcopyd job completions
//! (kcopyd's thread) and the worker (process context) take briefly; never in interrupt
//! context. Its [`UserLatency`] is atomics only: it is fed from bio completion (interrupt
//! context).

mod controller;

pub(crate) use controller::{Allowance, Controller, UserLatency};
use kernel::{
    new_spinlock,
    prelude::*,
    sync::{
        lock::{spinlock::SpinLockBackend, Guard},
        SpinLock,
    },
};

/// The clone's copy controller and the user latency it reads.
#[pin_data]
pub(crate) struct CopyControl {
    /// Process context only (see the module documentation).
    #[pin]
    ctl: SpinLock<Controller>,
    /// Fed by bio completions, any context.
    pub(crate) user: UserLatency,
}

impl CopyControl {
    /// For regions of `region_bytes`, starting at `now` (ns).
    pub(crate) fn new(region_bytes: u64, now: i64) -> impl PinInit<Self> {
        pin_init!(Self {
            ctl <- new_spinlock!(Controller::new(region_bytes, now), "clone_copy_control"),
            user: UserLatency::default(),
        })
    }

    /// The controller, locked. Process context.
    pub(crate) fn lock(&self) -> Guard<'_, Controller, SpinLockBackend> {
        self.ctl.lock()
    }

    /// A copy of `bytes` completed at `now` after `latency` ns. Process context.
    pub(crate) fn completed(&self, now: i64, bytes: u64, latency: i64) {
        self.ctl.lock().completed(now, bytes, latency, &self.user);
    }
}

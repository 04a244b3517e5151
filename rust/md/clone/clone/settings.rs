// SPDX-License-Identifier: GPL-2.0

//! What the table and messages set: the caps of the background copy, its rate limit, and the
//! two features. Read without locks, from any context.
//!
//! Each value is one atomic, read and written `Relaxed`: none publishes other data, and a
//! message that changes one kicks the worker afterwards, which orders the store before the
//! worker's next pass (queueing work is a full barrier).

use crate::config::Options;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A cap set by the table or a message, or none (`auto`: the copy controller decides).
struct Cap(AtomicU64);

impl Cap {
    /// No cap: a value no `u32` has.
    const AUTO: u64 = u64::MAX;

    fn new(cap: Option<u32>) -> Self {
        Self(AtomicU64::new(cap.map_or(Self::AUTO, u64::from)))
    }

    fn get(&self) -> Option<u32> {
        u32::try_from(self.0.load(Ordering::Relaxed)).ok()
    }

    fn set(&self, cap: Option<u32>) {
        self.0
            .store(cap.map_or(Self::AUTO, u64::from), Ordering::Relaxed);
    }
}

/// The settings of one clone (see the module documentation).
pub(super) struct Settings {
    /// Cap on regions in flight.
    threshold: Cap,
    /// Cap on regions per job.
    batch_size: Cap,
    /// Rate limit of the background copy in bytes per second; 0: none.
    rate_limit: AtomicU64,
    background_copy: AtomicBool,
    discard_passdown: AtomicBool,
}

impl Settings {
    pub(super) fn new(o: &Options) -> Self {
        Self {
            threshold: Cap::new(o.threshold),
            batch_size: Cap::new(o.batch_size),
            rate_limit: AtomicU64::new(u64::from(o.rate_limit) << 20),
            background_copy: AtomicBool::new(o.background_copy),
            discard_passdown: AtomicBool::new(o.discard_passdown),
        }
    }

    /// The cap on regions in flight, if any.
    pub(super) fn threshold(&self) -> Option<u32> {
        self.threshold.get()
    }

    pub(super) fn set_threshold(&self, cap: Option<u32>) {
        self.threshold.set(cap);
    }

    /// The cap on regions per copy job, if any.
    pub(super) fn batch_size(&self) -> Option<u32> {
        self.batch_size.get()
    }

    pub(super) fn set_batch_size(&self, cap: Option<u32>) {
        self.batch_size.set(cap);
    }

    /// The background copy's rate limit in bytes per second (0: none).
    pub(super) fn rate_limit(&self) -> u64 {
        self.rate_limit.load(Ordering::Relaxed)
    }

    /// Sets the rate limit, in MiB/s (0: none).
    pub(super) fn set_rate_limit_mib(&self, mib: u32) {
        self.rate_limit
            .store(u64::from(mib) << 20, Ordering::Relaxed);
    }

    /// Whether the background copy runs.
    pub(super) fn background_copy(&self) -> bool {
        self.background_copy.load(Ordering::Relaxed)
    }

    pub(super) fn set_background_copy(&self, on: bool) {
        self.background_copy.store(on, Ordering::Relaxed);
    }

    /// Whether discards are passed down to the destination.
    pub(super) fn discard_passdown(&self) -> bool {
        self.discard_passdown.load(Ordering::Relaxed)
    }

    /// The destination cannot take the clone's discards (see `limits`).
    pub(super) fn disable_discard_passdown(&self) {
        self.discard_passdown.store(false, Ordering::Relaxed);
    }
}

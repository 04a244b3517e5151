// SPDX-License-Identifier: GPL-2.0

//! The queue limits the clone sets on the mapped device (`io_hints`): I/O sizes of a region
//! where the stacked ones do not fit it, and discard limits (the destination's when discards
//! are passed down; whole regions when they are not).

use super::CloneCore;
use kernel::{block::limits::QueueLimits, prelude::*};

impl CloneCore {
    pub(crate) fn io_hints(&self, limits: &mut QueueLimits) {
        let rs = self.cfg.geometry.region_size();
        let region_bytes = self.cfg.geometry.region_bytes_u32();
        let io_opt = u64::from(limits.io_opt() >> 9);
        if io_opt < rs || io_opt % rs != 0 {
            limits.set_io_min(region_bytes);
            limits.set_io_opt(region_bytes);
        }
        if self.settings.discard_passdown() {
            let max = self.cfg.dest.max_discard_sectors();
            let reason = if max == 0 {
                Some("discard unsupported")
            } else if u64::from(max) < rs {
                Some("max discard sectors smaller than a region")
            } else {
                None
            };
            if let Some(reason) = reason {
                pr_warn!(
                    "destination device {} {}: disabling discard passdown\n",
                    self.cfg.dest.name(),
                    reason
                );
                self.settings.disable_discard_passdown();
            }
        }
        if !self.settings.discard_passdown() {
            // Discards are not passed down: our own limits, in whole regions.
            limits.set_discard_granularity(region_bytes);
            let rs = self.cfg.geometry.region_sectors();
            let max = (u32::MAX >> 9) / rs * rs;
            limits.set_max_hw_discard_sectors(max);
            return;
        }
        // Discards go to the destination only: its limits, not the stacked ones.
        let d = self.cfg.dest.limits();
        limits.set_max_hw_discard_sectors(d.max_hw_discard_sectors());
        limits.set_discard_granularity(d.discard_granularity());
        limits.set_discard_alignment(d.discard_alignment());
        limits.set_max_discard_segments(d.max_discard_segments());
    }
}

// SPDX-License-Identifier: GPL-2.0

//! What the clone tells and takes from user space: the status line (in the C target's field
//! layout), the table line (which reads back as the same table), messages and their replies
//! (`copy_stats`, `copy_failures`, `memory`; see the user guide).

use super::{commit::MetadataMode, CloneCore};
use crate::{config::Message, metadata::BLOCK_SECTORS};
use core::{fmt::Write, sync::atomic::Ordering};
use kernel::{device_mapper::StatusWriter, prelude::*, sync::Arc, time::ktime_get_ns};

impl CloneCore {
    pub(crate) fn status(self: &Arc<Self>, commit_first: bool, out: &mut StatusWriter<'_>) {
        // Commits first (as C), after the running commit, if any, ends; not if it is still
        // running after a while (a whole-device discard of 2^30 regions commits for over a
        // minute under TCG): status then answers with the counts of the last commit (see
        // `usage`).
        if commit_first && self.usage.wait_idle(super::usage::STATUS_WAIT_MS) {
            let _ = self.commit();
        }
        let mode = self.mode();
        if mode == MetadataMode::Fail {
            let _ = write!(out, "Fail");
            return;
        }
        // Once loaded, the counts of the last commit, without the metadata mutex.
        let recorded = if self.life.loaded() {
            self.usage.blocks()
        } else {
            None
        };
        let usage = if let Some(blocks) = recorded {
            Some(Ok(blocks))
        } else {
            let mut md = self.md.lock();
            if !self.life.loaded() {
                // A table never resumed (`dmsetup status --inactive`): its counts come from
                // the metadata its constructor read; the first resume loads them again.
                if let Some(m) = Option::as_mut(&mut *md) {
                    if self.load_marks(m).is_err() {
                        let _ = write!(out, "Error");
                        return;
                    }
                }
            }
            md.as_ref().map(|m| m.usage())
        };
        let Some(Ok((used, total))) = usage else {
            let _ = write!(out, "Error");
            return;
        };
        let background = self.settings.background_copy();
        let passdown = self.settings.discard_passdown();
        // The caps where set, else what the copy controller chose (C's field layout).
        let (threshold, batch) = {
            let ctl = self.ctl.lock();
            (
                self.settings
                    .threshold()
                    .unwrap_or_else(|| ctl.window_regions()),
                self.settings
                    .batch_size()
                    .unwrap_or_else(|| ctl.job_regions(None, self.settings.rate_limit())),
            )
        };
        let _ = write!(
            out,
            "{} {}/{} {} {}/{} {} {}{}{} 4 copy_threshold {} copy_batch_size {} {}",
            BLOCK_SECTORS,
            used,
            total,
            self.cfg.geometry.region_size(),
            self.regions.marks().nr_copied(),
            self.cfg.geometry.nr_regions(),
            self.in_flight.regions(),
            u8::from(!background) + u8::from(!passdown),
            if background {
                ""
            } else {
                " no_background_copy"
            },
            if passdown { "" } else { " no_discard_passdown" },
            threshold,
            batch,
            mode.name()
        );
    }

    pub(crate) fn table(&self, out: &mut StatusWriter<'_>) {
        let args = core::str::from_utf8(&self.cfg.table_args).unwrap_or("");
        let _ = write!(
            out,
            "{} {} {}{}",
            self.cfg.meta_dev.name(),
            self.cfg.dest.name(),
            self.cfg.source.name(),
            args
        );
    }

    pub(crate) fn message(self: &Arc<Self>, msg: Message, out: &mut StatusWriter<'_>) {
        match msg {
            Message::Threshold(n) => self.settings.set_threshold(n),
            Message::BatchSize(n) => self.settings.set_batch_size(n),
            Message::BackgroundCopy(on) => self.settings.set_background_copy(on),
            Message::RateLimit(mib) => {
                self.settings.set_rate_limit_mib(mib);
                self.ctl.lock().rate_changed(ktime_get_ns());
            }
            Message::CopyStats => self.copy_stats(out),
            Message::CopyFailures => self.copy_failures(out),
            Message::Memory => {
                let _ = write!(
                    out,
                    "regions={} map_bytes={} failure_bytes={} alloc_waits={}",
                    self.cfg.geometry.nr_regions(),
                    self.regions.marks().bytes(),
                    self.failures.bytes(),
                    self.stats.alloc_waits.load(Ordering::Relaxed)
                );
            }
            Message::CommitStats => {
                let [commits, written, rewritten, last, longest] = self.usage.commit_stats();
                let _ = write!(
                    out,
                    "commits={commits} words_written={written} words_rewritten={rewritten} \
                     last_commit_us={last} longest_commit_us={longest}"
                );
            }
            Message::RetryFailed => {
                let n = self.failures.retry_all();
                if n > 0 {
                    pr_info!("{}: trying the {} given-up regions again\n", self.name(), n);
                }
            }
        }
        self.kick();
    }

    /// The reply to `copy_failures`: `given_up=<n> first=<region>,...` (at most 16 listed;
    /// `first=-` when none).
    fn copy_failures(&self, out: &mut StatusWriter<'_>) {
        let _ = write!(out, "given_up={} first=", self.failures.nr_given_up());
        let mut any = false;
        self.failures.for_each_given_up(16, |r| {
            let _ = write!(out, "{}{}", if any { "," } else { "" }, r);
            any = true;
        });
        if !any {
            let _ = write!(out, "-");
        }
    }

    /// The reply to `copy_stats`: `key=value` pairs (see the user guide).
    fn copy_stats(&self, out: &mut StatusWriter<'_>) {
        let r = self.ctl.lock().report();
        let in_flight = self.in_flight.regions();
        let _ = write!(
            out,
            "window_bytes={} job_regions={} in_flight_bytes={} in_flight_regions={} \
             rate_bytes_per_s={} latency_us={} base_latency_us={} user_latency_us={} \
             user_base_latency_us={} slow_start={} probing={} rounds={} ",
            r.window_bytes,
            r.job_regions,
            u64::from(in_flight).saturating_mul(self.cfg.geometry.region_bytes()),
            in_flight,
            r.rate_bytes_per_s,
            r.latency_ns / 1000,
            r.base_latency_ns / 1000,
            r.user_latency_ns / 1000,
            r.user_base_latency_ns / 1000,
            u8::from(r.slow_start),
            u8::from(r.probing),
            r.rounds,
        );
        for (name, cap) in [
            ("copy_threshold", self.settings.threshold()),
            ("copy_batch_size", self.settings.batch_size()),
        ] {
            let _ = match cap {
                Some(n) => write!(out, "{}={} ", name, n),
                None => write!(out, "{}=auto ", name),
            };
        }
        let _ = write!(
            out,
            "copy_rate_limit_mib={}",
            self.settings.rate_limit() >> 20
        );
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The copy controller's decisions, as pure arithmetic on what it is told (times in ns,
//! bytes): the parent module says how it decides and who locks it. `core` only, so that it
//! is also built and unit-tested on the host (tools/clone-logic).

use core::sync::atomic::{AtomicU64, Ordering};

/// The largest kcopyd job, in bytes. kcopyd splits a job into 64 KiB pieces, at most eight of
/// them in flight at once, so a job up to 512 KiB takes one round trip of the source; bigger
/// jobs only queue inside kcopyd (more latency, no more parallelism, which more jobs give) and
/// hold more region records until their single completion.
const JOB_MAX_BYTES: u64 = 512 << 10;
/// The largest window while user bios that depend on the source complete (or one job, if a
/// region is larger). Measured (tools/bench/copy-engine.sh, 10 ms source, 200 user IOPS): the
/// application's tail latency grows with the window while its mean, which the yield rule
/// watches, barely moves; at 512 KiB its p99 stayed within 1.03 of the copy off, with the
/// copy at over half its idle rate.
const USER_WINDOW_MAX_BYTES: u64 = JOB_MAX_BYTES;
/// The largest window, in bytes (the data of the copies in flight is in kcopyd's pages): a
/// 10 ms link at 1.6 GB/s, or a local disk at any speed, needs less.
const WINDOW_MAX_BYTES: u64 = 16 << 20;
/// The window a copy starts with.
const WINDOW_START_BYTES: u64 = 1 << 20;
/// Rounds over which the base latency is the minimum.
const BASE_ROUNDS: usize = 16;
/// A round ends after this long even if less than its window completed.
const ROUND_MAX_NS: i64 = 200_000_000;
/// How often the user baseline is measured while user I/O runs.
const PROBE_PERIOD_NS: i64 = 2_000_000_000;
/// A probe lasts at least this long, and at most [`PROBE_MAX_NS`].
const PROBE_MIN_NS: i64 = 100_000_000;
const PROBE_MAX_NS: i64 = 500_000_000;
/// User bios needed for a mean user latency, and for a steady load in a [`LOAD_PERIOD_NS`].
const USER_MIN_SAMPLES: u64 = 4;
/// The period over which user bios are counted to tell a steady load from stray bios.
const LOAD_PERIOD_NS: i64 = 500_000_000;
/// User latency within this much of the baseline is never a sign of the copy's impact.
const USER_SLACK_NS: i64 = 200_000;
/// The rate limit's bucket holds at most this fraction of a second of its rate (100 ms), or
/// one job.
const BURST_PER_S: u64 = 10;
/// Under a rate limit, a job is at most this fraction of a second of the rate (20 ms).
const RATE_JOBS_PER_S: u64 = 50;
const NS_PER_S: u64 = 1_000_000_000;

/// Latency of user bios, summed from their completion (any context, interrupts included).
#[derive(Default)]
pub(crate) struct UserLatency {
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl UserLatency {
    /// A user bio completed after `ns`.
    pub(crate) fn record(&self, ns: i64) {
        self.sum_ns
            .fetch_add(u64::try_from(ns).unwrap_or(0), Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes what was recorded: `(sum of latencies in ns, bios)`. (The two are taken one after
    /// the other: a completion in between shifts one bio to the next sample.)
    fn take(&self) -> (u64, u64) {
        let count = self.count.swap(0, Ordering::Relaxed);
        (self.sum_ns.swap(0, Ordering::Relaxed), count)
    }
}

/// The last `N` values pushed, for their lowest and highest.
struct Recent<const N: usize> {
    values: [i64; N],
    len: usize,
    next: usize,
}

impl<const N: usize> Recent<N> {
    const fn new() -> Self {
        Self {
            values: [0; N],
            len: 0,
            next: 0,
        }
    }

    fn push(&mut self, v: i64) {
        if let Some(slot) = self.values.get_mut(self.next) {
            *slot = v;
        }
        self.next = self.next.saturating_add(1);
        if self.next >= N {
            self.next = 0;
        }
        self.len = self.len.saturating_add(1).min(N);
    }

    fn min(&self) -> Option<i64> {
        self.values.get(..self.len)?.iter().copied().min()
    }

    fn max(&self) -> Option<i64> {
        self.values.get(..self.len)?.iter().copied().max()
    }
}

/// What may start now.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Allowance {
    /// Copies of up to this many bytes may start.
    Bytes(u64),
    /// The window is full: completions will make room.
    WindowFull,
    /// The rate limit: try again after this many nanoseconds.
    Wait(i64),
}

/// The current round.
struct Round {
    start_ns: i64,
    /// Bytes to complete for the round to end: the window when it began.
    target: u64,
    bytes: u64,
    jobs: u64,
    latency_sum_ns: i64,
}

/// The controller's state (see the module documentation).
pub(crate) struct Controller {
    region_bytes: u64,
    window: u64,
    slow_start: bool,
    /// The worker stopped at the window this round.
    window_used: bool,
    round: Round,
    last_rate: u64,
    /// Round mean latencies: the lowest is the base latency.
    base: Recent<BASE_ROUNDS>,
    /// Round throughputs (bytes/s): a gain must beat the best of them.
    rates: Recent<BASE_ROUNDS>,
    last_latency_ns: i64,
    user_sum_ns: u64,
    user_count: u64,
    /// User bios seen since `load_since_ns`, and whether the last such period (at least
    /// [`LOAD_PERIOD_NS`]) saw a steady load (at least [`USER_MIN_SAMPLES`] of them).
    load_bios: u64,
    load_since_ns: i64,
    user_load: bool,
    user_base_ns: Option<i64>,
    last_user_ns: i64,
    /// While probing: the window to go back to.
    probe_saved: Option<u64>,
    next_probe_ns: i64,
    /// Rate limit tokens in bytes (negative: owed) and when they were last refilled.
    tokens: i64,
    tokens_at_ns: i64,
    rounds: u64,
}

/// What [`Controller::report`] tells.
pub(crate) struct Report {
    pub(crate) window_bytes: u64,
    pub(crate) job_regions: u32,
    pub(crate) slow_start: bool,
    pub(crate) rate_bytes_per_s: u64,
    pub(crate) latency_ns: i64,
    pub(crate) base_latency_ns: i64,
    pub(crate) user_latency_ns: i64,
    pub(crate) user_base_latency_ns: i64,
    pub(crate) rounds: u64,
    pub(crate) probing: bool,
}

impl Controller {
    /// A controller for regions of `region_bytes`, starting at `now` (ns).
    pub(crate) fn new(region_bytes: u64, now: i64) -> Self {
        let mut c = Self {
            region_bytes: region_bytes.max(1),
            window: 0,
            slow_start: true,
            window_used: false,
            round: Round {
                start_ns: now,
                target: 0,
                bytes: 0,
                jobs: 0,
                latency_sum_ns: 0,
            },
            last_rate: 0,
            base: Recent::new(),
            rates: Recent::new(),
            last_latency_ns: 0,
            user_sum_ns: 0,
            user_count: 0,
            load_bios: 0,
            load_since_ns: now,
            user_load: false,
            user_base_ns: None,
            last_user_ns: 0,
            probe_saved: None,
            next_probe_ns: now,
            tokens: 0,
            tokens_at_ns: now,
            rounds: 0,
        };
        c.window = c.clamp(WINDOW_START_BYTES);
        c.round.target = c.window;
        c
    }

    /// Regions per job: as many as fit [`JOB_MAX_BYTES`] (at least one), at most `cap`; under
    /// a rate limit of `rate` bytes per second (0: none), at most [`RATE_JOB_NS`] of it, so
    /// that the copy flows evenly rather than one big job at a time.
    pub(crate) fn job_regions(&self, cap: Option<u32>, rate: u64) -> u32 {
        let mut bytes = JOB_MAX_BYTES;
        if rate != 0 {
            bytes = bytes.min(rate / RATE_JOBS_PER_S);
        }
        let n = u32::try_from(bytes.checked_div(self.region_bytes).unwrap_or(1))
            .unwrap_or(u32::MAX)
            .max(1);
        cap.map_or(n, |c| n.min(c.max(1)))
    }

    fn job_bytes(&self) -> u64 {
        u64::from(self.job_regions(None, 0)).saturating_mul(self.region_bytes)
    }

    fn clamp(&self, window: u64) -> u64 {
        let min = self.job_bytes();
        window.min(WINDOW_MAX_BYTES).max(min)
    }

    /// The window in regions (at least one), for the status line.
    pub(crate) fn window_regions(&self) -> u32 {
        u32::try_from(self.window.checked_div(self.region_bytes).unwrap_or(1))
            .unwrap_or(u32::MAX)
            .max(1)
    }

    /// What may start at `now`, with `in_flight` bytes being copied and a rate limit of
    /// `rate` bytes per second (0: none).
    pub(crate) fn allowance(&mut self, now: i64, in_flight: u64, rate: u64) -> Allowance {
        if in_flight >= self.window {
            self.window_used = true;
            return Allowance::WindowFull;
        }
        let room = self.window.saturating_sub(in_flight);
        if rate == 0 {
            return Allowance::Bytes(room);
        }
        self.refill(now, rate);
        if self.tokens > 0 {
            // A copy may take the bucket below zero (by up to one job): the debt is paid
            // before the next, so the rate holds on average.
            return Allowance::Bytes(room);
        }
        // (Owed bytes are at most a job or so: no overflow below 2^34.)
        let owed = self.tokens.unsigned_abs().saturating_add(1);
        let wait = owed
            .saturating_mul(NS_PER_S)
            .checked_div(rate)
            .unwrap_or(NS_PER_S);
        Allowance::Wait(i64::try_from(wait).unwrap_or(i64::MAX).max(1))
    }

    fn refill(&mut self, now: i64, rate: u64) {
        // At most a second counts: the bucket holds less than that. Whole microseconds are
        // taken; the rest carries over to the next refill (called more often than once a
        // microsecond, the bucket would otherwise never fill).
        let elapsed = now.saturating_sub(self.tokens_at_ns);
        let elapsed_us = u64::try_from(elapsed / 1000).unwrap_or(0).min(1_000_000);
        self.tokens_at_ns = if elapsed >= 1_000_000_000 {
            now
        } else {
            self.tokens_at_ns
                .saturating_add(i64::try_from(elapsed_us).unwrap_or(0).saturating_mul(1000))
        };
        // rate / 1000 < 2^31 (the limit is at most 2^40 bytes/s), times at most 10^6.
        let add = (rate / 1000).saturating_mul(elapsed_us) / 1000;
        let burst = (rate / BURST_PER_S).max(self.job_bytes());
        let add = i64::try_from(add).unwrap_or(i64::MAX);
        let burst = i64::try_from(burst).unwrap_or(i64::MAX);
        self.tokens = self.tokens.saturating_add(add).min(burst);
    }

    /// A copy of `bytes` started (rate limit `rate`, 0: none).
    pub(crate) fn started(&mut self, bytes: u64, rate: u64) {
        if rate != 0 {
            self.tokens = self
                .tokens
                .saturating_sub(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }

    /// The rate limit changed: the bucket starts empty at `now`.
    pub(crate) fn rate_changed(&mut self, now: i64) {
        self.tokens = 0;
        self.tokens_at_ns = now;
    }

    /// A copy of `bytes` completed at `now` after `latency` ns; `user` is what user bios
    /// recorded.
    pub(crate) fn completed(&mut self, now: i64, bytes: u64, latency: i64, user: &UserLatency) {
        let r = &mut self.round;
        r.bytes = r.bytes.saturating_add(bytes);
        r.jobs = r.jobs.saturating_add(1);
        r.latency_sum_ns = r.latency_sum_ns.saturating_add(latency.max(0));
        let elapsed = now.saturating_sub(r.start_ns).max(1);
        let (us, uc) = user.take();
        self.user_sum_ns = self.user_sum_ns.saturating_add(us);
        self.user_count = self.user_count.saturating_add(uc);
        if let Some(saved) = self.probe_saved {
            if (elapsed >= PROBE_MIN_NS && self.user_count >= USER_MIN_SAMPLES)
                || elapsed >= PROBE_MAX_NS
            {
                if let Some(u) = self.user_mean() {
                    self.user_base_ns = Some(u);
                }
                self.probe_saved = None;
                self.next_probe_ns = now.saturating_add(PROBE_PERIOD_NS);
                // Back to half the window it had, growing again from there (one job per
                // round): not a burst of copies into the application's I/O.
                self.slow_start = false;
                self.window = self.clamp(saved / 2);
                self.new_round(now);
            }
            return;
        }
        if r.bytes < r.target && elapsed < ROUND_MAX_NS {
            return;
        }
        self.end_round(now, elapsed);
    }

    /// The mean user latency since it was last taken, if there were enough bios; takes it.
    fn user_mean(&mut self) -> Option<i64> {
        if self.user_count < USER_MIN_SAMPLES {
            return None;
        }
        let mean = i64::try_from(self.user_sum_ns.checked_div(self.user_count).unwrap_or(0))
            .unwrap_or(i64::MAX);
        self.user_sum_ns = 0;
        self.user_count = 0;
        self.last_user_ns = mean;
        Some(mean)
    }

    fn end_round(&mut self, now: i64, elapsed: i64) {
        self.rounds = self.rounds.saturating_add(1);
        let r = &self.round;
        // (A round's bytes are far below 2^34: no overflow.)
        let rate = r
            .bytes
            .saturating_mul(NS_PER_S)
            .checked_div(u64::try_from(elapsed).unwrap_or(1))
            .unwrap_or(0);
        let jobs = i64::try_from(r.jobs).unwrap_or(i64::MAX);
        let mean = r.latency_sum_ns.checked_div(jobs).unwrap_or(0);
        self.last_latency_ns = mean;
        self.base.push(mean);
        let base = self.base.min().unwrap_or(mean).max(1);
        let user_active = self.user_count > 0;
        // A steady load, not a stray bio (e.g. a partition scan's read): counted over periods
        // of LOAD_PERIOD_NS, as a round at a small window is too short to see enough bios.
        self.load_bios = self.load_bios.saturating_add(self.user_count);
        if now.saturating_sub(self.load_since_ns) >= LOAD_PERIOD_NS {
            self.user_load = self.load_bios >= USER_MIN_SAMPLES;
            self.load_bios = 0;
            self.load_since_ns = now;
        }
        let user_load = self.user_load || self.load_bios >= USER_MIN_SAMPLES;
        let user_slowed = match (self.user_mean(), self.user_base_ns) {
            (Some(u), Some(b)) => u > b.saturating_add(b / 16).saturating_add(USER_SLACK_NS),
            _ => false,
        };
        if user_active && now >= self.next_probe_ns {
            // Measure the user baseline at the smallest window.
            self.probe_saved = Some(self.window);
            self.window = self.clamp(0);
            self.last_rate = rate;
            self.new_round(now);
            return;
        }
        let queueing = mean > base.saturating_add(base / 4);
        // A gain beats the best recent round, not just the last one: a dip followed by a
        // rebound is noise (a throttled device passes its budget in ticks), and growing on
        // every rebound would let the window walk up while only latency grows.
        let best = u64::try_from(self.rates.max().unwrap_or(0)).unwrap_or(0);
        let gained = rate > best.saturating_add(best / 16);
        self.rates.push(i64::try_from(rate).unwrap_or(i64::MAX));
        let job = self.job_bytes();
        if user_slowed || (queueing && !gained) {
            self.slow_start = false;
            self.window = self.clamp(self.window.saturating_sub(self.window / 4));
        } else if self.window_used {
            if queueing || user_active {
                self.slow_start = false;
            }
            self.window = self.clamp(if self.slow_start {
                self.window.saturating_mul(2)
            } else {
                self.window.saturating_add(job)
            });
        }
        if user_load {
            // The application's share: the tail latency the mean does not show.
            self.window = self.window.min(USER_WINDOW_MAX_BYTES.max(job));
        }
        self.last_rate = rate;
        self.new_round(now);
    }

    fn new_round(&mut self, now: i64) {
        self.window_used = false;
        self.round = Round {
            start_ns: now,
            target: self.window,
            bytes: 0,
            jobs: 0,
            latency_sum_ns: 0,
        };
    }

    /// What it chose and measured.
    pub(crate) fn report(&self) -> Report {
        Report {
            window_bytes: self.window,
            job_regions: self.job_regions(None, 0),
            slow_start: self.slow_start,
            rate_bytes_per_s: self.last_rate,
            latency_ns: self.last_latency_ns,
            base_latency_ns: self.base.min().unwrap_or(0),
            user_latency_ns: self.last_user_ns,
            user_base_latency_ns: self.user_base_ns.unwrap_or(0),
            rounds: self.rounds,
            probing: self.probe_saved.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The controller against a model device: up to `depth` bytes in flight are served at the
    //! base latency; beyond that, requests queue (latency grows in proportion, throughput
    //! stays at `depth / base`). Jobs are started as the worker starts them (as much as the
    //! allowance gives, a job at a time) and complete in the order they finish.
    use super::*;
    extern crate std;
    use std::vec::Vec;

    const MS: i64 = 1_000_000;
    const MIB: u64 = 1 << 20;

    struct Dev {
        base_ns: i64,
        depth: u64,
    }

    impl Dev {
        fn latency(&self, in_flight: u64) -> i64 {
            let q = in_flight.max(self.depth);
            self.base_ns * i64::try_from(q).unwrap() / i64::try_from(self.depth).unwrap()
        }
    }

    /// What a run saw.
    struct Run {
        /// Bytes copied in each second.
        per_second: Vec<u64>,
        /// The largest window seen.
        max_window: u64,
    }

    /// Runs the copy for `secs` seconds of model time from `t0`, with regions of
    /// `region_bytes`, `rate` bytes/s (0: none), and `user(in_flight)`: the latency of a user
    /// bio completing with that much copy in flight (`None`: no user I/O).
    fn run(
        c: &mut Controller,
        dev: &Dev,
        region_bytes: u64,
        secs: usize,
        rate: u64,
        user: Option<&dyn Fn(u64) -> i64>,
    ) -> Run {
        let ul = UserLatency::default();
        let mut now = 0i64;
        let end = i64::try_from(secs).unwrap() * 1000 * MS;
        // (done at, bytes, started at)
        let mut jobs: Vec<(i64, u64, i64)> = Vec::new();
        let mut in_flight = 0u64;
        let mut out = Run {
            per_second: std::vec![0; secs],
            max_window: 0,
        };
        let mut wake = 0i64;
        while now < end {
            if now >= wake {
                loop {
                    match c.allowance(now, in_flight, rate) {
                        Allowance::Bytes(b) => {
                            let fits = (b / region_bytes).max(1);
                            let n = u64::from(c.job_regions(None, rate)).min(fits);
                            let bytes = n * region_bytes;
                            in_flight += bytes;
                            jobs.push((now + dev.latency(in_flight), bytes, now));
                            c.started(bytes, rate);
                        }
                        Allowance::WindowFull => break,
                        Allowance::Wait(ns) => {
                            // As the worker arms the pacer: in whole milliseconds.
                            wake = now + (ns / MS + 1) * MS;
                            break;
                        }
                    }
                }
            }
            out.max_window = out.max_window.max(c.report().window_bytes);
            // The next event: the earliest completion, or the rate limit's wake-up.
            let next = jobs
                .iter()
                .enumerate()
                .min_by_key(|(_, j)| j.0)
                .map(|(i, j)| (i, j.0));
            match next {
                Some((i, t)) if t <= wake || wake <= now => {
                    let (done, bytes, start) = jobs.swap_remove(i);
                    now = done;
                    in_flight -= bytes;
                    if let Some(u) = user {
                        // A steady user load: a bio per millisecond of model time.
                        for _ in 0..((done - start) / MS).max(1) {
                            ul.record(u(in_flight));
                        }
                    }
                    c.completed(now, bytes, done - start, &ul);
                    if let Some(s) = out
                        .per_second
                        .get_mut(usize::try_from(now / (1000 * MS)).unwrap())
                    {
                        *s += bytes;
                    }
                }
                _ => now = wake.max(now + 1),
            }
        }
        out
    }

    #[test]
    fn grows_to_what_the_device_sustains_and_no_further() {
        // 10 ms, 4 MiB in flight: 400 MiB/s.
        let dev = Dev {
            base_ns: 10 * MS,
            depth: 4 * MIB,
        };
        let mut c = Controller::new(64 << 10, 0);
        let r = run(&mut c, &dev, 64 << 10, 20, 0, None);
        let w = c.report().window_bytes;
        assert!((2 * MIB..=8 * MIB).contains(&w), "window {w}");
        assert!(r.max_window <= WINDOW_MAX_BYTES);
        // The last seconds run at >= 80% of the device's rate.
        let last = r.per_second.last().copied().unwrap();
        assert!(last >= 320 * MIB, "last second copied {last}");
    }

    #[test]
    fn a_shallower_device_gets_a_smaller_window() {
        let fast = Dev {
            base_ns: 10 * MS,
            depth: 8 * MIB,
        };
        let slow = Dev {
            base_ns: 10 * MS,
            depth: MIB,
        };
        let mut a = Controller::new(64 << 10, 0);
        let mut b = Controller::new(64 << 10, 0);
        run(&mut a, &fast, 64 << 10, 20, 0, None);
        run(&mut b, &slow, 64 << 10, 20, 0, None);
        let (wa, wb) = (a.report().window_bytes, b.report().window_bytes);
        assert!(wb < wa, "slow {wb} fast {wa}");
        assert!(wb <= 2 * MIB, "slow {wb}");
    }

    #[test]
    fn under_user_load_the_window_is_bounded_and_the_copy_never_stops() {
        // The copy slows the user's bios in proportion to what it keeps in flight.
        let user = |in_flight: u64| MS + i64::try_from(in_flight / 1024).unwrap() * 1000;
        let dev = Dev {
            base_ns: 10 * MS,
            depth: 4 * MIB,
        };
        let mut c = Controller::new(64 << 10, 0);
        let r = run(&mut c, &dev, 64 << 10, 20, 0, Some(&user));
        assert!(c.report().window_bytes <= USER_WINDOW_MAX_BYTES);
        for (s, &bytes) in r.per_second.iter().enumerate() {
            assert!(bytes > 0, "nothing copied in second {s}");
        }
    }

    #[test]
    fn the_window_never_goes_below_one_job() {
        // Every round queues (latency far above any base): the window shrinks to one job.
        let mut c = Controller::new(4096, 0);
        let ul = UserLatency::default();
        let mut now = 0;
        for i in 0..200i64 {
            assert!(matches!(c.allowance(now, 0, 0), Allowance::Bytes(b) if b >= JOB_MAX_BYTES));
            c.started(JOB_MAX_BYTES, 0);
            now += ROUND_MAX_NS;
            c.completed(now, JOB_MAX_BYTES, MS * (1 + i), &ul);
        }
        assert_eq!(c.report().window_bytes, JOB_MAX_BYTES);
    }

    #[test]
    fn the_window_does_not_grow_when_something_else_limits_the_copy() {
        let mut c = Controller::new(64 << 10, 0);
        let ul = UserLatency::default();
        let start = c.report().window_bytes;
        let mut now = 0;
        // One job at a time, far below the window: never WindowFull.
        for _ in 0..100 {
            assert!(matches!(c.allowance(now, 0, 0), Allowance::Bytes(_)));
            c.started(64 << 10, 0);
            now += ROUND_MAX_NS;
            c.completed(now, 64 << 10, MS, &ul);
        }
        assert_eq!(c.report().window_bytes, start);
    }

    #[test]
    fn jobs_are_as_large_as_allowed_and_within_the_caps() {
        let c = Controller::new(4096, 0);
        assert_eq!(c.job_regions(None, 0), 128);
        assert_eq!(c.job_regions(Some(16), 0), 16);
        assert_eq!(c.job_regions(Some(0), 0), 1);
        // 8 MiB/s: 20 ms of it per job, 160 KiB.
        assert_eq!(c.job_regions(None, 8 * MIB), 40);
        let big = Controller::new(1 << 30, 0);
        assert_eq!(big.job_regions(None, 0), 1);
        assert_eq!(big.report().window_bytes, 1 << 30);
    }

    #[test]
    fn the_rate_limit_counts_time_between_calls_closer_than_a_microsecond() {
        let rate = 8 * MIB;
        let mut c = Controller::new(4096, 0);
        let mut started = 0u64;
        let mut now = 0i64;
        while now < 1000 * MS {
            if let Allowance::Bytes(_) = c.allowance(now, 0, rate) {
                c.started(4096, rate);
                started += 4096;
            }
            now += 500;
        }
        assert!(
            started >= rate * 9 / 10 && started <= rate * 11 / 10,
            "{started}"
        );
    }

    #[test]
    fn the_rate_limit_holds_on_average() {
        // A device far faster than the limit.
        let dev = Dev {
            base_ns: MS,
            depth: 64 * MIB,
        };
        let rate = 8 * MIB;
        let mut c = Controller::new(64 << 10, 0);
        let r = run(&mut c, &dev, 64 << 10, 10, rate, None);
        let total: u64 = r.per_second.iter().sum();
        let expect = rate * 10;
        assert!(
            (expect * 9 / 10..=expect * 11 / 10).contains(&total),
            "copied {total} of {expect}"
        );
    }
}

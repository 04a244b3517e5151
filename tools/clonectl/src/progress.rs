// SPDX-License-Identifier: GPL-2.0
//! Following a copy until it ends: `wait`, `finish` and `status --watch`.
//! The status line is sampled every 200 ms; progress is shown as a bar with
//! rate and ETA on a terminal, as a line per interval elsewhere, or not at all.

use crate::dm::Dm;
use crate::error::{fail, Res};
use crate::status::Status;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::{Duration, Instant};

/// How progress is shown.
pub enum Show {
    /// Nothing (the result alone).
    Quiet,
    /// A bar redrawn in place, with rate and ETA, on a terminal.
    Bar(ProgressDrawTarget),
    /// A line on stdout every this many seconds (not a terminal).
    Lines(f64),
}

/// How following ended.
pub enum End {
    /// Every region is copied.
    Copied,
    /// The timeout passed first; the last status.
    TimedOut(Status),
}

impl End {
    /// Whether every region is copied; if not, says how far the copy got.
    pub fn copied(&self, name: &str) -> bool {
        match self {
            End::Copied => true,
            End::TimedOut(s) => {
                eprintln!(
                    "clonectl: {name}: {}/{} regions copied when the wait timed out",
                    s.copied, s.regions
                );
                false
            }
        }
    }
}

/// A bar of the clone's bytes, starting where the copy is (so that the rate counts only
/// what is copied from now on), at most 80 columns for names of up to 12 characters.
fn bar(name: &str, s: &Status, target: ProgressDrawTarget) -> ProgressBar {
    // Hidden while it is set up (style, prefix, where the copy is), then shown.
    let b = ProgressBar::with_draw_target(
        Some(s.regions * s.region_sectors * 512),
        ProgressDrawTarget::hidden(),
    )
    .with_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:25}] {percent:>3}% {msg} {binary_bytes_per_sec:>11} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    )
    .with_prefix(name.to_string())
    .with_message(format!("{}/{}", s.copied, s.regions));
    b.set_position(s.copied * s.region_sectors * 512);
    b.reset_eta();
    b.set_draw_target(target);
    b
}

/// One progress line: `<name>: <copied>/<regions> regions copied (<p>%)`, and
/// the rate and time to go while copying, when the rate is known and not zero.
pub fn line(name: &str, s: &Status, regions_per_s: Option<f64>) -> String {
    let mut l = format!(
        "{name}: {}/{} regions copied ({:.1}%)",
        s.copied,
        s.regions,
        s.percent()
    );
    if let Some(r) = regions_per_s.filter(|r| *r > 0.0 && !s.done()) {
        let left = s.regions.saturating_sub(s.copied) as f64;
        l.push_str(&format!(
            ", {:.1} MiB/s, about {:.0} s to go",
            r * (s.region_sectors * 512) as f64 / 1048576.0,
            left / r
        ));
    }
    l
}

/// Follows the clone `name` until every region is copied or `timeout` seconds
/// pass. Fails if the clone goes away or its metadata can no longer record
/// the copy (mode `ro` or `Fail`).
pub fn follow(dm: &Dm, name: &str, timeout: Option<f64>, show: Show) -> Res<End> {
    let start = Instant::now();
    let first = dm.state(name)?.status;
    let (bar, every) = match show {
        Show::Quiet => (None, None),
        Show::Bar(t) => (Some(bar(name, &first, t)), None),
        Show::Lines(i) => (None, Some(i.max(0.2))),
    };
    let mut last = (Instant::now(), first.copied);
    let mut printed = false;
    loop {
        let s = dm.state(name)?.status;
        if let Some(b) = &bar {
            b.set_message(format!("{}/{}", s.copied, s.regions));
            b.set_position(s.copied * s.region_sectors * 512);
        }
        if s.mode != "rw" {
            if let Some(b) = &bar {
                b.abandon();
            }
            return fail(format!(
                "{name}: metadata mode {}: the copy cannot be recorded any more (see dmesg)",
                s.mode
            ));
        }
        if let Some(every) = every {
            let dt = last.0.elapsed().as_secs_f64();
            if dt >= every || s.done() || !printed {
                let rate =
                    (printed && dt > 0.0).then(|| s.copied.saturating_sub(last.1) as f64 / dt);
                outln!("{}", line(name, &s, rate));
                last = (Instant::now(), s.copied);
                printed = true;
            }
        }
        if s.done() {
            if let Some(b) = &bar {
                b.finish();
            }
            return Ok(End::Copied);
        }
        if timeout.is_some_and(|t| start.elapsed().as_secs_f64() >= t) {
            if let Some(b) = &bar {
                b.abandon();
            }
            return Ok(End::TimedOut(s));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_give_rate_and_time_to_go_when_copying() {
        let s = crate::status::parse("8 42/1024 128 256/1024 4 0 0 rw").unwrap();
        assert_eq!(line("c1", &s, None), "c1: 256/1024 regions copied (25.0%)");
        assert_eq!(
            line("c1", &s, Some(0.0)),
            "c1: 256/1024 regions copied (25.0%)"
        );
        // 64 KiB regions, 16 a second: 1 MiB/s, 768 left: 48 s.
        assert_eq!(
            line("c1", &s, Some(16.0)),
            "c1: 256/1024 regions copied (25.0%), 1.0 MiB/s, about 48 s to go"
        );
    }
}

// SPDX-License-Identifier: GPL-2.0
//! `clonectl status` and `list`: how far each clone is, in words or as JSON;
//! the copy rate from two samples of the status line; `--watch` follows one
//! clone until its copy ends.

use crate::dm::Dm;
use crate::error::Res;
use crate::progress::{follow, Show};
use crate::status::Status;
use std::time::{Duration, Instant};

#[derive(serde::Serialize)]
struct StatusJson<'a> {
    name: &'a str,
    sectors: u64,
    #[serde(flatten)]
    status: &'a Status,
    percent: f64,
    /// Regions per second over the sampling interval (null: not sampled).
    rate_regions_per_s: Option<f64>,
    /// Seconds to go at that rate (null: unknown or stalled).
    eta_s: Option<f64>,
    background_copy: bool,
}

fn background(s: &Status) -> bool {
    !s.features
        .iter()
        .any(|f| f == "no_hydration" || f == "no_background_copy")
}

/// One clone's status, printed in words or as JSON.
fn one(dm: &Dm, name: &str, json: bool, interval: f64) -> Res<()> {
    let c0 = dm.state(name)?;
    let (s, rate) = if interval > 0.0 && !c0.status.done() {
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(interval));
        let s1 = dm.state(name)?.status;
        let r = s1.copied.saturating_sub(c0.status.copied) as f64 / t.elapsed().as_secs_f64();
        (s1, Some(r))
    } else {
        (c0.status, None)
    };
    let left = s.regions.saturating_sub(s.copied) as f64;
    let eta = rate
        .and_then(|r| (r > 0.0).then(|| left / r))
        .or(if s.done() { Some(0.0) } else { None });
    let background = background(&s);
    if json {
        let j = StatusJson {
            name,
            sectors: c0.sectors,
            status: &s,
            percent: s.percent(),
            rate_regions_per_s: rate,
            eta_s: eta,
            background_copy: background,
        };
        outln!("{}", serde_json::to_string(&j).unwrap_or_default());
        return Ok(());
    }
    outln!(
        "{name}: {}/{} regions copied ({:.1}%), {} in flight, metadata {}/{} blocks, mode {}",
        s.copied,
        s.regions,
        s.percent(),
        s.in_flight,
        s.metadata_used,
        s.metadata_total,
        s.mode
    );
    let region_bytes = s.region_sectors * 512;
    match (rate, eta) {
        (Some(r), Some(e)) if !s.done() => outln!(
            "  copying {:.1} MiB/s ({r:.0} regions/s), about {e:.0} s to go",
            r * region_bytes as f64 / 1048576.0
        ),
        (Some(_), None) => outln!(
            "  not copying now{}",
            if background {
                ""
            } else {
                " (background copy paused)"
            }
        ),
        _ => {}
    }
    let settings: Vec<String> = s
        .core_args
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    outln!(
        "  background copy {}; {}",
        if background { "on" } else { "paused" },
        settings.join(" ")
    );
    Ok(())
}

/// `status [NAME] [--json] [--interval S]`: each clone once.
pub fn status(name: Option<String>, json: bool, interval: f64) -> Res<()> {
    let dm = Dm::open()?;
    let names = match name {
        Some(n) => vec![n],
        None => dm.clone_names()?,
    };
    for name in names {
        one(&dm, &name, json, interval)?;
    }
    Ok(())
}

/// `status NAME --watch`: follows the copy until every region is copied.
pub fn watch(name: &str, show: Show) -> Res<()> {
    let dm = Dm::open()?;
    follow(&dm, name, None, show)?;
    Ok(())
}

/// `list`: a line per clone: name, copied/total, metadata mode.
pub fn list() -> Res<()> {
    let dm = Dm::open()?;
    for n in dm.clone_names()? {
        let s = dm.state(&n)?.status;
        outln!("{n} {}/{} {}", s.copied, s.regions, s.mode);
    }
    Ok(())
}

// SPDX-License-Identifier: GPL-2.0
//! `clonectl status` and `list`: how far each clone is, in words or as JSON;
//! the copy rate from two samples of the status lines; `--watch` follows one
//! clone until its copy ends.
//!
//! Every clone is reported, whatever the others' state: a clone whose metadata
//! failed (status `Fail`) or whose status cannot be read is reported as such, with
//! an `error`, after which clonectl exits with status 1. The JSON form, the same for
//! `status --json` and `list --json`, is one document:
//! `{"version":1,"clones":[{...},...]}`, each clone with every key of [`Report`]
//! (`null` where unknown).

use crate::dm::Dm;
use crate::error::Res;
use crate::progress::{follow, Show};
use crate::status::{self, Status};
use std::time::{Duration, Instant};

/// The JSON form's version: bumped if a key changes meaning or goes away.
pub const JSON_VERSION: u32 = 1;

/// A clone as `status` and `list` report it. Every key is always there (`null`: unknown).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    pub name: String,
    /// The clone's length in sectors.
    pub sectors: Option<u64>,
    /// The metadata mode: `rw`, `ro`, or `Fail` (its metadata failed).
    pub mode: Option<String>,
    pub metadata_block_sectors: Option<u64>,
    pub metadata_used: Option<u64>,
    pub metadata_total: Option<u64>,
    pub region_sectors: Option<u64>,
    pub copied: Option<u64>,
    pub regions: Option<u64>,
    pub in_flight: Option<u64>,
    pub features: Option<Vec<String>>,
    pub core_args: Option<Vec<(String, String)>>,
    pub percent: Option<f64>,
    /// Regions per second over the sampling interval (null: not sampled).
    pub rate_regions_per_s: Option<f64>,
    /// Seconds to go at that rate (null: unknown or stalled; 0 when complete).
    pub eta_s: Option<f64>,
    pub background_copy: Option<bool>,
    /// Why the clone's state cannot be reported (null: it can).
    pub error: Option<String>,
}

/// A reading of one clone: its length and status line, or why they cannot be read.
pub type Reading = Result<(u64, String), String>;

fn background(s: &Status) -> bool {
    !s.features
        .iter()
        .any(|f| f == "no_hydration" || f == "no_background_copy")
}

impl Report {
    /// A clone whose state cannot be reported, and why.
    fn unreadable(name: &str, sectors: Option<u64>, mode: Option<&str>, error: String) -> Report {
        Report {
            name: name.to_string(),
            sectors,
            mode: mode.map(str::to_string),
            metadata_block_sectors: None,
            metadata_used: None,
            metadata_total: None,
            region_sectors: None,
            copied: None,
            regions: None,
            in_flight: None,
            features: None,
            core_args: None,
            percent: None,
            rate_regions_per_s: None,
            eta_s: None,
            background_copy: None,
            error: Some(error),
        }
    }

    /// The report of clone `name` from a reading, and, when the rate was sampled, an
    /// earlier reading `secs` seconds before it.
    pub fn of(name: &str, now: &Reading, before: Option<(&Reading, f64)>) -> Report {
        let (sectors, line) = match now {
            Ok(r) => r,
            Err(e) => return Report::unreadable(name, None, None, e.clone()),
        };
        let first = line.split_whitespace().next().unwrap_or("");
        if first == "Fail" || first == "Error" {
            return Report::unreadable(
                name,
                Some(*sectors),
                Some("Fail"),
                format!("{name}: its metadata failed (the target reports '{first}'): nothing is copied or recorded; see dmesg, then remove the clone and check its metadata (clone_check)"),
            );
        }
        let s = match status::parse(line) {
            Ok(s) => s,
            Err(e) => {
                return Report::unreadable(name, Some(*sectors), None, format!("{name}: {e}"))
            }
        };
        let rate = before.and_then(|(b, secs)| {
            let b = status::parse(&b.as_ref().ok()?.1).ok()?;
            (secs > 0.0).then(|| s.copied.saturating_sub(b.copied) as f64 / secs)
        });
        let left = s.regions.saturating_sub(s.copied) as f64;
        let eta = if s.done() {
            Some(0.0)
        } else {
            rate.and_then(|r| (r > 0.0).then(|| left / r))
        };
        Report {
            name: name.to_string(),
            sectors: Some(*sectors),
            mode: Some(s.mode.clone()),
            metadata_block_sectors: Some(s.metadata_block_sectors),
            metadata_used: Some(s.metadata_used),
            metadata_total: Some(s.metadata_total),
            region_sectors: Some(s.region_sectors),
            copied: Some(s.copied),
            regions: Some(s.regions),
            in_flight: Some(s.in_flight),
            features: Some(s.features.clone()),
            core_args: Some(s.core_args.clone()),
            percent: Some(s.percent()),
            rate_regions_per_s: rate,
            eta_s: eta,
            background_copy: Some(background(&s)),
            error: None,
        }
    }

    /// The report in words, for `status`: three lines, or one for a clone that cannot be
    /// reported.
    pub fn text(&self) -> String {
        let name = &self.name;
        let (Some(copied), Some(regions), None) = (self.copied, self.regions, &self.error) else {
            return match self.mode.as_deref() {
                Some(mode) => format!("{name}: mode {mode}: its state cannot be read\n"),
                None => format!("{name}: its state cannot be read\n"),
            };
        };
        let mut t = format!(
            "{name}: {copied}/{regions} regions copied ({:.1}%), {} in flight, metadata {}/{} blocks, mode {}\n",
            self.percent.unwrap_or(0.0),
            self.in_flight.unwrap_or(0),
            self.metadata_used.unwrap_or(0),
            self.metadata_total.unwrap_or(0),
            self.mode.as_deref().unwrap_or("?")
        );
        let background = self.background_copy.unwrap_or(true);
        let region_bytes = self.region_sectors.unwrap_or(0) * 512;
        match (self.rate_regions_per_s, self.eta_s) {
            (Some(r), Some(e)) if copied < regions => t.push_str(&format!(
                "  copying {:.1} MiB/s ({r:.0} regions/s), about {e:.0} s to go\n",
                r * region_bytes as f64 / 1048576.0
            )),
            (Some(_), None) => t.push_str(&format!(
                "  not copying now{}\n",
                if background {
                    ""
                } else {
                    " (background copy paused)"
                }
            )),
            _ => {}
        }
        let settings: Vec<String> = self
            .core_args
            .iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        t.push_str(&format!(
            "  background copy {}; {}\n",
            if background { "on" } else { "paused" },
            settings.join(" ")
        ));
        t
    }

    /// The report's `list` line: `<name> <copied>/<regions> <mode>`, `?/?` where unknown,
    /// `unreadable` for a clone whose mode cannot be read.
    pub fn list_line(&self) -> String {
        let n = |v: Option<u64>| v.map_or_else(|| "?".to_string(), |v| v.to_string());
        format!(
            "{} {}/{} {}\n",
            self.name,
            n(self.copied),
            n(self.regions),
            self.mode.as_deref().unwrap_or("unreadable")
        )
    }
}

/// The JSON document of `reports`.
pub fn json(reports: &[Report]) -> String {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        version: u32,
        clones: &'a [Report],
    }
    let doc = Doc {
        version: JSON_VERSION,
        clones: reports,
    };
    // Plain data: serialising it cannot fail.
    serde_json::to_string(&doc).unwrap_or_default() + "\n"
}

/// Reads the clones `names`; with an `interval`, twice, that far apart (once for all),
/// for their copy rates.
fn sample(dm: &Dm, names: &[String], interval: f64) -> Vec<Report> {
    let read = |n: &String| -> Reading {
        dm.raw_state(n)
            .map(|(sectors, _, line)| (sectors, line))
            .map_err(|e| e.0)
    };
    let first: Vec<Reading> = names.iter().map(read).collect();
    let copying = first.iter().any(|r| {
        r.as_ref()
            .ok()
            .and_then(|(_, l)| status::parse(l).ok())
            .is_some_and(|s| !s.done())
    });
    if interval <= 0.0 || !copying {
        return names
            .iter()
            .zip(&first)
            .map(|(n, r)| Report::of(n, r, None))
            .collect();
    }
    let t = Instant::now();
    // The interval was checked when parsed (finite, not negative).
    std::thread::sleep(Duration::try_from_secs_f64(interval).unwrap_or_default());
    let second: Vec<Reading> = names.iter().map(read).collect();
    let secs = t.elapsed().as_secs_f64();
    names
        .iter()
        .zip(first.iter().zip(&second))
        .map(|(n, (a, b))| Report::of(n, b, Some((a, secs))))
        .collect()
}

/// Prints `reports` (as JSON, or each with `text`), says on stderr why those with an
/// error cannot be reported; whether none has one.
fn print(reports: &[Report], json_form: bool, text: fn(&Report) -> String) -> bool {
    let out = if json_form {
        json(reports)
    } else {
        reports.iter().map(text).collect()
    };
    clone_metadata::cli::print("clonectl", &out);
    let mut ok = true;
    for r in reports {
        if let Some(e) = &r.error {
            eprintln!("clonectl: {e}");
            ok = false;
        }
    }
    ok
}

/// `status [NAME] [--json] [--interval S]`: each clone once; whether every clone could
/// be reported.
pub fn status(name: Option<String>, json_form: bool, interval: f64) -> Res<bool> {
    let dm = Dm::open()?;
    let names = match name {
        Some(n) => vec![n],
        None => dm.clone_names()?,
    };
    Ok(print(
        &sample(&dm, &names, interval),
        json_form,
        Report::text,
    ))
}

/// `status NAME --watch`: follows the copy until every region is copied.
pub fn watch(name: &str, show: Show) -> Res<()> {
    let dm = Dm::open()?;
    follow(&dm, name, None, show)?;
    Ok(())
}

/// `list [--json]`: a line per clone (name, copied/total, metadata mode), or the JSON
/// form without rates; whether every clone could be reported.
pub fn list(json_form: bool) -> Res<bool> {
    let dm = Dm::open()?;
    let names = dm.clone_names()?;
    Ok(print(
        &sample(&dm, &names, 0.0),
        json_form,
        Report::list_line,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COPYING: &str =
        "8 56/2048 128 409600/1638400 64 0 4 copy_threshold 64 copy_batch_size 8 rw";
    const BEFORE: &str =
        "8 56/2048 128 408000/1638400 64 0 4 copy_threshold 64 copy_batch_size 8 rw";
    const DONE: &str =
        "8 35/4096 8 256/256 0 1 no_hydration 4 hydration_threshold 1 hydration_batch_size 1 ro";

    fn ok(line: &str) -> Reading {
        Ok((209_715_200, line.to_string()))
    }

    /// Reports of a copying clone (sampled over 1 s), a failed one, one whose status
    /// cannot be read, one gone, and a complete one: all of them, in order.
    fn reports() -> Vec<Report> {
        vec![
            Report::of("vm1", &ok(COPYING), Some((&ok(BEFORE), 1.0))),
            Report::of("vm2", &ok("Fail"), None),
            Report::of("vm3", &ok("8 x/4096 8 1/2 0 0 0 rw"), None),
            Report::of(
                "vm4",
                &Err("no device-mapper device is named vm4 (see clonectl list)".into()),
                None,
            ),
            Report::of("vm5", &ok(DONE), None),
        ]
    }

    #[test]
    fn every_clone_is_reported_whatever_the_others_state() {
        let r = reports();
        assert_eq!(r.len(), 5);
        assert_eq!(
            (r[0].copied, r[0].regions, r[0].error.as_deref()),
            (Some(409_600), Some(1_638_400), None)
        );
        assert_eq!(r[0].rate_regions_per_s, Some(1600.0));
        assert_eq!(r[0].eta_s, Some(768.0));
        assert_eq!(r[1].mode.as_deref(), Some("Fail"));
        assert!(r[1]
            .error
            .as_ref()
            .unwrap()
            .starts_with("vm2: its metadata failed (the target reports 'Fail')"));
        assert_eq!((r[1].copied, r[1].sectors), (None, Some(209_715_200)));
        assert!(r[2]
            .error
            .as_ref()
            .unwrap()
            .contains("vm3: metadata usage 'x' is not a number"));
        assert_eq!(r[2].mode, None);
        assert!(r[3]
            .error
            .as_ref()
            .unwrap()
            .contains("no device-mapper device is named vm4"));
        assert_eq!(
            (r[4].eta_s, r[4].background_copy, r[4].error.as_deref()),
            (Some(0.0), Some(false), None)
        );
        // Not sampled: no rate, no ETA while copying.
        let r = Report::of("vm1", &ok(COPYING), None);
        assert_eq!((r.rate_regions_per_s, r.eta_s), (None, None));
        // A stalled copy: rate 0, no ETA.
        let r = Report::of("vm1", &ok(COPYING), Some((&ok(COPYING), 2.0)));
        assert_eq!((r.rate_regions_per_s, r.eta_s), (Some(0.0), None));
    }

    #[test]
    fn the_json_form_has_every_key_for_every_clone() {
        let doc: serde_json::Value = serde_json::from_str(&json(&reports())).unwrap();
        assert_eq!(doc["version"], 1);
        let clones = doc["clones"].as_array().unwrap();
        assert_eq!(clones.len(), 5);
        let keys = [
            "name",
            "sectors",
            "mode",
            "metadata_block_sectors",
            "metadata_used",
            "metadata_total",
            "region_sectors",
            "copied",
            "regions",
            "in_flight",
            "features",
            "core_args",
            "percent",
            "rate_regions_per_s",
            "eta_s",
            "background_copy",
            "error",
        ];
        for c in clones {
            let o = c.as_object().unwrap();
            assert_eq!(o.len(), keys.len(), "{c}");
            for k in keys {
                assert!(o.contains_key(k), "{k} missing: {c}");
            }
        }
        assert_eq!(clones[0]["name"], "vm1");
        assert_eq!(clones[0]["copied"], 409_600);
        assert_eq!(clones[0]["core_args"][0][0], "copy_threshold");
        assert_eq!(clones[0]["error"], serde_json::Value::Null);
        assert_eq!(clones[1]["mode"], "Fail");
        assert_eq!(clones[1]["copied"], serde_json::Value::Null);
        assert!(clones[1]["error"]
            .as_str()
            .unwrap()
            .contains("metadata failed"));
        assert_eq!(clones[3]["mode"], serde_json::Value::Null);
        assert_eq!(clones[4]["eta_s"], 0.0);
    }

    #[test]
    fn words_and_list_lines_for_each_state() {
        let r = reports();
        assert_eq!(
            r[0].text(),
            "vm1: 409600/1638400 regions copied (25.0%), 64 in flight, metadata 56/2048 blocks, mode rw\n  copying 100.0 MiB/s (1600 regions/s), about 768 s to go\n  background copy on; copy_threshold=64 copy_batch_size=8\n"
        );
        assert_eq!(r[1].text(), "vm2: mode Fail: its state cannot be read\n");
        assert_eq!(r[3].text(), "vm4: its state cannot be read\n");
        let lines: String = r.iter().map(Report::list_line).collect();
        assert_eq!(lines, "vm1 409600/1638400 rw\nvm2 ?/? Fail\nvm3 ?/? unreadable\nvm4 ?/? unreadable\nvm5 256/256 ro\n");
    }
}

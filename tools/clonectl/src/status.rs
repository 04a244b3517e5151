// SPDX-License-Identifier: GPL-2.0
//! The clone target's status line (the C target's layout, which ours keeps):
//!
//! ```text
//! <metadata block size> <used>/<total metadata blocks> <region size>
//! <copied>/<total regions> <regions in flight> <#features> <feature>*
//! <#core args> <core arg>* <metadata mode>
//! ```
//!
//! and its table line: `<metadata dev> <destination dev> <source dev> <region size> ...`.

use serde::Serialize;

/// A parsed status line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub metadata_block_sectors: u64,
    pub metadata_used: u64,
    pub metadata_total: u64,
    pub region_sectors: u64,
    pub copied: u64,
    pub regions: u64,
    pub in_flight: u64,
    pub features: Vec<String>,
    pub core_args: Vec<(String, String)>,
    /// `rw`, `ro` or `Fail`.
    pub mode: String,
}

impl Status {
    /// Whether every region is copied.
    pub fn done(&self) -> bool {
        self.copied >= self.regions
    }

    /// Copied, in percent.
    pub fn percent(&self) -> f64 {
        if self.regions == 0 {
            100.0
        } else {
            self.copied as f64 * 100.0 / self.regions as f64
        }
    }
}

fn pair(s: &str, what: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once('/')
        .ok_or_else(|| format!("{what} '{s}' is not <n>/<m>"))?;
    Ok((num(a, what)?, num(b, what)?))
}

fn num(s: &str, what: &str) -> Result<u64, String> {
    s.parse()
        .map_err(|_| format!("{what} '{s}' is not a number"))
}

/// Parses a clone's status line (`Fail` alone when the metadata failed).
pub fn parse(line: &str) -> Result<Status, String> {
    let w: Vec<&str> = line.split_whitespace().collect();
    if w.first() == Some(&"Fail") || w.first() == Some(&"Error") {
        return Err(format!("the clone reports '{}': its metadata failed", w[0]));
    }
    let get = |i: usize| {
        w.get(i)
            .copied()
            .ok_or_else(|| format!("status line too short: '{line}'"))
    };
    let metadata_block_sectors = num(get(0)?, "metadata block size")?;
    let (metadata_used, metadata_total) = pair(get(1)?, "metadata usage")?;
    let region_sectors = num(get(2)?, "region size")?;
    let (copied, regions) = pair(get(3)?, "copied regions")?;
    let in_flight = num(get(4)?, "regions in flight")?;
    let nf = num(get(5)?, "feature count")? as usize;
    let mut i = 6;
    let mut features = Vec::new();
    for _ in 0..nf {
        features.push(get(i)?.to_string());
        i += 1;
    }
    let nc = num(get(i)?, "core argument count")? as usize;
    i += 1;
    let mut core_args = Vec::new();
    for _ in 0..nc / 2 {
        core_args.push((get(i)?.to_string(), get(i + 1)?.to_string()));
        i += 2;
    }
    let mode = get(i)?.to_string();
    Ok(Status {
        metadata_block_sectors,
        metadata_used,
        metadata_total,
        region_sectors,
        copied,
        regions,
        in_flight,
        features,
        core_args,
        mode,
    })
}

/// The devices of a clone's table line: (metadata, destination, source), as the
/// kernel names them (`<major>:<minor>`).
pub fn table_devices(params: &str) -> Result<(String, String, String), String> {
    let w: Vec<&str> = params.split_whitespace().collect();
    match w.as_slice() {
        [m, d, s, ..] => Ok((m.to_string(), d.to_string(), s.to_string())),
        _ => Err(format!("not a clone table: '{params}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ours_and_cs_status_lines() {
        let s = parse(
            "8 42/1024 8 12/256 4 1 no_discard_passdown 4 copy_threshold 16 copy_batch_size 8 rw",
        )
        .unwrap();
        assert_eq!(
            (
                s.metadata_used,
                s.metadata_total,
                s.copied,
                s.regions,
                s.in_flight
            ),
            (42, 1024, 12, 256, 4)
        );
        assert_eq!(s.features, ["no_discard_passdown"]);
        assert_eq!(s.core_args[1], ("copy_batch_size".into(), "8".into()));
        assert_eq!(s.mode, "rw");
        assert!(!s.done());
        let c = parse("8 35/4096 8 256/256 0 0 4 hydration_threshold 1 hydration_batch_size 1 ro")
            .unwrap();
        assert!(c.done() && c.mode == "ro" && c.features.is_empty());
        assert!(parse("Fail").unwrap_err().contains("metadata failed"));
        assert!(parse("8 35/4096 8").unwrap_err().contains("too short"));
        assert!(parse("8 x/4096 8 1/2 0 0 0 rw")
            .unwrap_err()
            .contains("metadata usage"));
    }

    #[test]
    fn table_line_devices() {
        assert_eq!(
            table_devices("254:0 254:1 254:2 8 1 no_hydration").unwrap(),
            ("254:0".into(), "254:1".into(), "254:2".into())
        );
        assert!(table_devices("254:0").is_err());
    }
}

// SPDX-License-Identifier: GPL-2.0
//! The clone table line `create` loads, in the upstream syntax and with the
//! upstream (C) names only, so it works with either module:
//!
//! ```text
//! <metadata> <destination> <source> <region sectors> [<#features> <feature>*] [<#core args> <key> <value>*]
//! ```

/// The clone's own settings in its table: everything but the devices (also
/// `create`'s options).
#[derive(Clone, Default, clap::Args)]
pub struct Options {
    /// Region size: sectors, or with a unit (4k to 1g, a power of two).
    #[arg(long = "region-size", value_name = "SIZE", value_parser = clone_metadata::cli::sectors, default_value = "64k")]
    pub region_sectors: u64,
    /// Do not copy in the background (regions are copied when written).
    #[arg(long)]
    pub no_copy: bool,
    /// Do not pass discards down to the destination.
    #[arg(long)]
    pub no_discard_passdown: bool,
    /// At most this many regions copied at once (default: chosen by the target).
    #[arg(long)]
    pub copy_threshold: Option<u32>,
    /// At most this many regions per copy job.
    #[arg(long)]
    pub copy_batch_size: Option<u32>,
    /// Copy at most this many MiB/s (dm_clone_rs only; 0: no limit).
    #[arg(long)]
    pub copy_rate_limit: Option<u32>,
}

/// What a new clone's table says: its devices (`<major>:<minor>`) and options.
pub struct Spec<'a> {
    pub metadata: &'a str,
    pub dest: &'a str,
    pub source: &'a str,
    pub options: &'a Options,
}

impl Spec<'_> {
    /// The table line's parameters (after `0 <length> clone`).
    pub fn params(&self) -> String {
        let o = self.options;
        let mut features = Vec::new();
        if o.no_copy {
            features.push("no_hydration".to_string());
        }
        if o.no_discard_passdown {
            features.push("no_discard_passdown".to_string());
        }
        let mut core = Vec::new();
        if let Some(t) = o.copy_threshold {
            core.push(format!("hydration_threshold {t}"));
        }
        if let Some(b) = o.copy_batch_size {
            core.push(format!("hydration_batch_size {b}"));
        }
        if let Some(l) = o.copy_rate_limit {
            core.push(format!("copy_rate_limit {l}"));
        }
        let mut p = format!(
            "{} {} {} {}",
            self.metadata, self.dest, self.source, o.region_sectors
        );
        // The core args' count follows the features' count, which must then be given.
        if !features.is_empty() || !core.is_empty() {
            p.push_str(&format!(" {}", features.len()));
            features.iter().for_each(|f| p.push_str(&format!(" {f}")));
        }
        if !core.is_empty() {
            p.push_str(&format!(" {}", core.len() * 2));
            core.iter().for_each(|c| p.push_str(&format!(" {c}")));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(o: Options) -> String {
        Spec {
            metadata: "254:0",
            dest: "254:1",
            source: "254:2",
            options: &o,
        }
        .params()
    }

    fn rs8() -> Options {
        Options {
            region_sectors: 8,
            ..Options::default()
        }
    }

    #[test]
    fn tables_in_the_upstream_syntax() {
        assert_eq!(params(rs8()), "254:0 254:1 254:2 8");
        let o = Options {
            copy_threshold: Some(4),
            ..rs8()
        };
        assert_eq!(params(o), "254:0 254:1 254:2 8 0 2 hydration_threshold 4");
        let o = Options {
            no_copy: true,
            no_discard_passdown: true,
            copy_batch_size: Some(16),
            ..rs8()
        };
        assert_eq!(
            params(o),
            "254:0 254:1 254:2 8 2 no_hydration no_discard_passdown 2 hydration_batch_size 16"
        );
        let o = Options {
            copy_threshold: Some(2),
            copy_rate_limit: Some(8),
            ..rs8()
        };
        assert_eq!(
            params(o),
            "254:0 254:1 254:2 8 0 4 hydration_threshold 2 copy_rate_limit 8"
        );
        let o = Options {
            no_copy: true,
            ..rs8()
        };
        assert_eq!(params(o), "254:0 254:1 254:2 8 1 no_hydration");
    }
}

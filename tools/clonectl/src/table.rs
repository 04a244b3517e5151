// SPDX-License-Identifier: GPL-2.0
//! The clone table line `create` loads, in the upstream syntax and with the
//! upstream (C) names only, so it works with either module:
//!
//! ```text
//! <metadata> <destination> <source> <region sectors> [<#features> <feature>*] [<#core args> <key> <value>*]
//! ```

/// What a new clone's table says.
pub struct Spec<'a> {
    pub metadata: &'a str,
    pub dest: &'a str,
    pub source: &'a str,
    pub region_sectors: u64,
    /// `no_hydration`: regions are copied only when written.
    pub no_copy: bool,
    pub no_discard_passdown: bool,
    pub copy_threshold: Option<u32>,
    pub copy_batch_size: Option<u32>,
    /// MiB/s at most: dm_clone_rs's own core arg (C has none).
    pub copy_rate_limit: Option<u32>,
}

impl Spec<'_> {
    /// The table line's parameters (after `0 <length> clone`).
    pub fn params(&self) -> String {
        let mut features = Vec::new();
        if self.no_copy {
            features.push("no_hydration".to_string());
        }
        if self.no_discard_passdown {
            features.push("no_discard_passdown".to_string());
        }
        let mut core = Vec::new();
        if let Some(t) = self.copy_threshold {
            core.push(format!("hydration_threshold {t}"));
        }
        if let Some(b) = self.copy_batch_size {
            core.push(format!("hydration_batch_size {b}"));
        }
        if let Some(l) = self.copy_rate_limit {
            core.push(format!("copy_rate_limit {l}"));
        }
        let mut p = format!(
            "{} {} {} {}",
            self.metadata, self.dest, self.source, self.region_sectors
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

    fn spec() -> Spec<'static> {
        Spec {
            metadata: "254:0",
            dest: "254:1",
            source: "254:2",
            region_sectors: 8,
            no_copy: false,
            no_discard_passdown: false,
            copy_threshold: None,
            copy_batch_size: None,
            copy_rate_limit: None,
        }
    }

    #[test]
    fn tables_in_the_upstream_syntax() {
        assert_eq!(spec().params(), "254:0 254:1 254:2 8");
        let s = Spec {
            copy_threshold: Some(4),
            ..spec()
        };
        assert_eq!(s.params(), "254:0 254:1 254:2 8 0 2 hydration_threshold 4");
        let s = Spec {
            no_copy: true,
            no_discard_passdown: true,
            copy_batch_size: Some(16),
            ..spec()
        };
        assert_eq!(
            s.params(),
            "254:0 254:1 254:2 8 2 no_hydration no_discard_passdown 2 hydration_batch_size 16"
        );
        let s = Spec {
            copy_threshold: Some(2),
            copy_rate_limit: Some(8),
            ..spec()
        };
        assert_eq!(
            s.params(),
            "254:0 254:1 254:2 8 0 4 hydration_threshold 2 copy_rate_limit 8"
        );
        let s = Spec {
            no_copy: true,
            ..spec()
        };
        assert_eq!(s.params(), "254:0 254:1 254:2 8 1 no_hydration");
    }
}

// SPDX-License-Identifier: GPL-2.0
//! What the command-line tools share: parsing their arguments (exit 0 for
//! --help and --version, 2 for a usage error, as thin-provisioning-tools'),
//! and sizes with units.

use std::process::ExitCode;

/// The tool's arguments, or the exit code after clap printed help, a version or an error.
pub fn parse<T: clap::Parser>() -> Result<T, ExitCode> {
    T::try_parse().map_err(|e| {
        let _ = e.print();
        ExitCode::from(if e.use_stderr() { 2 } else { 0 })
    })
}

/// A size: 512-byte sectors, or with a unit (s, k, m, g, t: sectors, KiB to TiB).
pub fn sectors(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_lowercase() {
                's' => 0,
                'k' => 1,
                'm' => 11,
                'g' => 21,
                't' => 31,
                _ => return Err(format!("'{s}': unknown unit '{c}' (s, k, m, g or t)")),
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a size"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("'{s}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_units() {
        assert_eq!(sectors("8"), Ok(8));
        assert_eq!(sectors("4k"), Ok(8));
        assert_eq!(sectors("1M"), Ok(2048));
        assert_eq!(sectors("1t"), Ok(1 << 31));
        assert_eq!(sectors("16s"), Ok(16));
        assert!(sectors("1x").unwrap_err().contains("unknown unit"));
        assert!(sectors("k").unwrap_err().contains("not a size"));
        assert!(sectors("99999999999999999999t").is_err());
    }
}

// SPDX-License-Identifier: GPL-2.0
//! dmc-meta-csum: check or rewrite the checksum of one metadata block.
//!
//!   dmc-meta-csum <file> <block> <kind> [--seal]
//!
//! <kind> is superblock, btree, array, index or bitmap. Without --seal it says
//! whether the stored checksum is right (exit 0) or not (exit 1); with --seal it
//! stores the right one. The corrupted-metadata selftest seals a block after
//! damaging one field, so the field's own check is tested, not the checksum.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::process::ExitCode;

use clone_metadata::checksum::{self, BlockKind};
use clone_metadata::BLOCK_SIZE;

fn run(args: &[String]) -> Result<bool, String> {
    let (path, block, kind, seal) = match args {
        [p, b, k] => (p, b, k, false),
        [p, b, k, s] if s == "--seal" => (p, b, k, true),
        _ => return Err(
            "usage: dmc-meta-csum <file> <block> <superblock|btree|array|index|bitmap> [--seal]"
                .into(),
        ),
    };
    let kind = BlockKind::from_name(kind).ok_or_else(|| format!("unknown block kind '{kind}'"))?;
    let block: u64 = block
        .parse()
        .map_err(|_| format!("'{block}' is not a block number"))?;
    let off = block
        .checked_mul(BLOCK_SIZE as u64)
        .ok_or_else(|| format!("block {block} is out of range"))?;
    let f = OpenOptions::new()
        .read(true)
        .write(seal)
        .open(path)
        .map_err(|e| format!("{path}: {e}"))?;
    let mut buf = vec![0u8; BLOCK_SIZE];
    f.read_exact_at(&mut buf, off)
        .map_err(|e| format!("{path}: block {block}: {e}"))?;
    if seal {
        checksum::seal(&mut buf, kind);
        f.write_all_at(&buf, off)
            .map_err(|e| format!("{path}: block {block}: {e}"))?;
        return Ok(true);
    }
    Ok(checksum::stored(&buf) == Some(checksum::compute(&buf, kind)))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!(
                "dmc-meta-csum: {}: block {}: wrong checksum",
                args[0], args[1]
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("dmc-meta-csum: {e}");
            ExitCode::from(2)
        }
    }
}

// SPDX-License-Identifier: GPL-2.0
//! dmc-meta-csum: check or rewrite the checksum of one metadata block.
//!
//!   dmc-meta-csum [-q] <file> <block> <kind> [--seal]
//!
//! <kind> is superblock, btree, array, index or bitmap. Without --seal it says
//! whether the stored checksum is right (exit 0) or not (exit 1, said on stderr
//! unless -q); with --seal it stores the right one. Exit 2: a usage error, or the
//! file cannot be read or written. The corrupted-metadata selftest seals a block
//! after damaging one field, so the field's own check is tested, not the checksum.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use clone_metadata::checksum::{self, BlockKind};
use clone_metadata::BLOCK_SIZE;

#[derive(Parser)]
#[command(
    version,
    about = "Check (exit 0 right, 1 wrong) or rewrite the checksum of one metadata block"
)]
struct Args {
    /// Say nothing of a wrong checksum; the exit status tells.
    #[arg(short, long)]
    quiet: bool,
    /// Store the right checksum in the block.
    #[arg(long)]
    seal: bool,
    /// The metadata device or image.
    file: PathBuf,
    /// The block's number (4 KiB blocks).
    #[arg(value_parser = block_number)]
    block: u64,
    /// What the block is: superblock, btree, array, index or bitmap.
    #[arg(value_parser = kind)]
    kind: BlockKind,
}

fn block_number(s: &str) -> Result<u64, String> {
    s.parse()
        .ok()
        .filter(|b: &u64| b.checked_mul(BLOCK_SIZE as u64).is_some())
        .ok_or_else(|| format!("'{s}' is not a block number"))
}

fn kind(s: &str) -> Result<BlockKind, String> {
    BlockKind::from_name(s).ok_or_else(|| {
        format!("unknown block kind '{s}' (superblock, btree, array, index or bitmap)")
    })
}

fn run(a: &Args) -> Result<bool, String> {
    let path = a.file.display();
    let off = a.block * BLOCK_SIZE as u64;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(a.seal)
        .open(&a.file)
        .map_err(|e| format!("{path}: {e}"))?;
    let mut buf = vec![0u8; BLOCK_SIZE];
    f.read_exact_at(&mut buf, off)
        .map_err(|e| format!("{path}: block {}: {e}", a.block))?;
    if a.seal {
        checksum::seal(&mut buf, a.kind);
        f.write_all_at(&buf, off)
            .map_err(|e| format!("{path}: block {}: {e}", a.block))?;
        return Ok(true);
    }
    Ok(checksum::stored(&buf) == Some(checksum::compute(&buf, a.kind)))
}

fn main() -> ExitCode {
    let args: Args = match clone_metadata::cli::parse() {
        Ok(a) => a,
        Err(code) => return code,
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            if !args.quiet {
                clone_metadata::cli::say(format_args!(
                    "dmc-meta-csum: {}: block {}: wrong checksum",
                    args.file.display(),
                    args.block
                ));
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            clone_metadata::cli::say(format_args!("dmc-meta-csum: {e}"));
            ExitCode::from(2)
        }
    }
}

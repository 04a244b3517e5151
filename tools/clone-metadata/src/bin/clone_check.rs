// SPDX-License-Identifier: GPL-2.0
//! clone_check: checks a clone's metadata (thin_check's conventions).
//!
//! Verifies the superblock (checksum, location, magic, version, sizes), every
//! block of the bitset of copied regions (btree nodes and array blocks:
//! checksums, locations, entry counts, exactly one bit per region), and the
//! metadata space map (index and bitmap blocks), whose reference counts must
//! equal how often each block is reached from the superblock: no leak, no
//! double use, nothing in use counted free.
//!
//! Exit status: 0 the metadata is clean, 1 it is damaged (each problem is
//! printed with the block it is in), 2 it could not be checked (usage, a device
//! or file that cannot be opened).

use clap::Parser;
use clone_metadata::read::{self, Depth};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    version,
    about = "Check a dm-clone metadata device (exit 0: clean, 1: damaged, 2: cannot check)"
)]
struct Args {
    /// Print nothing; the exit status tells.
    #[arg(short, long)]
    quiet: bool,
    /// Check the superblock only.
    #[arg(long)]
    super_block_only: bool,
    /// The metadata device or a file holding its image.
    input: std::path::PathBuf,
}

fn main() -> ExitCode {
    let args: Args = match clone_metadata::cli::parse() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let file = match clone_metadata::cli::open_input(
        "clone_check",
        &args.input,
        "give the metadata device or an image of it",
    ) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if let Err(code) = clone_metadata::cli::refuse_foreign("clone_check", &args.input, &file) {
        return code;
    }
    let depth = if args.super_block_only {
        Depth::Superblock
    } else {
        Depth::All
    };
    let rep = read::read(&file, depth);
    if !args.quiet {
        use std::fmt::Write;
        let input = args.input.display();
        let mut out = String::new();
        for p in &rep.problems {
            let _ = writeln!(out, "{input}: {p}");
        }
        if rep.superblock_ok {
            let sb = &rep.superblock;
            let _ = write!(
                out,
                "{input}: region size {} sectors, target size {} sectors, {} regions",
                sb.region_size,
                sb.target_size,
                sb.nr_regions()
            );
            if depth == Depth::All {
                let _ = write!(
                    out,
                    ", {} copied; {} of {} metadata blocks in use",
                    rep.nr_copied(),
                    rep.ref_counts.len(),
                    sb.space_map.nr_blocks
                );
            }
            out.push('\n');
        }
        if rep.problems.is_empty() {
            let _ = writeln!(out, "{input}: clean");
        } else {
            let _ = writeln!(
                out,
                "{input}: damaged: {} problem(s); clone_dump -r salvages what is readable, clone_repair rebuilds",
                rep.problems.len()
            );
        }
        clone_metadata::cli::print("clone_check", &out);
    }
    if rep.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

// SPDX-License-Identifier: GPL-2.0
//! clone_check: checks a clone's metadata (thin_check's conventions).
//!
//! Verifies the superblock (checksum, location, magic, version, sizes), every
//! block of the bitset of copied regions (btree nodes and array blocks:
//! checksums, locations, entry counts, exactly one bit per region), and the
//! metadata space map (index and bitmap blocks), whose reference counts must
//! equal how often each block is reached from the superblock: no double use,
//! nothing in use counted free. A leaked block (counted once, reached from
//! nothing) is a non-fatal problem, as thin_check's: reported, and failing the
//! check unless `--ignore-non-fatal-errors`.
//!
//! Each problem is printed on standard error with the block it is in; what the
//! metadata records and the verdict on standard output. Exit status: 0 the
//! metadata is clean (or has non-fatal problems only, with
//! `--ignore-non-fatal-errors`), 1 it has problems, 2 it could not be checked
//! (usage, a device or file that cannot be opened).

use clap::Parser;
use clone_metadata::read::{self, Depth};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    version,
    about = "Check a dm-clone metadata device (exit 0: clean, 1: damaged, 2: cannot check)"
)]
struct Args {
    /// Print nothing about the metadata; the exit status tells.
    #[arg(short, long)]
    quiet: bool,
    /// Check the superblock only.
    #[arg(long)]
    super_block_only: bool,
    /// Exit 0 when the only problems are non-fatal (leaked blocks).
    #[arg(long)]
    ignore_non_fatal_errors: bool,
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
    let (fatal, non_fatal) = (rep.nr_fatal(), rep.problems.len() - rep.nr_fatal());
    if !args.quiet {
        use std::fmt::Write;
        let input = args.input.display();
        // The problems first, on standard error: a reader of both streams sees them
        // before the verdict.
        for p in &rep.problems {
            clone_metadata::cli::say(format_args!("{input}: {p}"));
        }
        let mut out = String::new();
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
        let _ = if rep.problems.is_empty() {
            writeln!(out, "{input}: clean")
        } else if fatal == 0 {
            let what = if args.ignore_non_fatal_errors {
                "ignored"
            } else {
                "--ignore-non-fatal-errors passes them"
            };
            writeln!(
                out,
                "{input}: no damage, {non_fatal} non-fatal problem(s) (leaked blocks); {what}, clone_repair rebuilds the space map"
            )
        } else {
            let some = if non_fatal > 0 {
                format!(" ({non_fatal} of them non-fatal)")
            } else {
                String::new()
            };
            writeln!(
                out,
                "{input}: damaged: {} problem(s){some}; clone_dump -r salvages what is readable, clone_repair rebuilds",
                rep.problems.len()
            )
        };
        clone_metadata::cli::print("clone_check", &out);
    }
    if fatal > 0 || (non_fatal > 0 && !args.ignore_non_fatal_errors) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

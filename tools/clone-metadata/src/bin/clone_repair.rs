// SPDX-License-Identifier: GPL-2.0
//! clone_repair: rebuilds damaged metadata from what can be read
//! (thin_repair's conventions): `clone_repair -i damaged -o new`.
//!
//! The superblock gives the sizes (or `--region-size` and `--target-size` when
//! it is damaged); the bitset's words that can be read (valid array blocks
//! reached from the btree) keep their regions' state. Regions whose words
//! cannot be read have no known state, and neither choice is safe: marking
//! them copied may expose what the destination held before (regions never
//! copied), marking them uncopied may hide writes made to them since (they read
//! from the source again). They are listed, and the repair is refused unless
//! `--unknown copied` or `--unknown uncopied` says which. The output must exist
//! and differ from the input; it gets fresh metadata (clone_restore's layout).
//! Exit status: 0 repaired, 1 refused (the reason said), 2 cannot run.

use clap::Parser;
use clone_metadata::cli::{runs_text, Unknown, UNKNOWN_CHOICE};
use clone_metadata::read::{self, BlockSource, Depth};
use clone_metadata::write;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    version,
    about = "Rebuild damaged dm-clone metadata from what can be read"
)]
struct Args {
    /// The damaged metadata (device or image).
    #[arg(short, long)]
    input: std::path::PathBuf,
    /// Where to write the repaired metadata (an existing device or image, not the input).
    #[arg(short, long)]
    output: std::path::PathBuf,
    /// What regions whose state cannot be read become.
    #[arg(long, value_enum)]
    unknown: Option<Unknown>,
    /// The region size in sectors, if the superblock cannot be read.
    #[arg(long)]
    region_size: Option<u64>,
    /// The target size in sectors, if the superblock cannot be read.
    #[arg(long)]
    target_size: Option<u64>,
}

fn main() -> ExitCode {
    let args: Args = match clone_metadata::cli::parse() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let input = match clone_metadata::cli::open_input(
        "clone_repair",
        &args.input,
        "give the metadata device to repair, or an image of it",
    ) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if let Err(code) = clone_metadata::cli::refuse_foreign("clone_repair", &args.input, &input) {
        return code;
    }
    let output = match clone_metadata::cli::open_output(
        "clone_repair",
        &args.output,
        "give an existing device or image",
    ) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if clone_metadata::cli::same_file(&input, &output) {
        eprintln!(
            "clone_repair: the output must not be the input (write to a new device, then swap)"
        );
        return ExitCode::from(2);
    }
    let rep = read::read(&input, Depth::All);
    for p in &rep.problems {
        eprintln!("clone_repair: {}: {p}", args.input.display());
    }
    let (region_size, target_size, mut unknown) = if rep.superblock_ok {
        (
            rep.superblock.region_size,
            rep.superblock.target_size,
            rep.unknown_runs(),
        )
    } else {
        match (args.region_size, args.target_size) {
            (Some(r), Some(t)) => {
                let given = write::Metadata {
                    region_size: r,
                    target_size: t,
                    copied: Vec::new(),
                };
                if let Err(e) = write::validate(&given, write::MAX_BLOCKS) {
                    eprintln!(
                        "clone_repair: --region-size {r} --target-size {t}: {e} (give the sizes of the clone's table)"
                    );
                    return ExitCode::from(1);
                }
                (r, t, vec![(0, given.nr_regions())])
            }
            _ => {
                eprintln!(
                    "clone_repair: {}: the superblock cannot be read: give --region-size and --target-size (the clone's table has them)",
                    args.input.display()
                );
                return ExitCode::from(1);
            }
        }
    };
    unknown.retain(|&(_, n)| n > 0);
    let mut m = write::Metadata {
        region_size,
        target_size,
        copied: rep.copied_runs(),
    };
    if !unknown.is_empty() {
        let total: u64 = unknown.iter().map(|&(_, n)| n).sum();
        match args.unknown {
            None => {
                eprintln!(
                    "clone_repair: the state of {total} regions cannot be read ({}). {UNKNOWN_CHOICE}",
                    runs_text(&unknown)
                );
                return ExitCode::from(1);
            }
            Some(u) => {
                eprintln!(
                    "clone_repair: {total} regions of unknown state become {}",
                    u.word()
                );
                if u == Unknown::Copied {
                    m.copied = write::union_runs(&m.copied, &unknown);
                }
            }
        }
    }
    let blocks = match write::write(&m, output.nr_blocks()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("clone_repair: {}: {e}", args.output.display());
            return ExitCode::from(1);
        }
    };
    if let Err(e) = write::write_to(&output, &blocks) {
        eprintln!("clone_repair: writing {}: {e}", args.output.display());
        return ExitCode::from(2);
    }
    clone_metadata::cli::print(
        "clone_repair",
        &format!(
            "clone_repair: {}: {} regions, {} copied\n",
            args.output.display(),
            m.nr_regions(),
            m.copied.iter().map(|&(_, n)| n).sum::<u64>()
        ),
    );
    ExitCode::SUCCESS
}

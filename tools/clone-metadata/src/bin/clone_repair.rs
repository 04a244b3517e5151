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

use clap::{Parser, ValueEnum};
use clone_metadata::read::{self, BlockSource, Depth};
use clone_metadata::write;
use std::process::ExitCode;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Unknown {
    Copied,
    Uncopied,
}

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

fn runs_text(runs: &[(u64, u64)]) -> String {
    let mut s: Vec<String> = runs
        .iter()
        .take(8)
        .map(|&(f, n)| {
            if n == 1 {
                format!("{f}")
            } else {
                format!("{f}-{}", f + n - 1)
            }
        })
        .collect();
    if runs.len() > 8 {
        s.push(format!("and {} more runs", runs.len() - 8));
    }
    s.join(", ")
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
    let output = match std::fs::OpenOptions::new().write(true).open(&args.output) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "clone_repair: cannot open {} for writing: {e} (give an existing device or image)",
                args.output.display()
            );
            return ExitCode::from(2);
        }
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
                    "clone_repair: the state of {total} regions cannot be read ({}). Marking them copied may expose what the destination held before; marking them uncopied may hide writes made since (they read from the source again). Choose with --unknown copied or --unknown uncopied.",
                    runs_text(&unknown)
                );
                return ExitCode::from(1);
            }
            Some(Unknown::Uncopied) => {
                eprintln!("clone_repair: {total} regions of unknown state become uncopied");
            }
            Some(Unknown::Copied) => {
                eprintln!("clone_repair: {total} regions of unknown state become copied");
                m.copied.extend(unknown.iter().copied());
                m.copied.sort_unstable();
                // Merge touching runs.
                let mut merged: Vec<(u64, u64)> = Vec::new();
                for (f, n) in m.copied.drain(..) {
                    match merged.last_mut() {
                        Some((mf, mn)) if *mf + *mn >= f => *mn = (*mn).max(f + n - *mf),
                        _ => merged.push((f, n)),
                    }
                }
                m.copied = merged;
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

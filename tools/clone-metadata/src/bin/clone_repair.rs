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
//! The problems found and that choice are said on standard error, the result in one
//! line on standard output; `-q/--quiet` says nothing but why it refused or could not
//! run. Exit status: 0 repaired, 1 refused (the reason said), 2 cannot run.

use clap::Parser;
use clone_metadata::cli::{say, Unknown};
use clone_metadata::read::{self, BlockSource, Depth};
use clone_metadata::{repair, write};
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
    /// Say nothing but why it refused or could not run.
    #[arg(short, long)]
    quiet: bool,
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
        say("clone_repair: the output must not be the input (write to a new device, then swap)");
        return ExitCode::from(2);
    }
    let rep = read::read(&input, Depth::All);
    let name = args.input.display().to_string();
    if !args.quiet {
        for p in &rep.problems {
            say(format_args!("clone_repair: {name}: {p}"));
        }
    }
    let r = match repair::repair(
        &rep,
        &name,
        (args.region_size, args.target_size),
        args.unknown,
    ) {
        Ok(r) => r,
        Err(e) => {
            say(format_args!("clone_repair: {e}"));
            return ExitCode::from(1);
        }
    };
    if let Some(u) = args.unknown.filter(|_| r.nr_unknown > 0 && !args.quiet) {
        say(format_args!(
            "clone_repair: {} regions of unknown state become {}",
            r.nr_unknown,
            u.word()
        ));
    }
    let m = &r.metadata;
    let blocks = match write::write(m, output.nr_blocks()) {
        Ok(b) => b,
        Err(e) => {
            say(format_args!("clone_repair: {}: {e}", args.output.display()));
            return ExitCode::from(1);
        }
    };
    if let Err(e) = write::write_to(&output, &blocks) {
        say(format_args!(
            "clone_repair: writing {}: {e}",
            args.output.display()
        ));
        return ExitCode::from(2);
    }
    if !args.quiet {
        clone_metadata::cli::print(
            "clone_repair",
            &format!(
                "clone_repair: {}: {} regions, {} copied\n",
                args.output.display(),
                m.nr_regions(),
                m.copied.iter().map(|&(_, n)| n).sum::<u64>()
            ),
        );
    }
    ExitCode::SUCCESS
}

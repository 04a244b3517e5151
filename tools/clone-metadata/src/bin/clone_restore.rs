// SPDX-License-Identifier: GPL-2.0
//! clone_restore: writes fresh metadata from the XML form (thin_restore's
//! conventions): `clone_restore -i dump.xml -o /dev/vg/clone-meta`.
//!
//! The output must exist (a metadata device, or a file whose size is the
//! device's); what is written opens with both kernel targets with exactly the
//! regions the XML names copied. It refuses a device too small for the regions
//! (saying how big it must be) and an XML that does not parse (saying where). A salvaged
//! dump's `<unknown>` runs (clone_dump -r) are refused unless `--unknown copied` or
//! `--unknown uncopied` says what they become (clone_repair's option).
//! It prints nothing when it succeeds but that choice, on standard error (not even that
//! with `-q/--quiet`); refusals are said on standard error, `-q` or not.
//! Exit status: 0 written, 1 refused (bad input), 2 cannot run (usage, files).

use clap::Parser;
use clone_metadata::cli::say;
use clone_metadata::{write, xml};
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "Write dm-clone metadata from clone_dump's XML")]
struct Args {
    /// The XML to restore (clone_dump's output).
    #[arg(short, long)]
    input: std::path::PathBuf,
    /// The metadata device (or image file) to write; it must exist.
    #[arg(short, long)]
    output: std::path::PathBuf,
    /// What regions of unknown state (clone_dump -r's <unknown> runs) become.
    #[arg(long, value_enum)]
    unknown: Option<clone_metadata::cli::Unknown>,
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
        "clone_restore",
        &args.input,
        "give clone_dump's XML in a file",
    ) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let mut bytes = Vec::new();
    if let Err(e) = std::io::Read::read_to_end(&mut &input, &mut bytes) {
        say(format_args!(
            "clone_restore: cannot read {}: {e}",
            args.input.display()
        ));
        return ExitCode::from(2);
    }
    let text = match xml::text(bytes) {
        Ok(t) => t,
        Err(e) => {
            say(format_args!("clone_restore: {}: {e}", args.input.display()));
            return ExitCode::from(1);
        }
    };
    let m = match xml::restore(&text, args.unknown) {
        Ok((m, nr_unknown)) => {
            if let Some(u) = args.unknown.filter(|_| nr_unknown > 0 && !args.quiet) {
                say(format_args!(
                    "clone_restore: {nr_unknown} regions of unknown state become {}",
                    u.word()
                ));
            }
            m
        }
        Err(e) => {
            say(format_args!("clone_restore: {}: {e}", args.input.display()));
            return ExitCode::from(1);
        }
    };
    let out = match clone_metadata::cli::open_output(
        "clone_restore",
        &args.output,
        "give an existing metadata device or image file",
    ) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if clone_metadata::cli::same_file(&input, &out) {
        say(format_args!(
            "clone_restore: {} is the input: give another metadata device or image file",
            args.output.display()
        ));
        return ExitCode::from(2);
    }
    let blocks = clone_metadata::read::BlockSource::nr_blocks(&out);
    let written = match write::write(&m, blocks) {
        Ok(b) => b,
        Err(e) => {
            say(format_args!(
                "clone_restore: {}: {e}",
                args.output.display()
            ));
            return ExitCode::from(1);
        }
    };
    if let Err(e) = write::write_to(&out, &written) {
        say(format_args!(
            "clone_restore: writing {}: {e}",
            args.output.display()
        ));
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

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
//! Exit status: 0 written, 1 refused (bad input), 2 cannot run (usage, files).

use clap::Parser;
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
        eprintln!("clone_restore: cannot read {}: {e}", args.input.display());
        return ExitCode::from(2);
    }
    // Text that is not UTF-8 is XML that does not parse: refused as such (status 1).
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            eprintln!(
                "clone_restore: {}: line {line}: not UTF-8 text (byte {at}): not clone_dump's XML",
                args.input.display()
            );
            return ExitCode::from(1);
        }
    };
    let d = match xml::parse(&text) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("clone_restore: {}: {e}", args.input.display());
            return ExitCode::from(1);
        }
    };
    let m = if d.unknown.is_empty() {
        d.metadata
    } else {
        let n = d.nr_unknown();
        match args.unknown {
            None => {
                eprintln!(
                    "clone_restore: {}: the state of {n} regions is unknown ({}): clone_dump -r could not read them. {}",
                    args.input.display(),
                    clone_metadata::cli::runs_text(&d.unknown),
                    clone_metadata::cli::UNKNOWN_CHOICE
                );
                return ExitCode::from(1);
            }
            Some(u) => {
                eprintln!(
                    "clone_restore: {n} regions of unknown state become {}",
                    u.word()
                );
                d.resolve(u)
            }
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
        eprintln!(
            "clone_restore: {} is the input: give another metadata device or image file",
            args.output.display()
        );
        return ExitCode::from(2);
    }
    let blocks = clone_metadata::read::BlockSource::nr_blocks(&out);
    let written = match write::write(&m, blocks) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("clone_restore: {}: {e}", args.output.display());
            return ExitCode::from(1);
        }
    };
    if let Err(e) = write::write_to(&out, &written) {
        eprintln!("clone_restore: writing {}: {e}", args.output.display());
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

// SPDX-License-Identifier: GPL-2.0
//! clone_restore: writes fresh metadata from the XML form (thin_restore's
//! conventions): `clone_restore -i dump.xml -o /dev/vg/clone-meta`.
//!
//! The output must exist (a metadata device, or a file whose size is the
//! device's); what is written opens with both kernel targets with exactly the
//! regions the XML names copied. It refuses a device too small for the regions
//! (saying how big it must be) and an XML that does not parse (saying where).
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
}

fn main() -> ExitCode {
    let args: Args = match clone_metadata::cli::parse() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let text = match std::fs::read_to_string(&args.input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("clone_restore: cannot read {}: {e}", args.input.display());
            return ExitCode::from(2);
        }
    };
    let m = match xml::from_xml(&text) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("clone_restore: {}: {e}", args.input.display());
            return ExitCode::from(1);
        }
    };
    let out = match std::fs::OpenOptions::new().write(true).open(&args.output) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "clone_restore: cannot open {} for writing: {e} (give an existing metadata device or image file)",
                args.output.display()
            );
            return ExitCode::from(2);
        }
    };
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

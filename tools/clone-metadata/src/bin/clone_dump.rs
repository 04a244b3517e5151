// SPDX-License-Identifier: GPL-2.0
//! clone_dump: prints what a clone's metadata records (thin_dump's conventions).
//!
//! XML (the default; the schema is in Documentation/admin-guide/device-mapper/clone-tools/clone_dump.rst):
//!
//! ```text
//! <superblock version="1" region_size="8" target_size="65536" nr_regions="8192" nr_copied="12">
//!   <copied first="0" count="10"/>
//!   <copied first="100" count="2"/>
//! </superblock>
//! ```
//!
//! or `--format human`: the same in words. Where blocks are damaged it dumps
//! what it could read and says on stderr what it could not (exit 1); exit 2 if
//! the input cannot be opened or has no readable superblock.

use clap::{Parser, ValueEnum};
use clone_metadata::read::{self, Depth};
use std::io::Write;
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Xml,
    Human,
}

#[derive(Parser)]
#[command(version, about = "Dump a dm-clone metadata device's copied regions")]
struct Args {
    /// Output format.
    #[arg(short, long, value_enum, default_value = "xml")]
    format: Format,
    /// Write to this file instead of standard output (refused if it exists).
    #[arg(short, long)]
    output: Option<std::path::PathBuf>,
    /// The metadata device or a file holding its image.
    input: std::path::PathBuf,
}

fn dump(rep: &read::Report, format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    let sb = &rep.superblock;
    let runs = rep.copied_runs();
    match format {
        Format::Xml => {
            writeln!(
                out,
                "<superblock version=\"{}\" region_size=\"{}\" target_size=\"{}\" nr_regions=\"{}\" nr_copied=\"{}\">",
                sb.version,
                sb.region_size,
                sb.target_size,
                sb.nr_regions(),
                rep.nr_copied()
            )?;
            for (first, count) in runs {
                writeln!(out, "  <copied first=\"{first}\" count=\"{count}\"/>")?;
            }
            writeln!(out, "</superblock>")
        }
        Format::Human => {
            writeln!(out, "version: {}", sb.version)?;
            writeln!(out, "region size: {} sectors", sb.region_size)?;
            writeln!(out, "target size: {} sectors", sb.target_size)?;
            writeln!(
                out,
                "regions: {} ({} copied)",
                sb.nr_regions(),
                rep.nr_copied()
            )?;
            for (first, count) in runs {
                if count == 1 {
                    writeln!(out, "copied: {first}")?;
                } else {
                    writeln!(out, "copied: {first}-{}", first + count - 1)?;
                }
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let args: Args = match clone_metadata::cli::parse() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let file = match clone_metadata::cli::open_input(
        "clone_dump",
        &args.input,
        "give the metadata device or an image of it",
    ) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if let Err(code) = clone_metadata::cli::refuse_foreign("clone_dump", &args.input, &file) {
        return code;
    }
    let rep = read::read(&file, Depth::All);
    if !rep.superblock_ok {
        for p in &rep.problems {
            eprintln!("clone_dump: {}: {p}", args.input.display());
        }
        eprintln!(
            "clone_dump: {}: no readable superblock: nothing to dump",
            args.input.display()
        );
        return ExitCode::from(2);
    }
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(e) => {
                eprintln!(
                    "clone_dump: cannot create {}: {e} (it must not exist)",
                    path.display()
                );
                return ExitCode::from(2);
            }
        },
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    if let Err(e) = dump(&rep, args.format, &mut out).and_then(|()| out.flush()) {
        match &args.output {
            Some(path) => {
                eprintln!("clone_dump: cannot write {}: {e}", path.display());
                return ExitCode::from(2);
            }
            None => clone_metadata::cli::stdout_failed("clone_dump", &e),
        }
    }
    for p in &rep.problems {
        eprintln!(
            "clone_dump: {}: {p} (dumped what could be read)",
            args.input.display()
        );
    }
    if rep.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

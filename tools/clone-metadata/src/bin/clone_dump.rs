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
//! or `--format human`: the same in words. Damaged metadata is refused (exit 1, nothing
//! dumped) unless `-r/--repair` asks for what can be read: the regions whose state cannot
//! be read are then dumped as `<unknown first=".." count=".."/>` runs (clone_restore
//! refuses them until told what they are). Non-fatal problems (leaked blocks) touch no
//! region: the dump is whole, with or without `-r`. Exit 2 if the input cannot be opened
//! or has no readable superblock. The problems found are said on standard error, unless
//! `-q/--quiet`; the dump is the only thing on standard output.

use clap::{Parser, ValueEnum};
use clone_metadata::cli::say;
use clone_metadata::read::{self, Depth};
use clone_metadata::xml::Dump;
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
    /// Dump what can be read of damaged metadata, marking the regions whose state cannot
    /// be read as unknown (without it, damaged metadata is refused).
    #[arg(short, long)]
    repair: bool,
    /// Say nothing of the problems found; the dump is written all the same.
    #[arg(short, long)]
    quiet: bool,
    /// The metadata device or a file holding its image.
    input: std::path::PathBuf,
}

fn dump(d: &Dump, format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    let m = &d.metadata;
    match format {
        Format::Xml => d.write_xml(out),
        Format::Human => {
            writeln!(out, "version: {}", read::VERSION)?;
            writeln!(out, "region size: {} sectors", m.region_size)?;
            writeln!(out, "target size: {} sectors", m.target_size)?;
            let copied: u64 = m.copied.iter().map(|&(_, n)| n).sum();
            write!(out, "regions: {} ({copied} copied", m.nr_regions())?;
            if !d.unknown.is_empty() {
                write!(out, ", {} unknown", d.nr_unknown())?;
            }
            writeln!(out, ")")?;
            for (first, count, unknown) in d.runs() {
                let what = if unknown { "unknown" } else { "copied" };
                if count == 1 {
                    writeln!(out, "{what}: {first}")?;
                } else {
                    writeln!(out, "{what}: {first}-{}", first + count - 1)?;
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
    let input = args.input.display();
    if !args.quiet {
        for p in &rep.problems {
            say(format_args!("clone_dump: {input}: {p}"));
        }
    }
    if !rep.superblock_ok {
        say(format_args!(
            "clone_dump: {input}: no readable superblock: nothing to dump (clone_repair rebuilds the metadata given --region-size and --target-size)"
        ));
        return ExitCode::from(2);
    }
    if !rep.is_sound() && !args.repair {
        say(format_args!(
            "clone_dump: {input}: the metadata is damaged: nothing dumped; use -r/--repair to dump what can be read (regions whose state cannot be read are marked unknown), or clone_repair to rebuild it"
        ));
        return ExitCode::from(1);
    }
    let d = Dump::from_report(&rep);
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(e) => {
                say(format_args!(
                    "clone_dump: cannot create {}: {e} (it must not exist)",
                    path.display()
                ));
                return ExitCode::from(2);
            }
        },
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    if let Err(e) = dump(&d, args.format, &mut out).and_then(|()| out.flush()) {
        match &args.output {
            Some(path) => {
                say(format_args!(
                    "clone_dump: cannot write {}: {e}",
                    path.display()
                ));
                return ExitCode::from(2);
            }
            None => clone_metadata::cli::stdout_failed("clone_dump", &e),
        }
    }
    if !d.unknown.is_empty() && !args.quiet {
        say(format_args!(
            "clone_dump: {input}: the state of {} regions cannot be read: dumped as unknown ({})",
            d.nr_unknown(),
            clone_metadata::cli::runs_text(&d.unknown)
        ));
    }
    ExitCode::SUCCESS
}

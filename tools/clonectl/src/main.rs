// SPDX-License-Identifier: GPL-2.0
//! clonectl: the lifecycle of a device-mapper clone, for our target and the C one.
//!
//! ```text
//! clonectl create NAME --source DEV --dest DEV --metadata DEV [--region-size SIZE] [...] [--dry-run]
//! clonectl status [NAME] [--json] [--watch]   clonectl wait NAME [--timeout SECS]
//! clonectl finish NAME                        clonectl pause NAME / clonectl resume NAME
//! clonectl set NAME KEY=VALUE                 clonectl list [--json]
//! clonectl grow NAME [--size SIZE]
//! ```
//!
//! It talks to device-mapper through the `devicemapper` crate (ioctls on
//! /dev/mapper/control), never through dmsetup, and uses only the upstream
//! (C) names on the wire, so tables it makes work with either module.
//! Exit status: 0 done, 1 failed (the device and the reason are said),
//! 2 usage, 3 `wait` or `finish` timed out.
//!
//! Files: `create` (checks and creation) over `devices` (the block devices)
//! and `table` (the table line); `report` (status, list); `progress`
//! (following a copy: wait, watch); `finish` (the swap to linear); `grow`
//! (a longer table); `settings`
//! (set, pause, resume); `dm` (device-mapper); `status` (the status line).

/// `println!` without its panic: a failed write to standard output ends clonectl
/// quietly on a broken pipe (status 141), else saying so with status 2
/// (`clone_metadata::cli::stdout_failed`).
macro_rules! outln {
    ($($arg:tt)*) => {
        clone_metadata::cli::print("clonectl", &format!("{}\n", format_args!($($arg)*)))
    };
}

mod create;
mod devices;
mod dm;
mod error;
mod finish;
mod grow;
mod progress;
mod report;
mod settings;
mod signature;
mod status;
mod table;

use clap::{Parser, Subcommand};
use error::{Fail, Res};
use progress::{follow, Show};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "Create, watch and finish device-mapper clones")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a clone of SOURCE on DEST, usable at once, copied in the background.
    Create {
        name: String,
        /// The device to clone (opened read-only by the target, never written).
        #[arg(long)]
        source: PathBuf,
        /// The device that becomes the clone (at least as large as the source).
        #[arg(long)]
        dest: PathBuf,
        /// The metadata device (its first 4 KiB zeroed: a new clone; see clone_metadata_size).
        #[arg(long)]
        metadata: PathBuf,
        #[command(flatten)]
        options: table::Options,
        /// Create even if the source is held by another device (its content must
        /// not change while it is copied), or the metadata device holds something
        /// (another clone's metadata: to resume that clone; a file system, ...).
        #[arg(long)]
        force: bool,
        /// Print the table instead of creating the device.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show how far a clone is (all clones without NAME).
    Status {
        #[arg(required_if_eq("watch", "true"))]
        name: Option<String>,
        /// As JSON.
        #[arg(long, conflicts_with = "watch")]
        json: bool,
        /// Seconds between the two samples that give the copy rate (0: no rate);
        /// with --watch, between two lines when not on a terminal.
        #[arg(long, default_value = "1", value_parser = seconds)]
        interval: f64,
        /// Follow the copy until every region is copied: a progress bar with
        /// rate and ETA on a terminal, a line per interval otherwise.
        #[arg(long)]
        watch: bool,
    },
    /// Wait until every region is copied (a progress bar on a terminal).
    Wait {
        name: String,
        /// Give up after this many seconds (exit 3).
        #[arg(long, value_parser = seconds)]
        timeout: Option<f64>,
    },
    /// Wait, then replace the clone with a linear mapping of its destination; the
    /// device stays, and no I/O fails.
    Finish {
        name: String,
        /// Give up waiting after this many seconds (exit 3; nothing changed).
        #[arg(long, value_parser = seconds)]
        timeout: Option<f64>,
    },
    /// Grow the clone to its source's size (or SIZE) after its source and
    /// destination have grown; online (dm_clone_rs only).
    Grow {
        name: String,
        /// The new length: sectors, or with a unit (default: the source's size).
        #[arg(long, value_parser = clone_metadata::cli::sectors)]
        size: Option<u64>,
    },
    /// Pause the background copy.
    Pause { name: String },
    /// Resume the background copy.
    Resume { name: String },
    /// Change a setting: copy_threshold=N, copy_batch_size=N (auto where the target
    /// takes it), copy_rate_limit=MIB_PER_S (dm_clone_rs only).
    Set { name: String, setting: String },
    /// List the clones.
    List {
        /// As JSON (the form of status --json, without rates).
        #[arg(long)]
        json: bool,
    },
}

/// The most seconds an interval or a timeout may be: about 31 years.
const MAX_SECONDS: f64 = 1e9;

/// A number of seconds on the command line: finite, not negative, fractions taken.
fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !v.is_finite() || !(0.0..=MAX_SECONDS).contains(&v) {
        return Err(format!(
            "'{s}' is not a number of seconds from 0 to {MAX_SECONDS:e} (leave --timeout out to wait as long as it takes)"
        ));
    }
    Ok(v)
}

/// A bar on stderr when it is a terminal (wait, finish), else nothing.
fn stderr_bar() -> Show {
    if std::io::stderr().is_terminal() {
        Show::Bar(indicatif::ProgressDrawTarget::stderr())
    } else {
        Show::Quiet
    }
}

fn run(cli: Cli) -> Res<ExitCode> {
    let timed_out = ExitCode::from(3);
    match cli.cmd {
        Cmd::Create {
            name,
            source,
            dest,
            metadata,
            options,
            force,
            dry_run,
        } => create::create(&create::Request {
            name: &name,
            source: &source,
            dest: &dest,
            metadata: &metadata,
            options,
            force,
            dry_run,
        })?,
        Cmd::Status {
            name: Some(name),
            watch: true,
            interval,
            ..
        } => report::watch(
            &name,
            if std::io::stdout().is_terminal() {
                Show::Bar(indicatif::ProgressDrawTarget::stdout())
            } else {
                Show::Lines(interval)
            },
        )?,
        Cmd::Status {
            name,
            json,
            interval,
            ..
        } => {
            if !report::status(name, json, interval)? {
                return Ok(ExitCode::from(1));
            }
        }
        Cmd::Wait { name, timeout } => {
            let dm = dm::Dm::open()?;
            if !follow(&dm, &name, timeout, stderr_bar())?.copied(&name) {
                return Ok(timed_out);
            }
        }
        Cmd::Finish { name, timeout } => {
            if !finish::finish(&name, timeout, stderr_bar())? {
                return Ok(timed_out);
            }
        }
        Cmd::Grow { name, size } => grow::grow(&name, size)?,
        Cmd::Pause { name } => dm::Dm::open()?.message(&name, "disable_hydration")?,
        Cmd::Resume { name } => dm::Dm::open()?.message(&name, "enable_hydration")?,
        Cmd::Set { name, setting } => settings::set(&name, &setting)?,
        Cmd::List { json } => {
            if !report::list(json)? {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli: Cli = match clone_metadata::cli::parse() {
        Ok(c) => c,
        Err(code) => return code,
    };
    match run(cli) {
        Ok(code) => code,
        Err(Fail(msg)) => {
            eprintln!("clonectl: {msg}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_finite_and_not_negative() {
        assert_eq!(seconds("1"), Ok(1.0));
        assert_eq!(seconds("0.5"), Ok(0.5));
        assert_eq!(seconds("0"), Ok(0.0));
        for bad in [
            "inf", "Infinity", "-inf", "NaN", "nan", "-1", "-0.5", "1e300", "x", "",
        ] {
            let e = seconds(bad).unwrap_err();
            assert!(
                e.contains(&format!("'{bad}' is not a number of seconds")),
                "{bad}: {e}"
            );
        }
        // What clap makes of them: exit 2, the option named.
        for args in [
            &["clonectl", "status", "vm1", "--interval", "inf"][..],
            &["clonectl", "status", "--interval", "NaN"],
            &["clonectl", "wait", "vm1", "--timeout=-3"],
            &["clonectl", "finish", "vm1", "--timeout", "1e300"],
        ] {
            let e = Cli::try_parse_from(args).err().unwrap();
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(
                e.to_string().contains("is not a number of seconds"),
                "{args:?}: {e}"
            );
        }
        assert!(Cli::try_parse_from(["clonectl", "list", "--json"]).is_ok());
    }
}

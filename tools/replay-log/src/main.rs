// SPDX-License-Identifier: GPL-2.0
//! dmc-replay-log: list the entries of a dm-log-writes log, or replay a range of
//! them onto a device. The crash-consistency selftests replay a clone's
//! metadata and destination up to each flush and check what a power cut there
//! would have left.
//!
//!   dmc-replay-log list <log>                      one line per entry:
//!                                                  <index> <kind> <sector> <sectors> [<mark>]
//!   dmc-replay-log replay <log> <target> --to N [--from M]
//!                                                  apply entries M..=N (M defaults to 0)

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dmc_replay_log::{Log, ReadAt, WriteAt};

#[derive(Parser)]
#[command(version, about = "List or replay a dm-log-writes log")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// One line per entry: index, kind (write, flush, fua, discard, mark,
    /// meta), first 512-byte sector, 512-byte sectors, and a mark's text.
    List {
        /// The log device of the log-writes target (after `dmsetup remove`).
        log: PathBuf,
    },
    /// Apply entries FROM..=TO of the log to TARGET, then fsync it.
    Replay {
        /// The log device.
        log: PathBuf,
        /// The device (or file) to replay onto.
        target: PathBuf,
        /// The last entry to apply.
        #[arg(long)]
        to: u64,
        /// The first entry to apply (entries before it are already on TARGET).
        #[arg(long, default_value_t = 0)]
        from: u64,
    },
}

/// `O_DIRECT` on x86_64 and most other Linux architectures: the log is written
/// by the kernel below any page cache, so it is read around it.
const O_DIRECT: i32 = 0o40000;
const ALIGN: usize = 4096;

/// A device read with O_DIRECT through a buffer aligned to 4 KiB.
struct DirectDev {
    file: File,
    buf: Vec<u8>,
}

impl DirectDev {
    fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(O_DIRECT)
            .open(path)?;
        Ok(DirectDev {
            file,
            buf: Vec::new(),
        })
    }
}

impl ReadAt for DirectDev {
    fn read_exact_at(&mut self, out: &mut [u8], off: u64) -> io::Result<()> {
        // The log's offsets and lengths are multiples of its logical block
        // size, so only the buffer needs aligning.
        let len = out.len().div_ceil(512) * 512;
        if self.buf.len() < len + ALIGN {
            self.buf.resize(len + ALIGN, 0);
        }
        let skew = self.buf.as_ptr() as usize % ALIGN;
        let start = if skew == 0 { 0 } else { ALIGN - skew };
        let aligned = &mut self.buf[start..start + len];
        self.file.read_exact_at(aligned, off)?;
        out.copy_from_slice(&aligned[..out.len()]);
        Ok(())
    }
}

/// The replay target, written through the page cache and fsynced at the end.
struct Target(File);

impl WriteAt for Target {
    fn write_all_at(&mut self, buf: &[u8], off: u64) -> io::Result<()> {
        self.0.write_all_at(buf, off)
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::List { log } => {
            let dev = DirectDev::open(&log).map_err(|e| format!("{}: {e}", log.display()))?;
            let mut l = Log::open(dev).map_err(|e| format!("{}: {e}", log.display()))?;
            let entries = l.entries().map_err(|e| format!("{}: {e}", log.display()))?;
            let out = io::stdout();
            let mut out = BufWriter::new(out.lock());
            for e in &entries {
                let r = match &e.mark {
                    Some(m) => writeln!(
                        out,
                        "{} {} {} {} {m}",
                        e.index,
                        e.kind(),
                        e.sector,
                        e.nr_sectors
                    ),
                    None => writeln!(
                        out,
                        "{} {} {} {}",
                        e.index,
                        e.kind(),
                        e.sector,
                        e.nr_sectors
                    ),
                };
                r.map_err(|e| format!("stdout: {e}"))?;
            }
            out.flush().map_err(|e| format!("stdout: {e}"))
        }
        Cmd::Replay {
            log,
            target,
            to,
            from,
        } => {
            let dev = DirectDev::open(&log).map_err(|e| format!("{}: {e}", log.display()))?;
            let mut l = Log::open(dev).map_err(|e| format!("{}: {e}", log.display()))?;
            let entries = l.entries().map_err(|e| format!("{}: {e}", log.display()))?;
            let n = entries.len() as u64;
            if from > to || to >= n {
                return Err(format!(
                    "{}: has entries 0..={}; cannot replay {from}..={to}",
                    log.display(),
                    n.saturating_sub(1)
                ));
            }
            let file = OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(|e| format!("{}: {e}", target.display()))?;
            let mut t = Target(file);
            // Both bounds are below n, which came from a Vec's length.
            let range = &entries[from as usize..=to as usize];
            l.replay(range, &mut t).map_err(|e| {
                format!("replaying {} onto {}: {e}", log.display(), target.display())
            })?;
            t.0.sync_all()
                .map_err(|e| format!("{}: fsync: {e}", target.display()))
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dmc-replay-log: {e}");
            ExitCode::FAILURE
        }
    }
}

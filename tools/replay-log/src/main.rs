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
//!
//! A volatile write cache may lose any of the writes and discards completed
//! since the last flush (see the library's doc): the crash states after a
//! durability point P (a flush or FUA entry, or `-`, the start of the log) are
//! entries 0..=P plus any subset of P's window, the writes and discards after
//! P and before the next flush or FUA entry.
//!
//!   dmc-replay-log windows <log>                   one line per window: the one
//!                                                  after the start of the log, then
//!                                                  one per flush or FUA entry, in
//!                                                  log order, empty ones included:
//!                                                  <point> <first> <last> <count>
//!       <point> is the entry's index, or `-` for the start of the log; <first>
//!       and <last> are the indices of the window's first and last write or
//!       discard (`-` `-` if <count> is 0); <count> is how many it has. Marks
//!       and empty entries in the window are not counted.
//!   dmc-replay-log states <log> --point P [--max-exhaustive K] [--random N] [--seed S]
//!                                                  one line per chosen subset of
//!                                                  P's window: <id> <entries>
//!       P is a flush or FUA entry's index, or `-`. If the window has at most K
//!       entries (default 8, at most 20), every subset: 2^count lines; else the
//!       empty subset, up to N (default 16) distinct random ones (seeded by S,
//!       default 0, and P), then the full one. <id> counts lines from 0 (the
//!       empty subset is 0, the full one last); <entries> are the subset's
//!       indices in log order, comma-separated, `-` for the empty subset.
//!   dmc-replay-log replay <log> <target> [--to N [--from M]] --with <entries> [--reverse]
//!                                                  apply M..=N, then <entries>
//!       <entries> as `states` prints them (`-`: none); each must be a write or
//!       discard after N and before the first flush or FUA entry after N (the
//!       window after N; N's own if N is a point). They are applied in log
//!       order, or in reverse with --reverse. With --with, --from may be N+1 (a
//!       target that already holds 0..=N gets only <entries>), and --to may be
//!       left out: the window after the start of the log, nothing before it.
//!   Every entry to apply is checked before TARGET is written: one that ends past
//!   the end of TARGET (a regular file does not grow: it stands in for a device),
//!   or whose data runs past the end of the log, is refused, naming the entry.
//!   Data is copied in pieces of at most 1 MiB.
//!   Every replay fsyncs TARGET. Errors go to stderr, prefixed `dmc-replay-log: `;
//!   the exit code is 1, or 2 for a command line clap refuses.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dmc_replay_log::{
    choose, pick_subsets, window_at_point, window_seed, windows, Entry, Log, ReadAt, WriteAt,
    MAX_EXHAUSTIVE,
};

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
    /// Apply entries FROM..=TO of the log to TARGET, then those of --with,
    /// then fsync it.
    Replay {
        /// The log device.
        log: PathBuf,
        /// The device (or file) to replay onto.
        target: PathBuf,
        /// The last entry to apply (may be left out with --with: none).
        #[arg(long, required_unless_present = "with")]
        to: Option<u64>,
        /// The first entry to apply (entries before it are already on TARGET;
        /// with --with it may be TO+1: none).
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Then apply these writes and discards of the window after TO (after
        /// the start of the log without --to): indices, comma-separated, as
        /// `states` prints them; `-` for none.
        #[arg(long, value_name = "I,J,K", value_parser = parse_entries)]
        with: Option<Entries>,
        /// Apply the --with entries in reverse log order.
        #[arg(long, requires = "with")]
        reverse: bool,
    },
    /// One line per crash window: the one after the start of the log, then one
    /// after each flush or FUA entry: "<point> <first> <last> <count>", the
    /// point's index (`-`: the start), the indices of the window's first and
    /// last write or discard (`-` `-` if none), and how many it has.
    Windows {
        /// The log device.
        log: PathBuf,
    },
    /// One line per chosen subset of the window after POINT: "<id> <entries>",
    /// the entries comma-separated in log order, `-` for the empty subset.
    States {
        /// The log device.
        log: PathBuf,
        /// A flush or FUA entry's index, or `-` for the start of the log.
        #[arg(long, value_parser = parse_point)]
        point: Point,
        /// List every subset of a window with at most this many entries (at
        /// most 20).
        #[arg(long, default_value_t = 8,
              value_parser = clap::value_parser!(u32).range(0..=MAX_EXHAUSTIVE as i64))]
        max_exhaustive: u32,
        /// Else the empty one, up to this many random others, and the full one.
        #[arg(long, default_value_t = 16,
              value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
        random: u32,
        /// The random subsets' seed (mixed with the point's index).
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

/// A durability point on the command line: an entry's index, or `-`.
#[derive(Clone, Copy)]
struct Point(Option<u64>);

fn parse_point(s: &str) -> Result<Point, String> {
    if s == "-" {
        return Ok(Point(None));
    }
    s.parse()
        .map(|p| Point(Some(p)))
        .map_err(|_| format!("`{s}` is not an entry index or `-` (the start of the log)"))
}

/// Entry indices on the command line: `i,j,k`, or `-` for none.
#[derive(Clone)]
struct Entries(Vec<u64>);

fn parse_entries(s: &str) -> Result<Entries, String> {
    if s == "-" {
        return Ok(Entries(Vec::new()));
    }
    s.split(',')
        .map(|i| {
            i.parse().map_err(|_| {
                format!("`{i}` is not an entry index (give i,j,k as `states` prints them, or `-`)")
            })
        })
        .collect::<Result<_, _>>()
        .map(Entries)
}

/// `-` for a missing index.
fn or_dash(i: Option<u64>) -> String {
    i.map_or_else(|| "-".to_string(), |i| i.to_string())
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

    fn byte_size(&mut self) -> io::Result<u64> {
        size_of(&self.file)
    }
}

/// The size of a regular file or a block device (whose metadata says 0).
fn size_of(mut file: &File) -> io::Result<u64> {
    file.seek(SeekFrom::End(0))
}

/// The replay target, written through the page cache and fsynced at the end.
struct Target(File);

impl WriteAt for Target {
    fn write_all_at(&mut self, buf: &[u8], off: u64) -> io::Result<()> {
        self.0.write_all_at(buf, off)
    }

    fn byte_size(&mut self) -> io::Result<u64> {
        size_of(&self.0)
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
            with,
            reverse,
        } => {
            let (mut l, entries) = open_log(&log)?;
            let n = entries.len() as u64;
            // Entries from..=to, then the chosen ones, all checked before TARGET
            // is opened.
            let range = match to {
                Some(to) if from <= to && to < n => &entries[from as usize..=to as usize],
                // With --with, FROM may be TO+1: nothing from the range.
                Some(to) if with.is_some() && to < n && Some(from) == to.checked_add(1) => &[],
                Some(to) => {
                    return Err(format!(
                        "{}: has entries 0..={}; cannot replay {from}..={to}",
                        log.display(),
                        n.saturating_sub(1)
                    ))
                }
                None if from == 0 => &[],
                None => {
                    return Err(format!(
                        "--from {from} without --to: give --to, or leave --from out \
                         to apply only --with after the start of the log"
                    ))
                }
            };
            let chosen: Vec<Entry> = match &with {
                Some(Entries(with)) => choose(&entries, to, with, reverse)
                    .map_err(|e| format!("{}: --with: {e}", log.display()))?
                    .into_iter()
                    // choose() checked every index against entries.
                    .filter_map(|i| entries.get(i as usize).cloned())
                    .collect(),
                None => Vec::new(),
            };
            let file = OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(|e| format!("{}: {e}", target.display()))?;
            let mut t = Target(file);
            for part in [range, &chosen[..]] {
                l.replay(part, &mut t).map_err(|e| {
                    format!("replaying {} onto {}: {e}", log.display(), target.display())
                })?;
            }
            t.0.sync_all()
                .map_err(|e| format!("{}: fsync: {e}", target.display()))
        }
        Cmd::Windows { log } => {
            let (_, entries) = open_log(&log)?;
            let out = io::stdout();
            let mut out = BufWriter::new(out.lock());
            for w in windows(&entries) {
                writeln!(
                    out,
                    "{} {} {} {}",
                    or_dash(w.point),
                    or_dash(w.entries.first().copied()),
                    or_dash(w.entries.last().copied()),
                    w.entries.len()
                )
                .map_err(|e| format!("stdout: {e}"))?;
            }
            out.flush().map_err(|e| format!("stdout: {e}"))
        }
        Cmd::States {
            log,
            point: Point(point),
            max_exhaustive,
            random,
            seed,
        } => {
            let (_, entries) = open_log(&log)?;
            let w = window_at_point(&entries, point)
                .map_err(|e| format!("{}: --point: {e}", log.display()))?;
            let subsets = pick_subsets(
                &w.entries,
                max_exhaustive,
                random as usize,
                window_seed(seed, point),
            );
            let out = io::stdout();
            let mut out = BufWriter::new(out.lock());
            for (id, sub) in subsets.iter().enumerate() {
                let list = if sub.is_empty() {
                    "-".to_string()
                } else {
                    sub.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
                };
                writeln!(out, "{id} {list}").map_err(|e| format!("stdout: {e}"))?;
            }
            out.flush().map_err(|e| format!("stdout: {e}"))
        }
    }
}

/// The log at `path` and its entries; errors name the path.
fn open_log(path: &Path) -> Result<(Log<DirectDev>, Vec<Entry>), String> {
    let dev = DirectDev::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut l = Log::open(dev).map_err(|e| format!("{}: {e}", path.display()))?;
    let entries = l
        .entries()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((l, entries))
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

// SPDX-License-Identifier: GPL-2.0
//! dmc-write: one write the crash-consistency selftests need and busybox's dd cannot make:
//! the bytes of a file, written to a block device at a byte offset in one `pwrite` with
//! `O_DIRECT | O_DSYNC`, so that the write is durable once the call returns (the block layer
//! sends it as a FUA write, or as a write then a flush).
//!
//!   dmc-write <file> <device> --offset <bytes>
//!
//! The file's length and the offset must be multiples of 4096 (O_DIRECT). Exit 0 when the
//! write returned, 1 with the reason on stderr otherwise.

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// `O_DIRECT` and `O_DSYNC` on x86_64 and most other Linux architectures.
const O_DIRECT: i32 = 0o40000;
const O_DSYNC: i32 = 0o10000;
const ALIGN: usize = 4096;

#[derive(Parser)]
#[command(
    version,
    about = "Write a file to a device with O_DIRECT|O_DSYNC, in one write"
)]
struct Cli {
    /// The data to write (a multiple of 4096 bytes).
    file: PathBuf,
    /// The block device to write to.
    device: PathBuf,
    /// Where on the device, in bytes (a multiple of 4096).
    #[arg(long)]
    offset: u64,
}

fn run(cli: &Cli) -> Result<(), String> {
    let data = std::fs::read(&cli.file).map_err(|e| format!("{}: {e}", cli.file.display()))?;
    if data.is_empty() || data.len() % ALIGN != 0 || cli.offset % ALIGN as u64 != 0 {
        return Err(format!(
            "{} has {} bytes and the offset is {}: both must be multiples of {ALIGN} (and the data not empty)",
            cli.file.display(),
            data.len(),
            cli.offset
        ));
    }
    // An O_DIRECT buffer must be aligned in memory too: place the data at an aligned start
    // inside a buffer one alignment longer.
    let mut buf = vec![0u8; data.len() + ALIGN];
    let start = buf.as_ptr().align_offset(ALIGN);
    let aligned = &mut buf[start..start + data.len()];
    aligned.copy_from_slice(&data);
    let dev = OpenOptions::new()
        .write(true)
        .custom_flags(O_DIRECT | O_DSYNC)
        .open(&cli.device)
        .map_err(|e| format!("{}: {e}", cli.device.display()))?;
    let n = dev
        .write_at(aligned, cli.offset)
        .map_err(|e| format!("{}: write at {}: {e}", cli.device.display(), cli.offset))?;
    if n != data.len() {
        return Err(format!(
            "{}: short write at {}: {n} of {} bytes",
            cli.device.display(),
            cli.offset,
            data.len()
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dmc-write: {e}");
            ExitCode::FAILURE
        }
    }
}

// SPDX-License-Identifier: GPL-2.0
//! What the command-line tools share: parsing their arguments (exit 0 for
//! --help and --version, 2 for a usage error, as thin-provisioning-tools'),
//! sizes with units, and writing to standard output without panicking.

use std::fs::File;
use std::path::Path;
use std::process::ExitCode;

/// The tool's arguments, or the exit code after clap printed help, a version or an error.
pub fn parse<T: clap::Parser>() -> Result<T, ExitCode> {
    T::try_parse().map_err(|e| {
        let _ = e.print();
        ExitCode::from(if e.use_stderr() { 2 } else { 0 })
    })
}

/// The exit status after standard output's reader went away (a broken pipe): 128 +
/// SIGPIPE, what a shell reports for a tool that the signal ends (as it ends `yes | head`
/// and thin-provisioning-tools' C++ tools). Nothing is printed.
pub const BROKEN_PIPE: u8 = 141;

/// Ends `tool` after a write to standard output failed: quietly with [`BROKEN_PIPE`] when
/// the reader went away, else saying what failed, with status 2.
pub fn stdout_failed(tool: &str, e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(i32::from(BROKEN_PIPE));
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "{tool}: cannot write to standard output: {e} (give it room, or redirect it elsewhere)"
    );
    std::process::exit(2)
}

/// Writes `text` to standard output and flushes it; a failure ends `tool` as
/// [`stdout_failed`] says (`print!` would panic).
pub fn print(tool: &str, text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        stdout_failed(tool, &e);
    }
}

/// What a file of type `t` is, for a refusal.
fn kind_of(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Opens `path` to read it, if it is a regular file or a block device. Anything else is
/// refused before it is opened (a FIFO would block the open, a directory or a character
/// device holds no image), with status 2. `what` says what to give instead.
pub fn open_input(tool: &str, path: &Path, what: &str) -> Result<File, ExitCode> {
    use std::os::unix::fs::FileTypeExt;
    let refuse = |why: String| {
        eprintln!("{tool}: {why} ({what})");
        Err(ExitCode::from(2))
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() || m.file_type().is_block_device() => {}
        Ok(m) => {
            return refuse(format!(
                "{}: is {}, not a regular file or a block device",
                path.display(),
                kind_of(m.file_type())
            ))
        }
        Err(e) => return refuse(format!("cannot open {}: {e}", path.display())),
    }
    File::open(path).or_else(|e| refuse(format!("cannot open {}: {e}", path.display())))
}

/// Refuses (status 2) an input whose first block is not a clone's metadata, damaged or
/// not, but something else: XML, or another device-mapper target's metadata.
pub fn refuse_foreign(tool: &str, path: &Path, file: &File) -> Result<(), ExitCode> {
    use std::os::unix::fs::FileExt;
    let mut head = vec![0u8; crate::BLOCK_SIZE];
    let mut n = 0;
    while n < head.len() {
        match file.read_at(&mut head[n..], n as u64) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    if let Some(why) = crate::read::foreign(&head[..n]) {
        eprintln!("{tool}: {}: {why}", path.display());
        return Err(ExitCode::from(2));
    }
    Ok(())
}

/// Whether `a` and `b` are the same file or device (its device and inode, or for device
/// nodes the device they name).
pub fn same_file(a: &File, b: &File) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    match (a.metadata(), b.metadata()) {
        (Ok(a), Ok(b)) => {
            let dev = |m: &std::fs::Metadata| {
                let t = m.file_type();
                t.is_block_device() || t.is_char_device()
            };
            (a.dev(), a.ino()) == (b.dev(), b.ino()) || (dev(&a) && dev(&b) && a.rdev() == b.rdev())
        }
        _ => false,
    }
}

/// A size: 512-byte sectors, or with a unit (s, k, m, g, t: sectors, KiB to TiB).
pub fn sectors(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_lowercase() {
                's' => 0,
                'k' => 1,
                'm' => 11,
                'g' => 21,
                't' => 31,
                _ => return Err(format!("'{s}': unknown unit '{c}' (s, k, m, g or t)")),
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a size"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("'{s}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_units() {
        assert_eq!(sectors("8"), Ok(8));
        assert_eq!(sectors("4k"), Ok(8));
        assert_eq!(sectors("1M"), Ok(2048));
        assert_eq!(sectors("1t"), Ok(1 << 31));
        assert_eq!(sectors("16s"), Ok(16));
        assert!(sectors("1x").unwrap_err().contains("unknown unit"));
        assert!(sectors("k").unwrap_err().contains("not a size"));
        assert!(sectors("99999999999999999999t").is_err());
    }
}

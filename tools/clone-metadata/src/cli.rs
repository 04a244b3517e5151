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

/// Writes `text` and a newline to standard error, the tools' channel for everything but
/// their data output. A failure (a full or closed standard error) is ignored: there is no
/// other place to say it, and the exit status still tells (`eprintln!` would panic).
pub fn say(text: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{text}");
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

/// The flags [`open_metadata`] adds for a block device (`is_block`) or a regular file.
fn open_flags(is_block: bool) -> i32 {
    if is_block {
        libc::O_EXCL
    } else {
        0
    }
}

/// Opens `path`, a regular file or a block device, to read, and with `write` to write too.
/// A block device is opened exclusively (`O_EXCL`): Linux refuses that (EBUSY) while the
/// kernel holds the device (a device-mapper table, such as a live clone's, a mounted file
/// system, md), and nothing can claim the device while the tool has it. A live clone's
/// metadata is not consistent on disk, and writing it under the kernel corrupts it.
/// Regular files are opened as usual (image files are nobody's to hold).
pub fn open_metadata(path: &Path, write: bool) -> std::io::Result<File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let is_block = std::fs::metadata(path)?.file_type().is_block_device();
    std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(open_flags(is_block))
        .open(path)
}

/// What to say when [`open_metadata`] failed on `path` (`None` when it is not in use: say
/// the error itself).
pub fn in_use(path: &Path, e: &std::io::Error) -> Option<String> {
    (e.raw_os_error() == Some(libc::EBUSY)).then(|| {
        format!(
            "{} is in use: the kernel holds it (is the clone still active? remove it first, with `dmsetup remove <clone>`; a suspended clone still holds it)",
            path.display()
        )
    })
}

/// Checks that `path` is a regular file or a block device, then opens it with
/// [`open_metadata`]. Anything else is refused before it is opened (a FIFO would block the
/// open, a directory or a character device holds no image), with status 2; so is a device
/// in use. `what` says what to give instead.
fn open_checked(tool: &str, path: &Path, write: bool, what: &str) -> Result<File, ExitCode> {
    use std::os::unix::fs::FileTypeExt;
    let refuse = |why: String| {
        say(format_args!("{tool}: {why}"));
        Err(ExitCode::from(2))
    };
    let for_writing = if write { " for writing" } else { "" };
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() || m.file_type().is_block_device() => {}
        Ok(m) => {
            return refuse(format!(
                "{}: is {}, not a regular file or a block device ({what})",
                path.display(),
                kind_of(m.file_type())
            ))
        }
        Err(e) => {
            return refuse(format!(
                "cannot open {}{for_writing}: {e} ({what})",
                path.display()
            ))
        }
    }
    open_metadata(path, write).or_else(|e| {
        refuse(in_use(path, &e).unwrap_or_else(|| {
            format!("cannot open {}{for_writing}: {e} ({what})", path.display())
        }))
    })
}

/// Opens `path` to read it, if it is a regular file or a block device that nothing holds
/// (see [`open_metadata`]); refused with status 2 otherwise. `what` says what to give
/// instead.
pub fn open_input(tool: &str, path: &Path, what: &str) -> Result<File, ExitCode> {
    open_checked(tool, path, false, what)
}

/// Opens `path`, which must exist, to write metadata on it: as [`open_input`], for
/// writing.
pub fn open_output(tool: &str, path: &Path, what: &str) -> Result<File, ExitCode> {
    open_checked(tool, path, true, what)
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
        say(format_args!("{tool}: {}: {why}", path.display()));
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

/// What regions of unknown state become: clone_repair's and clone_restore's `--unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Unknown {
    Copied,
    Uncopied,
}

impl Unknown {
    /// The option's word for it.
    pub fn word(self) -> &'static str {
        match self {
            Unknown::Copied => "copied",
            Unknown::Uncopied => "uncopied",
        }
    }
}

/// The first 8 runs `(first, count)` as `a-b` or `a`, then how many more.
pub fn runs_text(runs: &[(u64, u64)]) -> String {
    let mut s: Vec<String> = runs
        .iter()
        .take(8)
        .map(|&(f, n)| {
            if n == 1 {
                format!("{f}")
            } else {
                format!("{f}-{}", f.saturating_add(n - 1))
            }
        })
        .collect();
    if runs.len() > 8 {
        s.push(format!("and {} more runs", runs.len() - 8));
    }
    s.join(", ")
}

/// Why neither choice for regions of unknown state is safe, and how to choose.
pub const UNKNOWN_CHOICE: &str = "Marking them copied may expose what the destination held before; marking them uncopied may hide writes made since (they read from the source again). Choose with --unknown copied or --unknown uncopied.";

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

    #[test]
    fn block_devices_are_opened_exclusively_regular_files_as_usual() {
        assert_eq!(open_flags(true) & libc::O_EXCL, libc::O_EXCL);
        assert_eq!(open_flags(false), 0);
        let dir = std::env::temp_dir().join(format!("clone-metadata-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("meta.img");
        std::fs::write(&path, b"before").unwrap();
        // A regular file: opened to read and to write, twice at once (no claim on it).
        let r = open_metadata(&path, false).unwrap();
        let w = open_metadata(&path, true).unwrap();
        use std::os::unix::fs::FileExt;
        w.write_all_at(b"after!", 0).unwrap();
        let mut buf = [0u8; 6];
        r.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"after!");
        assert!(open_metadata(&path, false)
            .unwrap()
            .write_all_at(b"x", 0)
            .is_err());
        // What a device held by the kernel gives, and what is said of it.
        let busy = std::io::Error::from_raw_os_error(libc::EBUSY);
        let dev = Path::new("/dev/mapper/vm1-meta");
        assert_eq!(
            in_use(dev, &busy).unwrap(),
            "/dev/mapper/vm1-meta is in use: the kernel holds it (is the clone still active? remove it first, with `dmsetup remove <clone>`; a suspended clone still holds it)"
        );
        let missing = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(in_use(dev, &missing), None);
        // The tools' open says it, with status 2.
        assert!(open_output("t", &dir.join("none"), "x").is_err());
        assert!(open_input("t", &path, "x").is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn runs_in_words() {
        assert_eq!(runs_text(&[(0, 1), (5, 3)]), "0, 5-7");
        let many: Vec<(u64, u64)> = (0..10).map(|i| (2 * i, 1)).collect();
        assert_eq!(
            runs_text(&many),
            "0, 2, 4, 6, 8, 10, 12, 14, and 2 more runs"
        );
    }
}

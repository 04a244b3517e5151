// SPDX-License-Identifier: GPL-2.0
//! The log that the kernel's `log-writes` target writes (drivers/md/dm-log-writes.c),
//! read and replayed.
//!
//! The log device holds a super block in its first logical block and, after it,
//! one entry per logged bio in the order the target made them durable: a header
//! block (`sector`, `nr_sectors`, `flags`, `data_len`, all little-endian; a mark
//! keeps its text in the rest of the header block), then, for a write, its data.
//! Sectors and lengths in the log count the data device's logical blocks
//! (`sectorsize` in the super block); this module speaks 512-byte sectors and
//! bytes to its callers.
//!
//! The target logs a write only when a later flush completes (or at once for a
//! FUA write), so replaying the log up to a FLUSH or FUA entry gives the device
//! as a power cut at that moment could have left it.

use std::fmt;
use std::io;

/// `WRITE_LOG_MAGIC`.
pub const MAGIC: u64 = 0x006a_7366_7773_6872;
/// `WRITE_LOG_VERSION`.
pub const VERSION: u64 = 1;

/// Entry flags (`LOG_*_FLAG`).
pub mod flag {
    /// The entry is a flush (REQ_PREFLUSH).
    pub const FLUSH: u64 = 1 << 0;
    /// The write was FUA.
    pub const FUA: u64 = 1 << 1;
    /// A discard: the range, no data.
    pub const DISCARD: u64 = 1 << 2;
    /// A mark made by `dmsetup message <log> 0 mark <text>`.
    pub const MARK: u64 = 1 << 3;
    /// The write was REQ_META.
    pub const METADATA: u64 = 1 << 4;
}

/// Reads at byte offsets of a log (a block device or, in tests, memory).
pub trait ReadAt {
    /// Fill `buf` from byte offset `off`; a short device is an error.
    fn read_exact_at(&mut self, buf: &mut [u8], off: u64) -> io::Result<()>;
}

/// Writes at byte offsets of the device a log is replayed onto.
pub trait WriteAt {
    /// Write all of `buf` at byte offset `off`.
    fn write_all_at(&mut self, buf: &[u8], off: u64) -> io::Result<()>;
}

impl ReadAt for &[u8] {
    fn read_exact_at(&mut self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let start = usize::try_from(off).map_err(|_| short())?;
        let end = start.checked_add(buf.len()).ok_or_else(short)?;
        let src = self.get(start..end).ok_or_else(short)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl WriteAt for Vec<u8> {
    fn write_all_at(&mut self, buf: &[u8], off: u64) -> io::Result<()> {
        let start = usize::try_from(off).map_err(|_| short())?;
        let end = start.checked_add(buf.len()).ok_or_else(short)?;
        if self.len() < end {
            self.resize(end, 0);
        }
        self[start..end].copy_from_slice(buf);
        Ok(())
    }
}

fn short() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "the log ends inside an entry")
}

/// What is wrong with a log.
#[derive(Debug)]
pub enum Error {
    /// Reading the log or writing the replay failed.
    Io(io::Error),
    /// The first block is not a log-writes super block.
    BadMagic(u64),
    /// A log version this tool does not know.
    BadVersion(u64),
    /// The super block's logical block size is not a power of two from 512 to 64 KiB.
    BadSectorSize(u32),
    /// An entry's header does not make sense (its index and why).
    BadEntry(u64, &'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::BadMagic(m) => write!(
                f,
                "not a log-writes log (magic {m:#x}, expected {MAGIC:#x}): \
                 give the log device of a log-writes target"
            ),
            Error::BadVersion(v) => write!(f, "log version {v}, this tool reads version {VERSION}"),
            Error::BadSectorSize(s) => {
                write!(f, "impossible logical block size {s} in the super block")
            }
            Error::BadEntry(i, why) => write!(f, "entry {i}: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// The super block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Super {
    /// Entries the log holds (as of the last FUA, mark or clean removal).
    pub nr_entries: u64,
    /// The data device's logical block size, in bytes.
    pub sectorsize: u32,
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log, from 0.
    pub index: u64,
    /// First 512-byte sector on the data device.
    pub sector: u64,
    /// Length in 512-byte sectors (0 for a flush without data, a mark).
    pub nr_sectors: u64,
    /// `flag::*` bits.
    pub flags: u64,
    /// A mark's text.
    pub mark: Option<String>,
    /// Byte offset of the write's data in the log (meaningless without data).
    data_offset: u64,
}

impl Entry {
    /// Whether replaying this entry writes data.
    pub fn has_data(&self) -> bool {
        self.flags & (flag::DISCARD | flag::MARK) == 0 && self.nr_sectors > 0
    }

    /// The entry's kind and flags, comma-separated: "write", "flush", "flush,fua",
    /// "discard", "mark", with ",meta" for REQ_META writes.
    pub fn kind(&self) -> String {
        let mut k = Vec::new();
        if self.flags & flag::MARK != 0 {
            k.push("mark");
        } else if self.flags & flag::DISCARD != 0 {
            k.push("discard");
        } else if self.flags & flag::FLUSH != 0 {
            k.push("flush");
        } else {
            k.push("write");
        }
        if self.flags & flag::FUA != 0 {
            k.push("fua");
        }
        if self.flags & flag::METADATA != 0 {
            k.push("meta");
        }
        k.join(",")
    }

    /// Whether a power cut right after this entry is a state to check: the
    /// entry made something durable (a flush or a FUA write).
    pub fn is_durability_point(&self) -> bool {
        self.flags & (flag::FLUSH | flag::FUA) != 0
    }
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// A log opened for reading: its super block and a cursor over its entries.
pub struct Log<R> {
    dev: R,
    sup: Super,
    /// Sectorsize expressed as a shift from 512-byte sectors.
    shift: u32,
}

impl<R: ReadAt> Log<R> {
    /// Read and check the super block.
    pub fn open(mut dev: R) -> Result<Self, Error> {
        let mut b = [0u8; 512];
        dev.read_exact_at(&mut b, 0)?;
        let magic = le64(&b, 0);
        if magic != MAGIC {
            return Err(Error::BadMagic(magic));
        }
        let version = le64(&b, 8);
        if version != VERSION {
            return Err(Error::BadVersion(version));
        }
        let nr_entries = le64(&b, 16);
        let sectorsize = u32::from_le_bytes([b[24], b[25], b[26], b[27]]);
        if !sectorsize.is_power_of_two() || !(512..=65536).contains(&sectorsize) {
            return Err(Error::BadSectorSize(sectorsize));
        }
        let shift = (sectorsize / 512).trailing_zeros();
        Ok(Log {
            dev,
            sup: Super {
                nr_entries,
                sectorsize,
            },
            shift,
        })
    }

    /// The super block.
    pub fn super_block(&self) -> Super {
        self.sup
    }

    /// Every entry, in log order (reads each header once).
    pub fn entries(&mut self) -> Result<Vec<Entry>, Error> {
        let ss = u64::from(self.sup.sectorsize);
        let mut pos = ss;
        let mut hdr = vec![0u8; self.sup.sectorsize as usize];
        let mut out = Vec::new();
        for index in 0..self.sup.nr_entries {
            self.dev.read_exact_at(&mut hdr, pos)?;
            let dev_sector = le64(&hdr, 0);
            let dev_sectors = le64(&hdr, 8);
            let flags = le64(&hdr, 16);
            let data_len = le64(&hdr, 24);
            let sector = dev_sector
                .checked_shl(self.shift)
                .filter(|s| s >> self.shift == dev_sector)
                .ok_or(Error::BadEntry(index, "sector out of range"))?;
            let nr_sectors = dev_sectors
                .checked_shl(self.shift)
                .filter(|s| s >> self.shift == dev_sectors)
                .ok_or(Error::BadEntry(index, "length out of range"))?;
            let mark = if flags & flag::MARK != 0 {
                let room = hdr.len() - 32;
                let n = usize::try_from(data_len)
                    .ok()
                    .filter(|&n| n <= room)
                    .ok_or(Error::BadEntry(index, "mark longer than its block"))?;
                Some(String::from_utf8_lossy(&hdr[32..32 + n]).into_owned())
            } else {
                None
            };
            let entry = Entry {
                index,
                sector,
                nr_sectors,
                flags,
                mark,
                data_offset: pos + ss,
            };
            // The header block, then the data of a write (a discard has none).
            let data = if entry.flags & flag::DISCARD == 0 {
                nr_sectors
                    .checked_mul(512)
                    .ok_or(Error::BadEntry(index, "length out of range"))?
            } else {
                0
            };
            pos = pos
                .checked_add(ss)
                .and_then(|p| p.checked_add(data))
                .ok_or(Error::BadEntry(index, "runs past the end of any device"))?;
            out.push(entry);
        }
        Ok(out)
    }

    /// Apply `entries` (from [`Log::entries`], in order) to `target`: writes
    /// get their data, discards become zeros (what a discard leaves on the RAM
    /// disks the tests use), flushes and marks change nothing.
    pub fn replay<W: WriteAt>(&mut self, entries: &[Entry], target: &mut W) -> Result<u64, Error> {
        let mut written = 0u64;
        let mut buf = Vec::new();
        for e in entries {
            if e.flags & flag::MARK != 0 || e.nr_sectors == 0 {
                continue;
            }
            let len = usize::try_from(e.nr_sectors * 512)
                .map_err(|_| Error::BadEntry(e.index, "length out of range"))?;
            buf.resize(len, 0);
            if e.flags & flag::DISCARD != 0 {
                buf.fill(0);
            } else {
                self.dev.read_exact_at(&mut buf, e.data_offset)?;
            }
            let at = e
                .sector
                .checked_mul(512)
                .ok_or(Error::BadEntry(e.index, "sector out of range"))?;
            target.write_all_at(&buf, at)?;
            written += e.nr_sectors;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log as the kernel writes it: super block, then header + data per entry.
    struct Builder {
        ss: usize,
        log: Vec<u8>,
        n: u64,
    }

    impl Builder {
        fn new(ss: usize) -> Self {
            Builder {
                ss,
                log: vec![0; ss],
                n: 0,
            }
        }

        fn push(&mut self, sector: u64, flags: u64, data: &[u8], mark: &str) {
            let mut h = vec![0u8; self.ss];
            let scale = (self.ss / 512) as u64;
            h[0..8].copy_from_slice(&(sector / scale).to_le_bytes());
            let dev_sectors = (data.len() / self.ss) as u64;
            h[8..16].copy_from_slice(&dev_sectors.to_le_bytes());
            h[16..24].copy_from_slice(&flags.to_le_bytes());
            let dl = if mark.is_empty() {
                data.len()
            } else {
                mark.len()
            };
            h[24..32].copy_from_slice(&(dl as u64).to_le_bytes());
            h[32..32 + mark.len()].copy_from_slice(mark.as_bytes());
            self.log.extend_from_slice(&h);
            if flags & flag::DISCARD == 0 {
                self.log.extend_from_slice(data);
            }
            self.n += 1;
        }

        fn discard(&mut self, sector: u64, sectors: u64) {
            let mut h = vec![0u8; self.ss];
            let scale = (self.ss / 512) as u64;
            h[0..8].copy_from_slice(&(sector / scale).to_le_bytes());
            h[8..16].copy_from_slice(&(sectors / scale).to_le_bytes());
            h[16..24].copy_from_slice(&flag::DISCARD.to_le_bytes());
            self.log.extend_from_slice(&h);
            self.n += 1;
        }

        fn finish(mut self) -> Vec<u8> {
            self.log[0..8].copy_from_slice(&MAGIC.to_le_bytes());
            self.log[8..16].copy_from_slice(&VERSION.to_le_bytes());
            self.log[16..24].copy_from_slice(&self.n.to_le_bytes());
            self.log[24..28].copy_from_slice(&(self.ss as u32).to_le_bytes());
            self.log
        }
    }

    fn sample(ss: usize) -> Vec<u8> {
        let mut b = Builder::new(ss);
        b.push(8, 0, &vec![0xaa; 2 * ss], "");
        b.push(0, flag::FLUSH, &[], "");
        b.push(0, flag::MARK, &[], "fsync-1");
        b.discard(8, (ss / 512) as u64);
        b.push(24, flag::FUA | flag::METADATA, &vec![0x55; ss], "");
        b.finish()
    }

    #[test]
    fn lists_entries_with_kinds_marks_and_512_byte_sectors() {
        for ss in [512, 4096] {
            let log = sample(ss);
            let mut l = Log::open(&log[..]).unwrap();
            let e = l.entries().unwrap();
            let kinds: Vec<_> = e.iter().map(|e| e.kind()).collect();
            assert_eq!(
                kinds,
                ["write", "flush", "mark", "discard", "write,fua,meta"]
            );
            assert_eq!(e[0].sector, 8);
            assert_eq!(e[0].nr_sectors, 2 * ss as u64 / 512);
            assert_eq!(e[2].mark.as_deref(), Some("fsync-1"));
            assert!(e[1].is_durability_point() && e[4].is_durability_point());
            assert!(!e[0].is_durability_point() && !e[2].is_durability_point());
        }
    }

    #[test]
    fn replay_up_to_an_entry_applies_only_what_came_before() {
        let ss = 512;
        let log = sample(ss);
        let mut l = Log::open(&log[..]).unwrap();
        let e = l.entries().unwrap();
        let mut dev = vec![0x11u8; 16 * 1024];
        l.replay(&e[..2], &mut dev).unwrap();
        assert!(dev[8 * 512..9 * 512].iter().all(|&b| b == 0xaa));
        assert!(dev[24 * 512..25 * 512].iter().all(|&b| b == 0x11));
        // The rest: the discard zeroes sector 8, the FUA write lands at 24.
        l.replay(&e[2..], &mut dev).unwrap();
        assert!(dev[8 * 512..9 * 512].iter().all(|&b| b == 0));
        assert!(dev[9 * 512..10 * 512].iter().all(|&b| b == 0xaa));
        assert!(dev[24 * 512..25 * 512].iter().all(|&b| b == 0x55));
        assert!(dev[..8 * 512].iter().all(|&b| b == 0x11));
    }

    #[test]
    fn refuses_what_is_not_a_log() {
        let zeros = vec![0u8; 4096];
        assert!(matches!(Log::open(&zeros[..]), Err(Error::BadMagic(0))));
        let mut log = sample(512);
        log[8] = 2;
        assert!(matches!(Log::open(&log[..]), Err(Error::BadVersion(2))));
        let mut log = sample(512);
        log[24..28].copy_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(
            Log::open(&log[..]),
            Err(Error::BadSectorSize(1000))
        ));
    }

    #[test]
    fn a_truncated_log_is_an_error_not_a_panic() {
        let log = sample(512);
        let cut = &log[..log.len() - 100];
        let mut l = Log::open(cut).unwrap();
        // Headers are all there, the last write's data is not.
        let e = l.entries().unwrap();
        let mut dev = Vec::new();
        assert!(matches!(l.replay(&e, &mut dev), Err(Error::Io(_))));
        let cut = &log[..512 + 100];
        let mut l = Log::open(cut).unwrap();
        assert!(l.entries().is_err());
    }
}

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
//!
//! A disk with a volatile write cache may lose any of the writes completed
//! since the last flush, in any combination, so a power cut after durability
//! point P (a FLUSH or FUA entry, or the start of the log) and before the next
//! one, Q, may leave entries `0..=P` plus any subset of the writes and
//! discards strictly between P and Q: P's [`Window`]. [`windows`] lists them,
//! [`pick_subsets`] chooses subsets of one (all of them, or a seeded random
//! sample), and [`choose`] checks a subset against the window after an entry
//! and orders it for replay (log order, or reversed: an earlier overlapping
//! write landing after a later one). Not modelled: a FUA write orders nothing
//! else, so a write logged after a FUA entry Q (at the next flush) may have
//! reached the disk before Q did; those states are not listed.

use std::collections::HashSet;
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
    /// The log's size in bytes: no entry's data may run past it.
    fn byte_size(&mut self) -> io::Result<u64>;
}

/// Writes at byte offsets of the device a log is replayed onto.
pub trait WriteAt {
    /// Write all of `buf` at byte offset `off`.
    fn write_all_at(&mut self, buf: &[u8], off: u64) -> io::Result<()>;
    /// The target's size in bytes: no entry may end past it (a log replayed
    /// onto a smaller device is not that device's log, or is damaged).
    fn byte_size(&mut self) -> io::Result<u64>;
}

impl ReadAt for &[u8] {
    fn read_exact_at(&mut self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let start = usize::try_from(off).map_err(|_| short())?;
        let end = start.checked_add(buf.len()).ok_or_else(short)?;
        let src = self.get(start..end).ok_or_else(short)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn byte_size(&mut self) -> io::Result<u64> {
        Ok(self.len() as u64)
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

    /// Its length: a vector stands in for a device, which does not grow.
    fn byte_size(&mut self) -> io::Result<u64> {
        Ok(self.len() as u64)
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
    /// An entry ends past the end of the target (`log` false) or its data runs
    /// past the end of the log (`log` true), whose size in bytes is `size`.
    PastEnd {
        /// The entry.
        entry: Entry,
        /// Whether it is the log it runs past, not the target.
        log: bool,
        /// The log's or the target's size in bytes.
        size: u64,
    },
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
            Error::PastEnd { entry, log, size } => {
                let e = entry;
                write!(
                    f,
                    "entry {} ({} of {} sectors at sector {})",
                    e.index,
                    e.kind(),
                    e.nr_sectors,
                    e.sector
                )?;
                if *log {
                    write!(
                        f,
                        ": its data runs past the end of the log ({} bytes): \
                         the log is truncated or damaged; replay only the entries before it",
                        size
                    )
                } else {
                    write!(
                        f,
                        " ends past the end of the target ({} sectors): give the device \
                         the log was recorded on (or one at least as large), or check the log",
                        size / 512
                    )
                }
            }
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

    /// Whether a power cut may lose this entry until the next durability
    /// point: a write or a discard, with sectors, that is not itself a flush or
    /// FUA entry. Marks and empty entries change nothing.
    pub fn is_volatile_data(&self) -> bool {
        !self.is_durability_point() && self.flags & flag::MARK == 0 && self.nr_sectors > 0
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
    /// disks the tests use), flushes and marks change nothing. Every entry is
    /// checked against the target's and the log's sizes first: one that does
    /// not fit is refused ([`Error::PastEnd`]) before anything is written. Data
    /// is copied in pieces of at most [`CHUNK`] bytes.
    pub fn replay<W: WriteAt>(&mut self, entries: &[Entry], target: &mut W) -> Result<u64, Error> {
        self.replay_in(entries, target, CHUNK)
    }

    /// [`Log::replay`] with pieces of `chunk` bytes (a multiple of 512).
    fn replay_in<W: WriteAt>(
        &mut self,
        entries: &[Entry],
        target: &mut W,
        chunk: usize,
    ) -> Result<u64, Error> {
        let target_size = target.byte_size()?;
        let log_size = self.dev.byte_size()?;
        let changes = |e: &&Entry| e.flags & flag::MARK == 0 && e.nr_sectors > 0;
        for e in entries.iter().filter(changes) {
            // In u128, where neither end can overflow.
            let bytes = u128::from(e.nr_sectors) * 512;
            if (u128::from(e.sector) * 512 + bytes) > u128::from(target_size) {
                return Err(Error::PastEnd {
                    entry: e.clone(),
                    log: false,
                    size: target_size,
                });
            }
            if e.has_data() && u128::from(e.data_offset) + bytes > u128::from(log_size) {
                return Err(Error::PastEnd {
                    entry: e.clone(),
                    log: true,
                    size: log_size,
                });
            }
        }
        let mut written = 0u64;
        let mut buf = Vec::new();
        for e in entries.iter().filter(changes) {
            // Both fit in a u64: checked above against sizes that are u64s.
            let at = e.sector * 512;
            let len = e.nr_sectors * 512;
            let mut done = 0u64;
            while done < len {
                // At most `chunk`, so it fits in a usize.
                let n = (len - done).min(chunk as u64) as usize;
                buf.resize(n, 0);
                if e.flags & flag::DISCARD != 0 {
                    buf.fill(0);
                } else {
                    self.dev.read_exact_at(&mut buf, e.data_offset + done)?;
                }
                target.write_all_at(&buf, at + done)?;
                done += n as u64;
            }
            written += e.nr_sectors;
        }
        Ok(written)
    }
}

/// The most [`Log::replay`] holds in memory at once: 1 MiB.
pub const CHUNK: usize = 1 << 20;

/// The writes and discards a power cut after one durability point may lose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The entry the window follows: a durability point, or `None` for the
    /// start of the log (from [`window_after`], any entry).
    pub point: Option<u64>,
    /// The indices of the [`Entry::is_volatile_data`] entries after `point`
    /// and before `next`, in log order.
    pub entries: Vec<u64>,
    /// The first durability point after `point`, `None` if the log ends first.
    pub next: Option<u64>,
}

/// Why a point or a subset does not fit the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowError {
    /// No such entry; the log has `len` entries.
    NoEntry {
        /// The index asked for.
        index: u64,
        /// Entries in the log.
        len: u64,
    },
    /// The entry is not a FLUSH or FUA entry.
    NotAPoint {
        /// The entry.
        index: u64,
        /// Its [`Entry::kind`].
        kind: String,
    },
    /// The entry is at or before the window's point: it is in the prefix.
    NotAfter {
        /// The entry.
        index: u64,
        /// The window's point.
        point: u64,
    },
    /// The entry is at or past the durability point that ends the window.
    PastWindow {
        /// The entry.
        index: u64,
        /// The window's point (`None`: the start of the log).
        point: Option<u64>,
        /// The durability point ending the window.
        next: u64,
        /// Its [`Entry::kind`].
        next_kind: String,
    },
    /// The entry is in the window's range but is a mark or an empty entry.
    NotData {
        /// The entry.
        index: u64,
        /// Its [`Entry::kind`].
        kind: String,
    },
    /// The entry is listed more than once.
    Twice(u64),
}

fn after_text(point: Option<u64>) -> String {
    match point {
        Some(p) => format!("entry {p}"),
        None => "the start of the log".to_string(),
    }
}

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowError::NoEntry { index, len: 0 } => {
                write!(f, "entry {index}: the log has no entries")
            }
            WindowError::NoEntry { index, len } => {
                write!(f, "entry {index}: the log has entries 0..={}", len - 1)
            }
            WindowError::NotAPoint { index, kind } => write!(
                f,
                "entry {index} is a {kind} entry, not a flush or FUA entry \
                 (`dmc-replay-log windows` lists the points)"
            ),
            WindowError::NotAfter { index, point } => write!(
                f,
                "entry {index} is not after entry {point}: it is in the prefix, already applied"
            ),
            WindowError::PastWindow {
                index,
                point,
                next,
                next_kind,
            } => write!(
                f,
                "entry {index} is not in the window after {}: that window ends at entry \
                 {next} ({next_kind}), which makes it durable",
                after_text(*point)
            ),
            WindowError::NotData { index, kind } => write!(
                f,
                "entry {index} is a {kind} entry, not a write or discard a crash could lose"
            ),
            WindowError::Twice(i) => write!(f, "entry {i} is listed twice"),
        }
    }
}

impl std::error::Error for WindowError {}

/// The entry at `index` (entries as [`Log::entries`] returns them: entry i at
/// position i).
fn entry_at(entries: &[Entry], index: u64) -> Result<&Entry, WindowError> {
    usize::try_from(index)
        .ok()
        .and_then(|i| entries.get(i))
        .ok_or(WindowError::NoEntry {
            index,
            len: entries.len() as u64,
        })
}

/// The window after `after` (any entry, or `None` for the start of the log):
/// the volatile data entries after it up to the next durability point.
pub fn window_after(entries: &[Entry], after: Option<u64>) -> Result<Window, WindowError> {
    let start = match after {
        Some(p) => {
            entry_at(entries, p)?;
            // p < entries.len(), a usize.
            p as usize + 1
        }
        None => 0,
    };
    let mut w = Window {
        point: after,
        entries: Vec::new(),
        next: None,
    };
    for e in &entries[start..] {
        if e.is_durability_point() {
            w.next = Some(e.index);
            break;
        }
        if e.is_volatile_data() {
            w.entries.push(e.index);
        }
    }
    Ok(w)
}

/// Every crash window of the log, in log order: the one after the start of
/// the log, then one after each durability point (empty ones included). Every
/// volatile data entry is in exactly one.
pub fn windows(entries: &[Entry]) -> Vec<Window> {
    let mut out = vec![Window {
        point: None,
        entries: Vec::new(),
        next: None,
    }];
    for e in entries {
        if e.is_durability_point() {
            if let Some(last) = out.last_mut() {
                last.next = Some(e.index);
            }
            out.push(Window {
                point: Some(e.index),
                entries: Vec::new(),
                next: None,
            });
        } else if e.is_volatile_data() {
            if let Some(last) = out.last_mut() {
                last.entries.push(e.index);
            }
        }
    }
    out
}

/// The window after durability point `point` (`None`: the start of the
/// log); refuses an entry that is not a FLUSH or FUA entry.
pub fn window_at_point(entries: &[Entry], point: Option<u64>) -> Result<Window, WindowError> {
    if let Some(p) = point {
        let e = entry_at(entries, p)?;
        if !e.is_durability_point() {
            return Err(WindowError::NotAPoint {
                index: p,
                kind: e.kind(),
            });
        }
    }
    window_after(entries, point)
}

/// Check that every entry of `chosen` is a volatile data entry in the window
/// after `after` (see [`window_after`]), listed once, and give them in the
/// order to apply them: log order, or its reverse if `reverse`.
pub fn choose(
    entries: &[Entry],
    after: Option<u64>,
    chosen: &[u64],
    reverse: bool,
) -> Result<Vec<u64>, WindowError> {
    let w = window_after(entries, after)?;
    let mut seen = HashSet::new();
    for &i in chosen {
        let e = entry_at(entries, i)?;
        if let Some(p) = after {
            if i <= p {
                return Err(WindowError::NotAfter { index: i, point: p });
            }
        }
        if let Some(next) = w.next {
            if i >= next {
                let next_kind = entry_at(entries, next)?.kind();
                return Err(WindowError::PastWindow {
                    index: i,
                    point: after,
                    next,
                    next_kind,
                });
            }
        }
        if !e.is_volatile_data() {
            return Err(WindowError::NotData {
                index: i,
                kind: e.kind(),
            });
        }
        if !seen.insert(i) {
            return Err(WindowError::Twice(i));
        }
    }
    let mut order = chosen.to_vec();
    order.sort_unstable();
    if reverse {
        order.reverse();
    }
    Ok(order)
}

/// The most entries a window may have for [`pick_subsets`] to list all of
/// its subsets (2^20 of them).
pub const MAX_EXHAUSTIVE: u32 = 20;

/// SplitMix64: a small, seeded, well-mixed generator (Steele, Lea, Flood
/// 2014), enough to sample crash states reproducibly.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose stream is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The seed [`pick_subsets`] is given for the window after `point` by a run
/// seeded with `seed`: windows get different samples from one seed.
pub fn window_seed(seed: u64, point: Option<u64>) -> u64 {
    let p = point.map_or(0, |p| p.wrapping_add(1));
    SplitMix64::new(seed ^ p.wrapping_mul(0xd1b5_4a32_d192_ed03)).next_u64()
}

/// Subsets of `window` (entry indices in log order), each in log order.
///
/// If the window has at most `max_exhaustive` entries (capped at
/// [`MAX_EXHAUSTIVE`]), every subset: 2^n of them, subset k holding the
/// entries whose bit is set in k (bit i for `window[i]`), so the empty one is
/// first and the full one last. Otherwise the empty subset, then up to
/// `random` distinct others, neither empty nor full, each entry in with
/// probability 1/2 (a [`SplitMix64`] seeded with `seed`), then the full one.
/// The same arguments give the same list.
pub fn pick_subsets(
    window: &[u64],
    max_exhaustive: u32,
    random: usize,
    seed: u64,
) -> Vec<Vec<u64>> {
    let n = window.len();
    if n <= max_exhaustive.min(MAX_EXHAUSTIVE) as usize {
        return (0..1u64 << n)
            .map(|mask| {
                window
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask >> i & 1 == 1)
                    .map(|(_, &e)| e)
                    .collect()
            })
            .collect();
    }
    // n > 0 here, so the empty and the full subsets differ.
    let mut rng = SplitMix64::new(seed);
    let mut out: Vec<Vec<u64>> = vec![Vec::new()];
    let mut seen: HashSet<Vec<u64>> = HashSet::new();
    seen.insert(Vec::new());
    seen.insert(window.to_vec());
    // Bounded: a small window may not have `random` other subsets.
    let attempts = random.saturating_mul(4).saturating_add(64);
    let mut found = 0;
    for _ in 0..attempts {
        if found == random {
            break;
        }
        let mut pick = Vec::new();
        let mut bits = 0u64;
        for (i, &e) in window.iter().enumerate() {
            if i % 64 == 0 {
                bits = rng.next_u64();
            }
            if bits >> (i % 64) & 1 == 1 {
                pick.push(e);
            }
        }
        if seen.insert(pick.clone()) {
            out.push(pick);
            found += 1;
        }
    }
    out.push(window.to_vec());
    out
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
        // Refused before anything is written, naming the entry.
        let mut dev = vec![0x11u8; 16 * 1024];
        let err = l.replay(&e, &mut dev).unwrap_err();
        assert!(
            matches!(&err, Error::PastEnd { entry, log: true, .. } if entry.index == 4),
            "{err}"
        );
        assert!(dev.iter().all(|&b| b == 0x11));
        let cut = &log[..512 + 100];
        let mut l = Log::open(cut).unwrap();
        assert!(l.entries().is_err());
    }

    #[test]
    fn replay_copies_in_pieces_of_the_chunk_size() {
        for ss in [512, 4096] {
            let mut b = Builder::new(ss);
            let data: Vec<u8> = (0..5 * ss).map(|i| (i / 512) as u8 + 1).collect();
            b.push(0, 0, &data, "");
            b.discard(2 * ss as u64 / 512, 2 * ss as u64 / 512);
            let log = b.finish();
            let mut l = Log::open(&log[..]).unwrap();
            let e = l.entries().unwrap();
            let mut want = vec![0x11u8; 8 * ss];
            want[..5 * ss].copy_from_slice(&data);
            want[2 * ss..4 * ss].fill(0);
            for chunk in [512, 1024, 1536, CHUNK] {
                let mut dev = vec![0x11u8; 8 * ss];
                l.replay_in(&e, &mut dev, chunk).unwrap();
                assert_eq!(dev, want, "ss {ss}, chunk {chunk}");
            }
        }
    }

    /// An entry as `Log::entries` makes it (no data behind it).
    fn entry(index: u64, flags: u64, sector: u64, nr_sectors: u64) -> Entry {
        Entry {
            index,
            sector,
            nr_sectors,
            flags,
            mark: (flags & flag::MARK != 0).then(|| "m".to_string()),
            data_offset: 0,
        }
    }

    /// A random log's entries: writes (some empty), discards, flushes (some
    /// with data), FUA writes and marks.
    fn random_entries(rng: &mut SplitMix64) -> Vec<Entry> {
        let len = rng.next_u64() % 40;
        (0..len)
            .map(|i| {
                let r = rng.next_u64();
                let (flags, n) = match r % 9 {
                    0..=2 => (0, 8),
                    3 => (0, 0),
                    4 => (flag::DISCARD, 8),
                    5 => (flag::FLUSH, (r >> 8) % 2 * 8),
                    6 => (flag::FUA | flag::METADATA, 8),
                    7 => (flag::MARK, 0),
                    _ => (flag::METADATA, 8),
                };
                entry(i, flags, (r >> 16) % 64 * 8, n)
            })
            .collect()
    }

    #[test]
    fn windows_partition_the_volatile_data_between_durability_points() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..500 {
            let e = random_entries(&mut rng);
            let w = windows(&e);
            // One window for the start, then one per durability point, in order.
            let points: Vec<_> = e
                .iter()
                .filter(|e| e.is_durability_point())
                .map(|e| Some(e.index))
                .collect();
            assert_eq!(w[0].point, None);
            assert_eq!(w[1..].iter().map(|w| w.point).collect::<Vec<_>>(), points);
            // Every volatile data entry exactly once, nothing else.
            let mut count = vec![0; e.len()];
            for win in &w {
                for &i in &win.entries {
                    count[i as usize] += 1;
                }
            }
            for x in &e {
                assert_eq!(count[x.index as usize], usize::from(x.is_volatile_data()));
            }
            for (k, win) in w.iter().enumerate() {
                // Bounded by its point and the next one, which ends it.
                assert_eq!(win.next, w.get(k + 1).and_then(|n| n.point));
                let lo = win.point.map_or(0, |p| p + 1);
                let hi = win.next.unwrap_or(e.len() as u64);
                assert!(win.entries.windows(2).all(|p| p[0] < p[1]));
                assert!(win.entries.iter().all(|&i| lo <= i && i < hi));
                assert!(e[lo as usize..hi as usize]
                    .iter()
                    .all(|x| !x.is_durability_point()));
                // The same as asked for one point at a time.
                assert_eq!(window_at_point(&e, win.point).as_ref(), Ok(win));
                assert_eq!(window_after(&e, win.point).as_ref(), Ok(win));
            }
            for x in e.iter().filter(|x| !x.is_durability_point()) {
                assert!(matches!(
                    window_at_point(&e, Some(x.index)),
                    Err(WindowError::NotAPoint { index, .. }) if index == x.index
                ));
            }
            let past = e.len() as u64;
            assert!(matches!(
                window_at_point(&e, Some(past)),
                Err(WindowError::NoEntry { index, .. }) if index == past
            ));
        }
    }

    #[test]
    fn exhaustive_subsets_are_all_2_to_the_n_distinct_ones() {
        for n in 0..=10u64 {
            let window: Vec<u64> = (0..n).map(|i| 100 + 3 * i).collect();
            let s = pick_subsets(&window, 10, 5, 1);
            assert_eq!(s.len(), 1 << n);
            let distinct: HashSet<_> = s.iter().cloned().collect();
            assert_eq!(distinct.len(), 1 << n);
            assert!(s[0].is_empty());
            assert_eq!(s.last(), Some(&window));
            for sub in &s {
                assert!(sub.windows(2).all(|p| p[0] < p[1]));
                assert!(sub.iter().all(|i| window.contains(i)));
            }
        }
    }

    #[test]
    fn random_subsets_are_seeded_distinct_and_inside_the_window() {
        let window: Vec<u64> = (0..70).map(|i| 10 + 2 * i).collect();
        let a = pick_subsets(&window, 8, 50, 42);
        assert_eq!(a, pick_subsets(&window, 8, 50, 42));
        assert_ne!(a, pick_subsets(&window, 8, 50, 43));
        assert_eq!(a.len(), 52);
        assert!(a[0].is_empty());
        assert_eq!(a.last(), Some(&window));
        let distinct: HashSet<_> = a.iter().cloned().collect();
        assert_eq!(distinct.len(), a.len());
        for sub in &a {
            assert!(sub.windows(2).all(|p| p[0] < p[1]));
            assert!(sub.iter().all(|i| window.contains(i)));
        }
        // Bits past the first 64 entries are drawn too.
        assert!(a.iter().any(|sub| sub.iter().any(|&i| i >= 10 + 2 * 64)));
        // A small window has only so many subsets: every one, once.
        let small = pick_subsets(&[1, 2, 3], 2, 100, 5);
        assert_eq!(small.len(), 8);
        assert_eq!(small.iter().cloned().collect::<HashSet<_>>().len(), 8);
        // The exhaustive bound is capped.
        let big: Vec<u64> = (0..MAX_EXHAUSTIVE as u64 + 1).collect();
        assert_eq!(pick_subsets(&big, u32::MAX, 3, 0).len(), 5);
        // No random subsets: the empty and the full one.
        assert_eq!(pick_subsets(&big, 0, 0, 0), vec![vec![], big.clone()]);
        // Windows get different samples from one seed.
        assert_ne!(window_seed(1, None), window_seed(1, Some(0)));
        assert_eq!(window_seed(1, Some(4)), window_seed(1, Some(4)));
    }

    #[test]
    fn choose_refuses_what_a_crash_after_the_point_cannot_lose() {
        // 0 write, 1 flush, 2 write, 3 mark, 4 discard, 5 empty write,
        // 6 fua, 7 write.
        let e = vec![
            entry(0, 0, 0, 8),
            entry(1, flag::FLUSH, 0, 0),
            entry(2, 0, 8, 8),
            entry(3, flag::MARK, 0, 0),
            entry(4, flag::DISCARD, 16, 8),
            entry(5, 0, 0, 0),
            entry(6, flag::FUA, 24, 8),
            entry(7, 0, 32, 8),
        ];
        assert_eq!(choose(&e, Some(1), &[4, 2], false), Ok(vec![2, 4]));
        assert_eq!(choose(&e, Some(1), &[2, 4], true), Ok(vec![4, 2]));
        assert_eq!(choose(&e, Some(1), &[], false), Ok(vec![]));
        assert_eq!(choose(&e, None, &[0], false), Ok(vec![0]));
        assert_eq!(choose(&e, Some(6), &[7], false), Ok(vec![7]));
        // After a data entry: the rest of its window.
        assert_eq!(choose(&e, Some(2), &[4], false), Ok(vec![4]));
        let err = |after, with: &[u64]| choose(&e, after, with, false).unwrap_err();
        assert_eq!(
            err(Some(1), &[0]),
            WindowError::NotAfter { index: 0, point: 1 }
        );
        assert_eq!(
            err(Some(1), &[1]),
            WindowError::NotAfter { index: 1, point: 1 }
        );
        assert!(matches!(
            err(Some(1), &[3]),
            WindowError::NotData { index: 3, .. }
        ));
        assert!(matches!(
            err(Some(1), &[5]),
            WindowError::NotData { index: 5, .. }
        ));
        assert!(matches!(
            err(Some(1), &[2, 6]),
            WindowError::PastWindow {
                index: 6,
                next: 6,
                ..
            }
        ));
        assert!(matches!(
            err(None, &[2]),
            WindowError::PastWindow {
                index: 2,
                point: None,
                next: 1,
                ..
            }
        ));
        assert!(matches!(
            err(Some(1), &[8]),
            WindowError::NoEntry { index: 8, len: 8 }
        ));
        assert!(matches!(
            err(Some(9), &[]),
            WindowError::NoEntry { index: 9, len: 8 }
        ));
        assert_eq!(err(Some(1), &[2, 4, 2]), WindowError::Twice(2));
        // The messages name the entry.
        for (after, with, text) in [
            (Some(1), &[0u64][..], "entry 0 is not after entry 1"),
            (
                Some(1),
                &[3],
                "entry 3 is a mark entry, not a write or discard",
            ),
            (
                Some(1),
                &[7],
                "entry 7 is not in the window after entry 1: that window \
                              ends at entry 6 (write,fua)",
            ),
            (
                None,
                &[7],
                "entry 7 is not in the window after the start of the log",
            ),
            (Some(1), &[99], "entry 99: the log has entries 0..=7"),
            (Some(1), &[2, 2], "entry 2 is listed twice"),
        ] {
            let msg = err(after, with).to_string();
            assert!(msg.starts_with(text), "{msg}");
        }
        assert!(window_at_point(&e, Some(2))
            .unwrap_err()
            .to_string()
            .starts_with("entry 2 is a write entry, not a flush or FUA entry"));
    }

    /// The log of `replaying_a_subset_gives_the_prefix_and_exactly_those_writes`:
    /// entry i writes byte 0x20 + i (a discard writes zeros) over
    /// `(first 512-byte sector, sectors)`; `None` changes nothing.
    fn model_log(ss: usize) -> (Vec<u8>, Vec<Option<(u64, u64)>>) {
        let s = (ss / 512) as u64;
        let mut b = Builder::new(ss);
        let write = |b: &mut Builder, sector: u64, blocks: u64| {
            let fill = 0x20 + b.n as u8;
            b.push(sector, 0, &vec![fill; blocks as usize * ss], "");
            Some((sector, blocks * s))
        };
        let model = vec![
            write(&mut b, 0, 2), // 0: prefix
            {
                b.push(0, flag::FLUSH, &[], ""); // 1: the point
                None
            },
            write(&mut b, 2 * s, 1), // 2
            write(&mut b, s, 2),     // 3: over 0 and 2
            {
                b.discard(4 * s, s); // 4
                Some((4 * s, s))
            },
            {
                b.push(0, flag::MARK, &[], "f1"); // 5
                None
            },
            write(&mut b, 2 * s, 3), // 6: over 2, 3 and 4
            {
                b.push(0, flag::FLUSH, &[], ""); // 7: ends the window
                None
            },
            write(&mut b, 0, 8), // 8: after it
        ];
        (b.finish(), model)
    }

    #[test]
    fn replaying_a_subset_gives_the_prefix_and_exactly_those_writes() {
        for ss in [512, 4096] {
            let (log, model) = model_log(ss);
            let mut l = Log::open(&log[..]).unwrap();
            let e = l.entries().unwrap();
            let w = window_at_point(&e, Some(1)).unwrap();
            assert_eq!(w.entries, [2, 3, 4, 6]);
            assert_eq!(w.next, Some(7));
            let size = 16 * ss;
            let mut prefix = vec![0x11u8; size];
            l.replay(&e[..=1], &mut prefix).unwrap();
            let subsets = pick_subsets(&w.entries, 8, 0, 0);
            assert_eq!(subsets.len(), 16);
            for sub in &subsets {
                for reverse in [false, true] {
                    let order = choose(&e, Some(1), sub, reverse).unwrap();
                    let mut dev = prefix.clone();
                    let picked: Vec<Entry> = order.iter().map(|&i| e[i as usize].clone()).collect();
                    l.replay(&picked, &mut dev).unwrap();
                    // The model: the base, entry 0, then the subset in order.
                    let mut want = vec![0x11u8; size];
                    for &i in std::iter::once(&0).chain(&order) {
                        if let Some((sector, n)) = model[i as usize] {
                            let fill = if e[i as usize].flags & flag::DISCARD != 0 {
                                0
                            } else {
                                0x20 + i as u8
                            };
                            want[sector as usize * 512..][..n as usize * 512].fill(fill);
                        }
                    }
                    assert_eq!(dev, want, "ss {ss}, subset {sub:?}, reverse {reverse}");
                }
            }
            // Overlap: in log order the later write wins, reversed the earlier.
            let mut last = |sub: &[u64], reverse| {
                let order = choose(&e, Some(1), sub, reverse).unwrap();
                let mut dev = prefix.clone();
                let picked: Vec<Entry> = order.iter().map(|&i| e[i as usize].clone()).collect();
                l.replay(&picked, &mut dev).unwrap();
                dev[2 * ss]
            };
            assert_eq!(last(&[2, 6], false), 0x26);
            assert_eq!(last(&[2, 6], true), 0x22);
        }
    }
}

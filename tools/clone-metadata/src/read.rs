// SPDX-License-Identifier: GPL-2.0
//! Reading and checking a clone's metadata, block by block, as the kernel's
//! persistent-data library lays it out (drivers/md/persistent-data): the
//! superblock (block 0), the metadata space map (an index block naming bitmap
//! blocks of 2-bit reference counts, and a btree of counts above 2), and the
//! bitset of copied regions (a dm-array: a btree from array block index to
//! array blocks of little-endian 64-bit words).
//!
//! Owned here: the layout of each kind of block and what makes it valid. A
//! reader never panics on a damaged image: every problem is reported with the
//! block it is in, and reading goes on where it can.

use crate::checksum::{self, BlockKind};
use crate::superblock::{offset, MAGIC};
use crate::BLOCK_SIZE;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The metadata format version the kernel targets write and read.
pub const VERSION: u32 = 1;
/// Entries of a space map bitmap block: 2 bits per block after a 16-byte header.
pub const ENTRIES_PER_BITMAP: u64 = ((BLOCK_SIZE - 16) * 4) as u64;
/// Bitmaps an index block can name.
pub const MAX_METADATA_BITMAPS: usize = 255;
/// 64-bit words per array block (after its 24-byte header).
pub const WORDS_PER_ARRAY_BLOCK: u32 = ((BLOCK_SIZE - 24) / 8) as u32;
/// Btree node flags.
const INTERNAL_NODE: u32 = 1;
const LEAF_NODE: u32 = 2;
/// The btree node header's size.
const NODE_HEADER: usize = 32;
/// Btrees deeper than this are taken for a loop.
const MAX_DEPTH: usize = 16;

/// Where metadata blocks come from: a device, a file, or memory.
pub trait BlockSource {
    /// How many whole blocks there are.
    fn nr_blocks(&self) -> u64;
    /// Block `b`, `BLOCK_SIZE` bytes, or why it cannot be read.
    fn read(&self, b: u64) -> Result<Vec<u8>, String>;
}

/// Metadata in memory (an image read whole, or made by `write`).
pub struct Memory<'a>(pub &'a [u8]);

impl BlockSource for Memory<'_> {
    fn nr_blocks(&self) -> u64 {
        (self.0.len() / BLOCK_SIZE) as u64
    }

    fn read(&self, b: u64) -> Result<Vec<u8>, String> {
        let start = usize::try_from(b)
            .ok()
            .and_then(|b| b.checked_mul(BLOCK_SIZE))
            .ok_or_else(|| format!("block {b} is past the end"))?;
        self.0
            .get(start..start + BLOCK_SIZE)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| format!("block {b} is past the end of the image"))
    }
}

impl BlockSource for std::fs::File {
    fn nr_blocks(&self) -> u64 {
        use std::os::unix::fs::FileTypeExt;
        let Ok(meta) = self.metadata() else { return 0 };
        let len = if meta.file_type().is_block_device() {
            // A block device's size is where seeking to the end lands.
            use std::io::{Seek, SeekFrom};
            let mut f = self;
            f.seek(SeekFrom::End(0)).unwrap_or(0)
        } else {
            meta.len()
        };
        len / BLOCK_SIZE as u64
    }

    fn read(&self, b: u64) -> Result<Vec<u8>, String> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; BLOCK_SIZE];
        let at = b
            .checked_mul(BLOCK_SIZE as u64)
            .ok_or_else(|| format!("block {b} is past the end"))?;
        self.read_exact_at(&mut buf, at)
            .map_err(|e| format!("reading block {b}: {e}"))?;
        Ok(buf)
    }
}

fn le32(d: &[u8], at: usize) -> u32 {
    d.get(at..at + 4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn le64(d: &[u8], at: usize) -> u64 {
    d.get(at..at + 8).map_or(0, |b| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        u64::from_le_bytes(a)
    })
}

/// How bad a problem is: thin_check's distinction between fatal and non-fatal errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Damage: what the metadata records cannot all be trusted, or the kernel may be misled
    /// by it.
    Fatal,
    /// Harmless to what the metadata records: a leaked block (counted once in the space
    /// map, referenced by nothing) is only never reused. thin_check reports the same as a
    /// non-fatal error; `clone_check --ignore-non-fatal-errors` passes it.
    NonFatal,
}

/// A problem found, and the block it is in (`None`: the metadata as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub block: Option<u64>,
    pub what: String,
    pub severity: Severity,
}

impl Problem {
    /// Whether it is damage (see [`Severity`]).
    pub fn is_fatal(&self) -> bool {
        self.severity == Severity::Fatal
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.block {
            Some(b) => write!(f, "block {b}: {}", self.what),
            None => write!(f, "{}", self.what),
        }
    }
}

/// The metadata space map's root, kept in the superblock (`struct disk_sm_root`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpaceMapRoot {
    pub nr_blocks: u64,
    pub nr_allocated: u64,
    /// The index block.
    pub bitmap_root: u64,
    /// The btree of reference counts above 2 (0: none).
    pub ref_count_root: u64,
}

/// What the superblock says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Superblock {
    pub flags: u32,
    pub blocknr: u64,
    pub magic: u64,
    pub version: u32,
    pub space_map: SpaceMapRoot,
    /// Region size in sectors.
    pub region_size: u64,
    /// Target size in sectors.
    pub target_size: u64,
    pub bitset_root: u64,
}

impl Superblock {
    /// The number of regions (the last may be short); 0 for a zero region size.
    pub fn nr_regions(&self) -> u64 {
        self.target_size
            .checked_div(self.region_size)
            .map_or(0, |n| {
                n + u64::from(self.target_size % self.region_size != 0)
            })
    }

    /// Parses block 0.
    pub fn parse(d: &[u8]) -> Self {
        let sm = offset::SPACE_MAP_ROOT;
        Self {
            flags: le32(d, offset::FLAGS),
            blocknr: le64(d, offset::BLOCKNR),
            magic: le64(d, offset::MAGIC),
            version: le32(d, offset::VERSION),
            space_map: SpaceMapRoot {
                nr_blocks: le64(d, sm),
                nr_allocated: le64(d, sm + 8),
                bitmap_root: le64(d, sm + 16),
                ref_count_root: le64(d, sm + 24),
            },
            region_size: le64(d, offset::REGION_SIZE),
            target_size: le64(d, offset::TARGET_SIZE),
            bitset_root: le64(d, offset::BITSET_ROOT),
        }
    }
}

/// What a whole read found: the superblock, the copied regions (as far as they
/// could be read), each block's reference count in the space map and how many
/// times it is reachable, and the problems.
#[derive(Debug, Default)]
pub struct Report {
    pub superblock: Superblock,
    /// Whether the superblock's checksum, location, magic and version are right.
    pub superblock_ok: bool,
    /// One bit per region, as the bitset's words hold them (missing words: `None`).
    pub words: Vec<Option<u64>>,
    /// Blocks reached from the superblock, and how many times.
    pub reachable: BTreeMap<u64, u32>,
    /// Reference counts the space map gives, for blocks with a count above 0.
    pub ref_counts: BTreeMap<u64, u32>,
    pub problems: Vec<Problem>,
}

impl Report {
    fn problem(&mut self, block: Option<u64>, what: impl Into<String>) {
        self.problems.push(Problem {
            block,
            what: what.into(),
            severity: Severity::Fatal,
        });
    }

    fn non_fatal(&mut self, block: Option<u64>, what: impl Into<String>) {
        self.problems.push(Problem {
            block,
            what: what.into(),
            severity: Severity::NonFatal,
        });
    }

    /// How many problems are damage (fatal).
    pub fn nr_fatal(&self) -> usize {
        self.problems.iter().filter(|p| p.is_fatal()).count()
    }

    /// Whether the metadata is sound: no fatal problem (non-fatal ones, leaked blocks, may
    /// have been found).
    pub fn is_sound(&self) -> bool {
        self.nr_fatal() == 0
    }

    /// Whether region `r` is copied (false if its word could not be read).
    pub fn is_copied(&self, r: u64) -> bool {
        let w = usize::try_from(r / 64).ok();
        w.and_then(|w| self.words.get(w).copied().flatten())
            .is_some_and(|w| w & (1 << (r % 64)) != 0)
    }

    /// The copied regions as runs `(first, length)`. Walks the words read (none when the
    /// superblock is refused), never the regions a damaged superblock claims: the time is
    /// bounded by the metadata's size.
    pub fn copied_runs(&self) -> Vec<(u64, u64)> {
        let n = self.regions_read();
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for (i, w) in self.words.iter().enumerate() {
            let mut w = w.unwrap_or(0);
            let base = i as u64 * 64;
            while w != 0 {
                // The next run of set bits in this word.
                let start = u64::from(w.trailing_zeros());
                let len = u64::from((w >> start).trailing_ones());
                let first = base + start;
                let len = len.min(n.saturating_sub(first));
                if len == 0 {
                    break;
                }
                match runs.last_mut() {
                    Some((f, l)) if *f + *l == first => *l += len,
                    _ => runs.push((first, len)),
                }
                w = if start + len >= 64 {
                    0
                } else {
                    w & !((1u64 << (start + len)) - 1)
                };
            }
        }
        runs
    }

    /// The regions the words read cover: the superblock's, when it was read whole.
    fn regions_read(&self) -> u64 {
        self.superblock
            .nr_regions()
            .min(self.words.len() as u64 * 64)
    }

    /// The regions whose state could not be read (their word is missing or in a damaged
    /// block), as runs `(first, length)`.
    pub fn unknown_runs(&self) -> Vec<(u64, u64)> {
        let n = self.regions_read();
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for (i, w) in self.words.iter().enumerate() {
            if w.is_some() {
                continue;
            }
            let first = i as u64 * 64;
            let len = 64.min(n.saturating_sub(first));
            match runs.last_mut() {
                Some((f, l)) if *f + *l == first => *l += len,
                _ => runs.push((first, len)),
            }
        }
        runs
    }

    /// How many regions are copied.
    pub fn nr_copied(&self) -> u64 {
        // The reader clears the bits past the last region.
        self.words
            .iter()
            .map(|w| u64::from(w.unwrap_or(0).count_ones()))
            .sum()
    }
}

/// Reads `src`'s block `b` of `kind`, checking its checksum and, at `blocknr_at`, that it
/// names its own location. Problems go to the report; the data is returned anyway (a
/// salvaging reader may still use it), unless it could not be read at all.
fn read_checked(
    src: &dyn BlockSource,
    rep: &mut Report,
    b: u64,
    kind: BlockKind,
    blocknr_at: usize,
    what: &str,
) -> Option<Vec<u8>> {
    if b >= src.nr_blocks() {
        rep.problem(
            Some(b),
            format!(
                "{what} is past the end of the metadata ({} blocks)",
                src.nr_blocks()
            ),
        );
        return None;
    }
    let d = match src.read(b) {
        Ok(d) => d,
        Err(e) => {
            rep.problem(Some(b), format!("{what}: {e}"));
            return None;
        }
    };
    let (stored, want) = (checksum::stored(&d), checksum::compute(&d, kind));
    if stored != Some(want) {
        rep.problem(
            Some(b),
            format!(
                "{what}: bad checksum {:#010x} (should be {want:#010x})",
                stored.unwrap_or(0)
            ),
        );
    }
    let at = le64(&d, blocknr_at);
    if at != b {
        rep.problem(Some(b), format!("{what}: says it is block {at}"));
    }
    Some(d)
}

fn reach(rep: &mut Report, b: u64) -> bool {
    let n = rep.reachable.entry(b).or_insert(0);
    *n += 1;
    *n == 1
}

/// The entries of a btree, in key order: `(key, value bytes)`; `value_size` is what the
/// leaves must hold. Every node is counted reachable.
fn walk_btree(
    src: &dyn BlockSource,
    rep: &mut Report,
    root: u64,
    value_size: u32,
    what: &str,
) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    // Each node checks its own keys, and each internal node the keys below each child, so
    // the keys rise across the whole tree when no node reports a problem.
    walk_node(src, rep, root, value_size, what, 0, &mut out);
    out
}

/// The kernel's `calc_max_entries`: the entries of a btree node with values of
/// `value_size` bytes, rounded down to a multiple of 3 (for its split). The kernel gives
/// every node it makes this many (dm-btree.c), so any other number is damage.
fn btree_max_entries(value_size: u32) -> u32 {
    ((BLOCK_SIZE - NODE_HEADER) / (8 + value_size as usize) / 3 * 3) as u32
}

fn walk_node(
    src: &dyn BlockSource,
    rep: &mut Report,
    b: u64,
    value_size: u32,
    what: &str,
    depth: usize,
    out: &mut Vec<(u64, Vec<u8>)>,
) {
    if depth > MAX_DEPTH {
        rep.problem(
            Some(b),
            format!("{what}: deeper than {MAX_DEPTH} levels (a loop?)"),
        );
        return;
    }
    if !reach(rep, b) {
        rep.problem(Some(b), format!("{what}: node reached twice"));
        return;
    }
    let Some(d) = read_checked(
        src,
        rep,
        b,
        BlockKind::BtreeNode,
        8,
        &format!("{what} node"),
    ) else {
        return;
    };
    let flags = le32(&d, 4);
    let nr = le32(&d, 16);
    let max = le32(&d, 20);
    let vsize = le32(&d, 24);
    let leaf = match flags {
        INTERNAL_NODE => false,
        LEAF_NODE => true,
        f => {
            rep.problem(
                Some(b),
                format!("{what} node: flags {f} are neither internal nor leaf"),
            );
            return;
        }
    };
    let want_vsize = if leaf { value_size } else { 8 };
    if vsize != want_vsize {
        rep.problem(
            Some(b),
            format!("{what} node: value size {vsize}, should be {want_vsize}"),
        );
        return;
    }
    let want_max = btree_max_entries(vsize);
    if max != want_max {
        rep.problem(
            Some(b),
            format!("{what} node: max entries {max}, should be {want_max}"),
        );
        return;
    }
    if nr > max {
        rep.problem(
            Some(b),
            format!("{what} node: {nr} entries, more than its max of {max}"),
        );
        return;
    }
    let keys: Vec<u64> = (0..nr as usize)
        .map(|i| le64(&d, NODE_HEADER + 8 * i))
        .collect();
    if let Some(pair) = keys.windows(2).find(|pair| pair[0] >= pair[1]) {
        // Reported, and read on: a salvaging reader may still use the entries.
        rep.problem(
            Some(b),
            format!(
                "{what} node: keys out of order ({} then {})",
                pair[0], pair[1]
            ),
        );
    }
    let values_at = NODE_HEADER + 8 * max as usize;
    for (i, &key) in keys.iter().enumerate() {
        let v = values_at + i * vsize as usize;
        let value = d.get(v..v + vsize as usize).unwrap_or_default().to_vec();
        if leaf {
            out.push((key, value));
        } else {
            // Child i holds the keys from its own key up to (not including) the next one.
            let child = le64(&value, 0);
            let before = out.len();
            walk_node(src, rep, child, value_size, what, depth + 1, out);
            if let Some(&(first, _)) = out.get(before) {
                if first < key {
                    rep.problem(
                        Some(b),
                        format!(
                            "{what} node: child {child} starts at key {first}, below its key {key}"
                        ),
                    );
                }
            }
            if let (Some(&next), Some(&(last, _))) = (keys.get(i + 1), out[before..].last()) {
                if last >= next {
                    rep.problem(
                        Some(b),
                        format!(
                            "{what} node: child {child} ends at key {last}, not below the next key {next}"
                        ),
                    );
                }
            }
        }
    }
}

/// Reads the bitset of copied regions (`nr_regions` bits) from the array at `root`.
fn read_bitset(src: &dyn BlockSource, rep: &mut Report, root: u64, nr_regions: u64) {
    let nr_words = nr_regions.div_ceil(64);
    let nr_array_blocks = nr_words.div_ceil(u64::from(WORDS_PER_ARRAY_BLOCK));
    rep.words = vec![None; usize::try_from(nr_words).unwrap_or(0)];
    let leaves = walk_btree(src, rep, root, 8, "bitset btree");
    if leaves.len() as u64 != nr_array_blocks {
        rep.problem(
            None,
            format!(
                "bitset: {} array blocks, {nr_regions} regions need {nr_array_blocks}",
                leaves.len()
            ),
        );
    }
    for (index, value) in leaves {
        let b = le64(&value, 0);
        if index >= nr_array_blocks {
            rep.problem(
                Some(b),
                format!("bitset: array block index {index} past the end"),
            );
            continue;
        }
        if !reach(rep, b) {
            rep.problem(Some(b), "bitset: array block used twice");
            continue;
        }
        let before = rep.problems.len();
        let Some(d) = read_checked(src, rep, b, BlockKind::Array, 16, "bitset array block") else {
            continue;
        };
        if rep.problems.len() != before {
            // A bad checksum or location: its words are not to be trusted (unknown).
            continue;
        }
        let (max, nr, vsize) = (le32(&d, 4), le32(&d, 8), le32(&d, 12));
        let first = index * u64::from(WORDS_PER_ARRAY_BLOCK);
        let want = (nr_words - first).min(u64::from(WORDS_PER_ARRAY_BLOCK));
        if vsize != 8 || max != WORDS_PER_ARRAY_BLOCK || u64::from(nr) != want {
            rep.problem(
                Some(b),
                format!(
                    "bitset array block {index}: {nr} of {max} entries of {vsize} bytes, should be {want} of {WORDS_PER_ARRAY_BLOCK} of 8"
                ),
            );
            continue;
        }
        for i in 0..nr as usize {
            let w = le64(&d, 24 + 8 * i);
            let word = first + i as u64;
            let mut w = w;
            if word == nr_words - 1 && nr_regions % 64 != 0 {
                let beyond = !((1u64 << (nr_regions % 64)) - 1);
                if w & beyond != 0 {
                    rep.problem(
                        Some(b),
                        format!("bitset: bits set past the last region ({nr_regions})"),
                    );
                    w &= !beyond;
                }
            }
            if let Some(slot) = rep.words.get_mut(word as usize) {
                *slot = Some(w);
            }
        }
    }
}

/// Reads the metadata space map: every block's reference count.
fn read_space_map(src: &dyn BlockSource, rep: &mut Report, sm: SpaceMapRoot) {
    let nr_bitmaps = sm.nr_blocks.div_ceil(ENTRIES_PER_BITMAP);
    if nr_bitmaps as usize > MAX_METADATA_BITMAPS {
        rep.problem(
            None,
            format!(
                "space map: {} blocks need {nr_bitmaps} bitmaps, more than {MAX_METADATA_BITMAPS}",
                sm.nr_blocks
            ),
        );
        return;
    }
    if sm.nr_blocks > src.nr_blocks() {
        rep.problem(
            None,
            format!(
                "space map: counts {} blocks, the metadata has {}",
                sm.nr_blocks,
                src.nr_blocks()
            ),
        );
    }
    reach(rep, sm.bitmap_root);
    let Some(index) = read_checked(
        src,
        rep,
        sm.bitmap_root,
        BlockKind::SpaceMapIndex,
        8,
        "space map index",
    ) else {
        return;
    };
    // Blocks whose bitmap entry is 3: their count is in the reference count btree.
    let mut overflow = BTreeSet::new();
    // Blocks with a count above 0: what the superblock's nr_allocated counts.
    let mut allocated = 0u64;
    for i in 0..nr_bitmaps {
        let e = 16 + 16 * i as usize;
        let (b, nr_free, none_free_before) =
            (le64(&index, e), le32(&index, e + 8), le32(&index, e + 12));
        if !reach(rep, b) {
            rep.problem(Some(b), "space map: bitmap block used twice");
            continue;
        }
        let Some(d) = read_checked(
            src,
            rep,
            b,
            BlockKind::SpaceMapBitmap,
            8,
            "space map bitmap",
        ) else {
            continue;
        };
        let base = i * ENTRIES_PER_BITMAP;
        let count = |e: u64| {
            let word = le64(&d, 16 + 8 * (e / 32) as usize);
            let bit = (e % 32) * 2;
            (((word >> bit) & 1) << 1 | ((word >> (bit + 1)) & 1)) as u32
        };
        // The kernel counts every entry of a bitmap in its free count, those past the last
        // block too (they stay free).
        let n = (sm.nr_blocks - base).min(ENTRIES_PER_BITMAP);
        let mut free = (ENTRIES_PER_BITMAP - n) as u32;
        let mut first_free = None;
        for e in 0..n {
            match count(e) {
                0 => {
                    free += 1;
                    first_free.get_or_insert(e);
                }
                3 => {
                    allocated += 1;
                    overflow.insert(base + e);
                }
                c => {
                    allocated += 1;
                    rep.ref_counts.insert(base + e, c);
                }
            }
        }
        // The entries past the last block must stay free: they come into use, as they
        // are, when the metadata device grows (the kernel's sm_ll_extend).
        if let Some(e) = (n..ENTRIES_PER_BITMAP).find(|&e| count(e) != 0) {
            rep.problem(
                Some(b),
                format!(
                    "space map bitmap: entry {e} (block {}) is past the last block ({}) but not free",
                    base + e,
                    sm.nr_blocks
                ),
            );
        }
        if free != nr_free {
            rep.problem(
                Some(sm.bitmap_root),
                format!(
                    "space map index: bitmap {i} (block {b}) says {nr_free} free, it has {free}"
                ),
            );
        }
        // The kernel keeps none_free_before at or below the first free entry (its
        // allocator searches from there, so a higher one hides free blocks from it).
        let first_free = first_free.unwrap_or(n);
        if u64::from(none_free_before) > first_free {
            rep.problem(
                Some(sm.bitmap_root),
                format!(
                    "space map index: bitmap {i} (block {b}) says none free before entry {none_free_before}, its first free entry is {first_free}"
                ),
            );
        }
    }
    // The btree holds exactly the counts of the blocks whose bitmap entry is 3, and those
    // counts are above 2 (the kernel moves a count of 2 or less back to the bitmap).
    let mut in_btree = BTreeSet::new();
    if sm.ref_count_root != 0 {
        for (block, v) in walk_btree(src, rep, sm.ref_count_root, 4, "space map reference counts") {
            let c = le32(&v, 0);
            in_btree.insert(block);
            if !overflow.contains(&block) {
                // The kernel takes the bitmap's count, and never reads this one.
                let bitmap = rep.ref_counts.get(&block).copied().unwrap_or(0);
                rep.problem(
                    Some(block),
                    format!(
                        "space map: count {c} in the reference count btree, but {bitmap} (not 3) in the bitmap"
                    ),
                );
                continue;
            }
            if c < 3 {
                rep.problem(
                    Some(block),
                    format!("space map: count {c} in the reference count btree, should be above 2"),
                );
            }
            if c > 0 {
                rep.ref_counts.insert(block, c);
            }
        }
    }
    for b in overflow {
        if !in_btree.contains(&b) {
            rep.problem(
                Some(b),
                "space map: count above 2 but not in the reference count btree",
            );
        }
    }
    if allocated != sm.nr_allocated {
        rep.problem(
            Some(0),
            format!(
                "space map root: {} blocks allocated, the bitmaps count {allocated}",
                sm.nr_allocated
            ),
        );
    }
}

/// `THIN_SUPERBLOCK_MAGIC` (drivers/md/dm-thin-metadata.c), at the offset of ours.
pub const THIN_MAGIC: u64 = 27_022_010;

/// Why the start of an input (its first block, or less) is not a clone's metadata at all
/// (as opposed to damaged metadata): XML, or a thin pool's metadata. `None` otherwise.
pub fn foreign(head: &[u8]) -> Option<String> {
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'<') {
        return Some(
            "looks like XML, not binary metadata: give the metadata device or its image (clone_restore writes metadata from clone_dump's XML)"
                .into(),
        );
    }
    if head.len() >= offset::MAGIC + 8 && le64(head, offset::MAGIC) == THIN_MAGIC {
        return Some(format!(
            "is thin-pool metadata (superblock magic {THIN_MAGIC}), not a clone's: use thin-provisioning-tools (thin_check, thin_dump, thin_repair)"
        ));
    }
    None
}

/// How far to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The superblock only.
    Superblock,
    /// Everything.
    All,
}

/// Reads and checks the metadata in `src`.
pub fn read(src: &dyn BlockSource, depth: Depth) -> Report {
    let mut rep = Report::default();
    if src.nr_blocks() == 0 {
        rep.problem(None, "the metadata is shorter than one block");
        return rep;
    }
    reach(&mut rep, 0);
    let problems = rep.problems.len();
    let Some(d) = read_checked(
        src,
        &mut rep,
        0,
        BlockKind::Superblock,
        offset::BLOCKNR,
        "superblock",
    ) else {
        return rep;
    };
    if d.iter().all(|&b| b == 0) {
        rep.problems.truncate(problems);
        rep.problem(Some(0), "superblock: all zeroes (never formatted)");
        return rep;
    }
    let sb = Superblock::parse(&d);
    rep.superblock = sb;
    if sb.magic != MAGIC {
        rep.problem(
            Some(0),
            format!("superblock: magic {:#x}, should be {MAGIC:#x}", sb.magic),
        );
    }
    if sb.version != VERSION {
        rep.problem(
            Some(0),
            format!("superblock: version {}, should be {VERSION}", sb.version),
        );
    }
    let rs = sb.region_size;
    if !rs.is_power_of_two() || !(8..=1 << 21).contains(&rs) {
        rep.problem(
            Some(0),
            format!("superblock: region size {rs} is not a power of two of 8 to 2097152 sectors"),
        );
    }
    if sb.target_size == 0 {
        rep.problem(Some(0), "superblock: target size 0");
    }
    let nr_regions = sb.nr_regions();
    let array_blocks = nr_regions
        .div_ceil(64)
        .div_ceil(u64::from(WORDS_PER_ARRAY_BLOCK));
    if nr_regions > 1 << 31 {
        rep.problem(
            Some(0),
            format!("superblock: {nr_regions} regions, more than 2^31"),
        );
    } else if array_blocks >= src.nr_blocks() {
        // Checked before the bitset's words are allocated: a superblock that checks but
        // claims 2^31 regions on a small device would cost 0.5 GB for nothing.
        rep.problem(
            Some(0),
            format!(
                "superblock: {nr_regions} regions need {array_blocks} bitset array blocks, more than the metadata's {} blocks",
                src.nr_blocks()
            ),
        );
    }
    rep.superblock_ok = rep.problems.len() == problems;
    if depth == Depth::Superblock || !rep.superblock_ok {
        return rep;
    }
    read_bitset(src, &mut rep, sb.bitset_root, nr_regions);
    read_space_map(src, &mut rep, sb.space_map);
    // Every block in use must be reachable exactly as often as it is counted. A block
    // counted once and reached from nothing is a leak, a non-fatal problem: the kernel never
    // reuses it, and nothing reads it (thin_check's rule: any other count that differs is
    // damage).
    let blocks: BTreeSet<u64> = rep
        .reachable
        .keys()
        .chain(rep.ref_counts.keys())
        .copied()
        .collect();
    for b in blocks {
        let reached = rep.reachable.get(&b).copied().unwrap_or(0);
        let counted = rep.ref_counts.get(&b).copied().unwrap_or(0);
        match (reached, counted) {
            _ if reached == counted => {}
            (0, 1) => rep.non_fatal(
                Some(b),
                "leaked: counted 1 in the space map, reached from nothing (non-fatal: the block is never reused)",
            ),
            (_, 0) => rep.problem(
                Some(b),
                format!("in use (reached {reached} times) but free in the space map"),
            ),
            (0, _) => rep.problem(
                Some(b),
                format!("counted {counted} in the space map, reached from nothing"),
            ),
            _ => rep.problem(Some(b), format!("reached {reached} times, counted {counted}")),
        }
    }
    rep
}

// SPDX-License-Identifier: GPL-2.0
//! Writing fresh metadata: what `clone_restore` writes, in the layout both
//! kernel targets open (the persistent-data formats that `read` checks).
//!
//! Blocks, in order: the superblock (0), the space map's index block, its
//! bitmap blocks, the empty btree of reference counts above 2, the bitset's
//! array blocks, then its btree, built bottom-up. Every block written has a
//! reference count of 1; nothing else is allocated. Btree nodes hold what the
//! kernel's `calc_max_entries` allows (a multiple of 3) and are filled in key
//! order.

use crate::checksum::{self, BlockKind};
use crate::read::{ENTRIES_PER_BITMAP, MAX_METADATA_BITMAPS, VERSION, WORDS_PER_ARRAY_BLOCK};
use crate::superblock::{offset, MAGIC};
use crate::BLOCK_SIZE;

/// The most blocks the metadata space map can count (`DM_SM_METADATA_MAX_BLOCKS`).
pub const MAX_BLOCKS: u64 = MAX_METADATA_BITMAPS as u64 * ENTRIES_PER_BITMAP;

/// What to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Region size in sectors.
    pub region_size: u64,
    /// Target size in sectors.
    pub target_size: u64,
    /// The copied regions, as runs `(first, count)` in order.
    pub copied: Vec<(u64, u64)>,
}

impl Metadata {
    /// The number of regions (the last may be short).
    pub fn nr_regions(&self) -> u64 {
        self.target_size.div_ceil(self.region_size.max(1))
    }
}

/// The union of two lists of runs `(first, count)`, each in order: one list in order,
/// with runs that touch or overlap merged.
pub fn union_runs(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut all: Vec<(u64, u64)> = a.iter().chain(b).copied().filter(|&(_, n)| n > 0).collect();
    all.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(all.len());
    for (f, n) in all {
        let end = f.saturating_add(n);
        match merged.last_mut() {
            Some((mf, mn)) if mf.saturating_add(*mn) >= f => {
                *mn = (*mn).max(end - *mf);
            }
            _ => merged.push((f, n)),
        }
    }
    merged
}

fn put32(d: &mut [u8], at: usize, v: u32) {
    d[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(d: &mut [u8], at: usize, v: u64) {
    d[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The kernel's `calc_max_entries` for a btree node with values of `value_size` bytes.
fn btree_max_entries(value_size: usize) -> usize {
    (BLOCK_SIZE - 32) / (8 + value_size) / 3 * 3
}

/// A btree node at `b` holding `entries` (key, value bytes).
fn btree_node(b: u64, leaf: bool, value_size: usize, entries: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let max = btree_max_entries(value_size);
    let mut d = vec![0u8; BLOCK_SIZE];
    put32(&mut d, 4, if leaf { 2 } else { 1 });
    put64(&mut d, 8, b);
    put32(&mut d, 16, entries.len() as u32);
    put32(&mut d, 20, max as u32);
    put32(&mut d, 24, value_size as u32);
    for (i, (k, v)) in entries.iter().enumerate() {
        put64(&mut d, 32 + 8 * i, *k);
        let at = 32 + 8 * max + value_size * i;
        d[at..at + value_size].copy_from_slice(v);
    }
    checksum::seal(&mut d, BlockKind::BtreeNode);
    d
}

/// Checks what `m` asks for against a metadata device of `device_blocks` blocks.
pub fn validate(m: &Metadata, device_blocks: u64) -> Result<(), String> {
    let rs = m.region_size;
    if !rs.is_power_of_two() || !(8..=1 << 21).contains(&rs) {
        return Err(format!(
            "region size {rs} is not a power of two of 8 to 2097152 sectors"
        ));
    }
    if m.target_size == 0 {
        return Err("target size 0".into());
    }
    let n = m.nr_regions();
    if n > 1 << 31 {
        return Err(format!("{n} regions, more than 2^31: use larger regions"));
    }
    let mut end = 0;
    for &(first, count) in &m.copied {
        if count == 0 || first < end || first.checked_add(count).is_none_or(|e| e > n) {
            return Err(format!(
                "copied run {first}+{count} is empty, out of order or past the last region ({n})"
            ));
        }
        end = first + count;
    }
    let need = blocks_needed(n);
    if device_blocks.min(MAX_BLOCKS) < need {
        return Err(format!(
            "the metadata device has {device_blocks} blocks of 4 KiB; {n} regions need at least {need}"
        ));
    }
    Ok(())
}

/// Blocks used by metadata for `nr_regions` regions on a device of at most `MAX_BLOCKS`
/// blocks (the space map's bitmaps for the largest device included).
pub fn blocks_needed(nr_regions: u64) -> u64 {
    let words = nr_regions.div_ceil(64);
    let arrays = words.div_ceil(u64::from(WORDS_PER_ARRAY_BLOCK));
    let per_node = btree_max_entries(8) as u64;
    let mut nodes = 0;
    let mut level = arrays.max(1);
    loop {
        let n = level.div_ceil(per_node).max(1);
        nodes += n;
        if n == 1 {
            break;
        }
        level = n;
    }
    // Superblock, index, bitmaps, the reference count btree's leaf.
    1 + 1 + MAX_METADATA_BITMAPS as u64 + 1 + arrays + nodes
}

/// The blocks to write for `m` on a device of `device_blocks` blocks: `(location, data)`.
/// Blocks not listed are free (their contents do not matter).
pub fn write(m: &Metadata, device_blocks: u64) -> Result<Vec<(u64, Vec<u8>)>, String> {
    validate(m, device_blocks)?;
    let nr_blocks = device_blocks.min(MAX_BLOCKS);
    let nr_regions = m.nr_regions();
    let nr_words = nr_regions.div_ceil(64);
    let nr_bitmaps = nr_blocks.div_ceil(ENTRIES_PER_BITMAP);
    let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut next = 1u64;
    let mut alloc = || {
        let b = next;
        next += 1;
        b
    };
    let index_b = alloc();
    let bitmap_bs: Vec<u64> = (0..nr_bitmaps).map(|_| alloc()).collect();
    let refcount_b = alloc();
    // The bitset's words.
    let mut words = vec![0u64; nr_words as usize];
    for &(first, count) in &m.copied {
        for r in first..first + count {
            words[(r / 64) as usize] |= 1 << (r % 64);
        }
    }
    let mut leaves = Vec::new();
    for (i, chunk) in words.chunks(WORDS_PER_ARRAY_BLOCK as usize).enumerate() {
        let b = alloc();
        let mut d = vec![0u8; BLOCK_SIZE];
        put32(&mut d, 4, WORDS_PER_ARRAY_BLOCK);
        put32(&mut d, 8, chunk.len() as u32);
        put32(&mut d, 12, 8);
        put64(&mut d, 16, b);
        for (j, w) in chunk.iter().enumerate() {
            put64(&mut d, 24 + 8 * j, *w);
        }
        checksum::seal(&mut d, BlockKind::Array);
        out.push((b, d));
        leaves.push((i as u64, b.to_le_bytes().to_vec()));
    }
    // The btree, bottom-up.
    let per_node = btree_max_entries(8);
    let mut level = leaves;
    let mut leaf = true;
    let root = loop {
        let mut up = Vec::new();
        for chunk in level.chunks(per_node) {
            let b = alloc();
            out.push((b, btree_node(b, leaf, 8, chunk)));
            up.push((chunk[0].0, b.to_le_bytes().to_vec()));
        }
        if level.is_empty() {
            let b = alloc();
            out.push((b, btree_node(b, leaf, 8, &[])));
            break b;
        }
        if up.len() == 1 {
            break u64::from_le_bytes(up[0].1.clone().try_into().unwrap_or_default());
        }
        level = up;
        leaf = false;
    };
    out.push((refcount_b, btree_node(refcount_b, true, 4, &[])));
    let used = next;
    // The space map: blocks 0..used have a count of 1.
    let mut index = vec![0u8; BLOCK_SIZE];
    put64(&mut index, 8, index_b);
    for (i, &b) in bitmap_bs.iter().enumerate() {
        let base = i as u64 * ENTRIES_PER_BITMAP;
        let n = (nr_blocks - base).min(ENTRIES_PER_BITMAP);
        let mut d = vec![0u8; BLOCK_SIZE];
        put64(&mut d, 8, b);
        // Entries past the last block count as free (as the kernel counts them).
        let mut free = (ENTRIES_PER_BITMAP - n) as u32;
        let mut first_free = None;
        for e in 0..n {
            if base + e < used {
                // Count 1: the low bit of the entry's pair (`lo`), bit 2e + 1 of its word.
                let at = 16 + 8 * (e / 32) as usize;
                let mut w = u64::from_le_bytes(d[at..at + 8].try_into().unwrap_or_default());
                w |= 1 << ((e % 32) * 2 + 1);
                put64(&mut d, at, w);
            } else {
                free += 1;
                first_free.get_or_insert(e);
            }
        }
        checksum::seal(&mut d, BlockKind::SpaceMapBitmap);
        out.push((b, d));
        let at = 16 + 16 * i;
        put64(&mut index, at, b);
        put32(&mut index, at + 8, free);
        put32(&mut index, at + 12, first_free.unwrap_or(n) as u32);
    }
    checksum::seal(&mut index, BlockKind::SpaceMapIndex);
    out.push((index_b, index));
    // The superblock.
    let mut sb = vec![0u8; BLOCK_SIZE];
    put64(&mut sb, offset::BLOCKNR, 0);
    put64(&mut sb, offset::MAGIC, MAGIC);
    put32(&mut sb, offset::VERSION, VERSION);
    let sm = offset::SPACE_MAP_ROOT;
    put64(&mut sb, sm, nr_blocks);
    put64(&mut sb, sm + 8, used);
    put64(&mut sb, sm + 16, index_b);
    put64(&mut sb, sm + 24, refcount_b);
    put64(&mut sb, offset::REGION_SIZE, m.region_size);
    put64(&mut sb, offset::TARGET_SIZE, m.target_size);
    put64(&mut sb, offset::BITSET_ROOT, root);
    checksum::seal(&mut sb, BlockKind::Superblock);
    out.push((0, sb));
    out.sort_by_key(|(b, _)| *b);
    Ok(out)
}

/// Writes `blocks` (from [`write`]) to `out`: the superblock zeroed first, then every other
/// block, synced, then the superblock: a failure midway leaves no metadata that looks valid.
pub fn write_to(out: &std::fs::File, blocks: &[(u64, Vec<u8>)]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    out.write_all_at(&[0u8; BLOCK_SIZE], 0)?;
    for (b, d) in blocks.iter().filter(|(b, _)| *b != 0) {
        out.write_all_at(d, b * BLOCK_SIZE as u64)?;
    }
    out.sync_data()?;
    if let Some((_, sb)) = blocks.iter().find(|(b, _)| *b == 0) {
        out.write_all_at(sb, 0)?;
    }
    out.sync_data()
}

// SPDX-License-Identifier: GPL-2.0
//! How much metadata a clone needs: the user guide's sizing ("Metadata device
//! size"), which the metadata_size selftest holds the kernel targets to.
//!
//! For N regions: W = ceil(N / 64) words, A = ceil(W / 509) array blocks,
//! L = ceil(A / 252) btree leaves, plus a root if L > 1 (one more level per 252
//! leaves beyond). At rest the bitset takes A + L (+ the upper levels) blocks.
//! A transaction that changes every array block (a discard of the whole
//! device) copies each of them once: the worst case is
//! 2 * (bitset blocks) + 2 * bitmap blocks + 8. The suggestion is the metadata
//! at rest plus what the kernel target wants free to rewrite the whole bitset in
//! one commit ([`rewrite_free_blocks`]), plus 4 MiB: about N / 4 bytes plus 2 %,
//! plus 4 MiB. (It was N / 4 bytes plus 4 MiB, which from 2^30 regions left no
//! room for the rewrite, and at 2^31 not even for the worst case.)

use crate::read::{ENTRIES_PER_BITMAP, WORDS_PER_ARRAY_BLOCK};

/// Entries of a btree node holding 8-byte values (the kernel's `calc_max_entries`).
const NODE_ENTRIES: u64 = 252;
/// The smallest metadata device the targets take, in blocks.
pub const MIN_BLOCKS: u64 = 8;
/// Blocks beyond this are not used (the space map's limit).
pub const MAX_BLOCKS: u64 = crate::write::MAX_BLOCKS;

/// Blocks the superblock and the space map take beside the bitset, at most (the
/// superblock, the space map's index and root, a bitmap block per
/// [`ENTRIES_PER_BITMAP`] blocks counted apart).
const FIXED_BLOCKS: u64 = 8;

/// Free blocks the kernel target wants before it rewrites the whole bitset of
/// `array_blocks` array blocks in one commit, on a device of `total_blocks`
/// (rust/md/clone/metadata.rs, `Metadata::room_to_rewrite`; keep the two in
/// step): the new array blocks, twice their btree at half-full nodes plus 4, a
/// bitmap block per [`ENTRIES_PER_BITMAP`] blocks of the device, and 16. With
/// less free, a commit that changed much of the map writes its words one by one.
pub fn rewrite_free_blocks(array_blocks: u64, total_blocks: u64) -> u64 {
    let btree = array_blocks.div_ceil(NODE_ENTRIES / 2) + 4;
    array_blocks + 2 * btree + total_blocks.div_ceil(ENTRIES_PER_BITMAP) + 16
}

/// The largest region size, in sectors (1 GiB).
pub const MAX_REGION_SECTORS: u64 = 1 << 21;

/// The sizes for one clone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub regions: u64,
    pub array_blocks: u64,
    /// Btree nodes above the array blocks.
    pub btree_blocks: u64,
    /// Array and btree blocks: what the bitset takes at rest.
    pub at_rest_blocks: u64,
    /// Blocks the worst transaction needs on a device of `suggested_bytes`.
    pub worst_blocks: u64,
    /// The suggested metadata device size, in bytes.
    pub suggested_bytes: u64,
}

/// Sizes for a target of `target_sectors` in regions of `region_sectors`, or why not.
pub fn sizes(target_sectors: u64, region_sectors: u64) -> Result<Sizes, String> {
    if !region_sectors.is_power_of_two() || !(8..=MAX_REGION_SECTORS).contains(&region_sectors) {
        return Err(format!(
            "region size {region_sectors} sectors is not a power of two of 8 to 2097152"
        ));
    }
    if target_sectors == 0 {
        return Err("the device size is 0".into());
    }
    let regions = target_sectors.div_ceil(region_sectors);
    if regions > 1 << 31 {
        let least = target_sectors.div_ceil(1 << 31).next_power_of_two().max(8);
        if least > MAX_REGION_SECTORS {
            return Err(format!(
                "{regions} regions: the device is larger than any clone, more than 2^31 regions of {MAX_REGION_SECTORS} sectors (the largest)"
            ));
        }
        return Err(format!(
            "{regions} regions, more than 2^31: use regions of at least {} sectors",
            least
        ));
    }
    let words = regions.div_ceil(64);
    let array_blocks = words.div_ceil(u64::from(WORDS_PER_ARRAY_BLOCK));
    let mut btree_blocks = 0;
    let mut level = array_blocks;
    loop {
        let n = level.div_ceil(NODE_ENTRIES);
        btree_blocks += n;
        if n <= 1 {
            break;
        }
        level = n;
    }
    let at_rest_blocks = array_blocks + btree_blocks;
    // The rewrite's room counted on a device larger than the suggestion (its
    // bitmap count is then an upper bound).
    let bound = 2 * (at_rest_blocks + FIXED_BLOCKS) + 2048;
    let rewrite_total = at_rest_blocks + FIXED_BLOCKS + rewrite_free_blocks(array_blocks, bound);
    let suggested_bytes = rewrite_total * 4096 + (4 << 20);
    let bitmaps = (suggested_bytes / 4096)
        .min(MAX_BLOCKS)
        .div_ceil(ENTRIES_PER_BITMAP);
    Ok(Sizes {
        regions,
        array_blocks,
        btree_blocks,
        at_rest_blocks,
        worst_blocks: 2 * at_rest_blocks + 2 * bitmaps + 8,
        suggested_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIB: u64 = 1 << 31; // sectors

    #[test]
    fn the_user_guides_table() {
        // region size, regions, array blocks, at rest, worst (MiB, 1 decimal), suggested
        let s = sizes(TIB, 8).unwrap();
        assert_eq!(
            (s.regions, s.array_blocks, s.at_rest_blocks),
            (268_435_456, 8241, 8275)
        );
        assert_eq!(s.worst_blocks, 2 * 8275 + 2 * 2 + 8);
        assert_eq!(s.suggested_bytes, 70824 << 10);
        let s = sizes(TIB, 128).unwrap();
        assert_eq!(
            (s.regions, s.array_blocks, s.at_rest_blocks),
            (16_777_216, 516, 520)
        );
        assert_eq!(s.suggested_bytes, 8412 << 10);
        let s = sizes(TIB, 2048).unwrap();
        assert_eq!(
            (s.regions, s.array_blocks, s.at_rest_blocks),
            (1_048_576, 33, 34)
        );
        // The guide's worst case for 1 TiB in 1 MiB regions: 78 blocks.
        assert_eq!(s.worst_blocks, 78);
        assert_eq!(s.suggested_bytes, 4504 << 10);
    }

    /// The suggestion leaves the kernel target room to rewrite the whole bitset
    /// in one commit (its `room_to_rewrite`, as `rewrite_free_blocks` restates
    /// it), and holds the worst case, at every size up to 2^31 regions. (The
    /// old rule, N / 4 bytes + 4 MiB, failed the first from 2^30 regions and
    /// both at 2^31; seen failing.)
    #[test]
    fn the_suggestion_holds_the_worst_case_and_the_rewrite() {
        for log in 0..=31u32 {
            for region in [8u64, 128, 2048] {
                let s = sizes((1u64 << log) * region, region).unwrap();
                let total = s.suggested_bytes / 4096;
                let free = total - s.at_rest_blocks - FIXED_BLOCKS;
                assert!(
                    free >= rewrite_free_blocks(s.array_blocks, total),
                    "2^{log} regions: {total} blocks leave {free} free"
                );
                assert!(total >= s.worst_blocks, "2^{log} regions");
            }
        }
    }

    #[test]
    fn refusals() {
        assert!(sizes(TIB, 12).unwrap_err().contains("power of two"));
        assert!(sizes(0, 8).unwrap_err().contains("size is 0"));
        let e = sizes(1 << 40, 8).unwrap_err();
        assert!(e.contains("at least 512 sectors"), "{e}");
        assert!(sizes(1 << 40, 512).is_ok());
        // Past 2^31 regions of the largest region size, no region size is suggested.
        assert!(sizes(1 << 52, 1 << 21).is_ok());
        for device in [(1 << 52) + 1, 1 << 60, u64::MAX] {
            let e = sizes(device, 8).unwrap_err();
            assert!(
                e.contains("more than 2^31 regions of 2097152 sectors (the largest)"),
                "{device}: {e}"
            );
        }
    }

    #[test]
    fn tiny() {
        let s = sizes(1, 8).unwrap();
        assert_eq!((s.regions, s.array_blocks, s.btree_blocks), (1, 1, 1));
    }
}

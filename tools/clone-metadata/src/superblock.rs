// SPDX-License-Identifier: GPL-2.0
//! Where the superblock (block 0) keeps its fields: `struct superblock_disk`
//! of drivers/md/dm-clone-metadata.c, packed, little-endian.

/// Byte offsets of the superblock's fields.
pub mod offset {
    /// `__le32 csum`.
    pub const CSUM: usize = 0;
    /// `__le32 flags`.
    pub const FLAGS: usize = 4;
    /// `__le64 blocknr`: must be 0, the block it lives in.
    pub const BLOCKNR: usize = 8;
    /// `__u8 uuid[16]` (unused, zero).
    pub const UUID: usize = 16;
    /// `__le64 magic`.
    pub const MAGIC: usize = 32;
    /// `__le32 version`.
    pub const VERSION: usize = 40;
    /// The metadata space map's root, 128 bytes: nr_blocks, nr_allocated,
    /// bitmap_root (the index block), ref_count_root (a btree), each `__le64`.
    pub const SPACE_MAP_ROOT: usize = 44;
    /// `__le64 region_size` in sectors.
    pub const REGION_SIZE: usize = 172;
    /// `__le64 target_size` in sectors.
    pub const TARGET_SIZE: usize = 180;
    /// `__le64 bitset_root`: the root of the copied-region bitset's array btree.
    pub const BITSET_ROOT: usize = 188;
}

/// `SUPERBLOCK_MAGIC`.
pub const MAGIC: u64 = 0x8af2_7f64;

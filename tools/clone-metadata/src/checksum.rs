// SPDX-License-Identifier: GPL-2.0
//! Block checksums: crc32c of the block after its first four bytes, with the
//! kernel's seed of !0 and no final inversion (`dm_bm_checksum`), XORed with a
//! constant per kind of block, stored little-endian in the first four bytes.

/// The kinds of metadata block and the XOR constant of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// The clone superblock (drivers/md/dm-clone-metadata.c).
    Superblock,
    /// A btree node (persistent-data/dm-btree-spine.c).
    BtreeNode,
    /// An array block (persistent-data/dm-array.c).
    Array,
    /// The metadata space map's index block (dm-space-map-common.c).
    SpaceMapIndex,
    /// A space map bitmap block (dm-space-map-common.c).
    SpaceMapBitmap,
}

impl BlockKind {
    /// The kind's XOR constant.
    pub fn xor(self) -> u32 {
        match self {
            BlockKind::Superblock => 257_649_492,
            BlockKind::BtreeNode => 121_107,
            BlockKind::Array => 595_846_735,
            BlockKind::SpaceMapIndex => 160_478,
            BlockKind::SpaceMapBitmap => 240_779,
        }
    }

    /// The kind named on a command line: superblock, btree, array, index, bitmap.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "superblock" => BlockKind::Superblock,
            "btree" => BlockKind::BtreeNode,
            "array" => BlockKind::Array,
            "index" => BlockKind::SpaceMapIndex,
            "bitmap" => BlockKind::SpaceMapBitmap,
            _ => return None,
        })
    }
}

/// The checksum a block of `kind` must carry. Blocks shorter than 4 bytes have none.
pub fn compute(block: &[u8], kind: BlockKind) -> u32 {
    let body = block.get(4..).unwrap_or(&[]);
    // crc32c() inverts before and after; the kernel's crc32c(~0, ...) does neither after.
    !crc32c::crc32c(body) ^ kind.xor()
}

/// The checksum stored in a block.
pub fn stored(block: &[u8]) -> Option<u32> {
    let b = block.get(..4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Store the right checksum in a block.
pub fn seal(block: &mut [u8], kind: BlockKind) {
    let c = compute(block, kind).to_le_bytes();
    if let Some(head) = block.get_mut(..4) {
        head.copy_from_slice(&c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's crc32c(~0, data, len), bit by bit (polynomial 0x82f63b78).
    fn kernel_crc32c(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82f6_3b78
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn matches_the_kernels_dm_bm_checksum() {
        let mut block = vec![0u8; 4096];
        for (i, b) in block.iter_mut().enumerate() {
            *b = (i * 7 % 251) as u8;
        }
        for kind in [
            BlockKind::Superblock,
            BlockKind::BtreeNode,
            BlockKind::Array,
        ] {
            assert_eq!(
                compute(&block, kind),
                kernel_crc32c(&block[4..]) ^ kind.xor()
            );
        }
    }

    #[test]
    fn seal_makes_a_block_valid_and_a_flip_invalid() {
        let mut block = vec![0x5au8; 4096];
        seal(&mut block, BlockKind::Array);
        assert_eq!(stored(&block), Some(compute(&block, BlockKind::Array)));
        assert_ne!(stored(&block), Some(compute(&block, BlockKind::BtreeNode)));
        block[100] ^= 1;
        assert_ne!(stored(&block), Some(compute(&block, BlockKind::Array)));
    }

    #[test]
    fn names() {
        assert_eq!(BlockKind::from_name("btree"), Some(BlockKind::BtreeNode));
        assert_eq!(BlockKind::from_name("nope"), None);
    }
}

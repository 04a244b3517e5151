// SPDX-License-Identifier: GPL-2.0
//! The checker against damage, one case per check `read` makes: each case
//! takes metadata the writer made, damages one field of one block (and, where
//! the case is about the field and not the checksum, seals the block again so
//! that the field's own check is what is tested), and expects the report to
//! name the damage and the block it is in.

use clone_metadata::checksum::{self, BlockKind};
use clone_metadata::read::{self, BlockSource, Depth, Memory, Report};
use clone_metadata::superblock::offset;
use clone_metadata::write::{self, Metadata};
use clone_metadata::BLOCK_SIZE;
use BlockKind::{Array, BtreeNode, SpaceMapBitmap, SpaceMapIndex, Superblock};

/// Offsets in the superblock's space map root.
const SM_NR_BLOCKS: usize = offset::SPACE_MAP_ROOT;
const SM_NR_ALLOCATED: usize = offset::SPACE_MAP_ROOT + 8;
const SM_BITMAP_ROOT: usize = offset::SPACE_MAP_ROOT + 16;
const SM_REF_COUNT_ROOT: usize = offset::SPACE_MAP_ROOT + 24;
/// Btree node header fields.
const NODE_FLAGS: usize = 4;
const NODE_BLOCKNR: usize = 8;
const NODE_NR: usize = 16;
const NODE_MAX: usize = 20;
const NODE_VSIZE: usize = 24;
const NODE_KEYS: usize = 32;
/// Array block header fields.
const ARRAY_MAX: usize = 4;
const ARRAY_NR: usize = 8;
const ARRAY_VSIZE: usize = 12;
const ARRAY_BLOCKNR: usize = 16;
const ARRAY_WORDS: usize = 24;
/// Space map index: its blocknr, and its first entry (blocknr, nr_free, none_free_before).
const INDEX_BLOCKNR: usize = 8;
const ENTRY_BLOCKNR: usize = 16;
const ENTRY_NR_FREE: usize = 24;
const ENTRY_NONE_FREE_BEFORE: usize = 28;
/// A space map bitmap's blocknr.
const BITMAP_BLOCKNR: usize = 8;

/// What a case starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    /// 250 regions (the last word not full), one array block, a btree of one leaf; 1024
    /// blocks, of which 6 are used: 0 superblock, 1 index, 2 bitmap, 3 reference count
    /// btree, 4 array block, 5 bitset btree leaf.
    Small,
    /// 253 array blocks: a bitset btree of an internal root and two leaves (252 entries
    /// and 1); 2048 blocks.
    Deep,
}

impl Base {
    fn metadata(self) -> (Metadata, u64) {
        match self {
            Base::Small => (
                Metadata {
                    region_size: 8,
                    target_size: 2000,
                    copied: vec![(0, 10), (100, 2), (249, 1)],
                },
                1024,
            ),
            Base::Deep => {
                let regions = 253 * 509 * 64;
                (
                    Metadata {
                        region_size: 8,
                        target_size: regions * 8,
                        copied: vec![(0, 3), (regions - 64, 64)],
                    },
                    2048,
                )
            }
        }
    }

    fn image(self) -> Vec<u8> {
        let (m, device_blocks) = self.metadata();
        let mut img = vec![0u8; device_blocks as usize * BLOCK_SIZE];
        for (b, d) in write::write(&m, device_blocks).expect("write") {
            img[b as usize * BLOCK_SIZE..][..BLOCK_SIZE].copy_from_slice(&d);
        }
        img
    }
}

fn block(img: &mut [u8], b: u64) -> &mut [u8] {
    &mut img[b as usize * BLOCK_SIZE..][..BLOCK_SIZE]
}

fn le32(d: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(d[at..at + 4].try_into().unwrap())
}

fn le64(d: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(d[at..at + 8].try_into().unwrap())
}

/// Sets a 32-bit field of block `b` and seals the block again as `kind`.
fn set32(img: &mut [u8], b: u64, at: usize, v: u32, kind: BlockKind) {
    let d = block(img, b);
    d[at..at + 4].copy_from_slice(&v.to_le_bytes());
    checksum::seal(d, kind);
}

/// Sets a 64-bit field of block `b` and seals the block again as `kind`.
fn set64(img: &mut [u8], b: u64, at: usize, v: u64, kind: BlockKind) {
    let d = block(img, b);
    d[at..at + 8].copy_from_slice(&v.to_le_bytes());
    checksum::seal(d, kind);
}

/// Flips a bit of block `b`, leaving its checksum as it was.
fn flip(img: &mut [u8], b: u64, at: usize) {
    block(img, b)[at] ^= 1;
}

/// Where a node's values start.
fn node_values(d: &[u8]) -> usize {
    NODE_KEYS + 8 * le32(d, NODE_MAX) as usize
}

/// The 64-bit values of node `b` (children, or array blocks).
fn node_children(img: &[u8], b: u64) -> Vec<u64> {
    let d = &img[b as usize * BLOCK_SIZE..][..BLOCK_SIZE];
    let at = node_values(d);
    (0..le32(d, NODE_NR) as usize)
        .map(|i| le64(d, at + 8 * i))
        .collect()
}

/// Sets key `i` of btree node `b`.
fn set_key(img: &mut [u8], b: u64, i: usize, key: u64) {
    set64(img, b, NODE_KEYS + 8 * i, key, BlockKind::BtreeNode);
}

/// Sets 64-bit value `i` of btree node `b`.
fn set_value(img: &mut [u8], b: u64, i: usize, v: u64) {
    let at = node_values(block(img, b)) + 8 * i;
    set64(img, b, at, v, BlockKind::BtreeNode);
}

/// Writes a new internal node at `b` with the one entry `(key, child)`.
fn internal_node(img: &mut [u8], b: u64, key: u64, child: u64) {
    let d = block(img, b);
    d.fill(0);
    d[NODE_FLAGS..][..4].copy_from_slice(&1u32.to_le_bytes());
    d[NODE_BLOCKNR..][..8].copy_from_slice(&b.to_le_bytes());
    d[NODE_NR..][..4].copy_from_slice(&1u32.to_le_bytes());
    d[NODE_MAX..][..4].copy_from_slice(&252u32.to_le_bytes());
    d[NODE_VSIZE..][..4].copy_from_slice(&8u32.to_le_bytes());
    d[NODE_KEYS..][..8].copy_from_slice(&key.to_le_bytes());
    d[NODE_KEYS + 8 * 252..][..8].copy_from_slice(&child.to_le_bytes());
    checksum::seal(d, BlockKind::BtreeNode);
}

/// Sets block `target`'s reference count in the (first) bitmap: 0 to 3.
fn set_count(img: &mut [u8], l: &Layout, target: u64, count: u64) {
    let at = 16 + 8 * (target / 32) as usize;
    let (hi, lo) = (2 * (target % 32), 2 * (target % 32) + 1);
    let d = block(img, l.bitmap);
    let mut w = le64(d, at) & !(1 << hi) & !(1 << lo);
    w |= (count >> 1) << hi | (count & 1) << lo;
    d[at..at + 8].copy_from_slice(&w.to_le_bytes());
    checksum::seal(d, BlockKind::SpaceMapBitmap);
}

/// Makes the reference count btree's leaf hold `entries` (block, count).
fn set_ref_counts(img: &mut [u8], l: &Layout, entries: &[(u64, u32)]) {
    let d = block(img, l.ref_count);
    let values = node_values(d);
    d[NODE_NR..][..4].copy_from_slice(&(entries.len() as u32).to_le_bytes());
    for (i, &(b, c)) in entries.iter().enumerate() {
        d[NODE_KEYS + 8 * i..][..8].copy_from_slice(&b.to_le_bytes());
        d[values + 4 * i..][..4].copy_from_slice(&c.to_le_bytes());
    }
    checksum::seal(d, BlockKind::BtreeNode);
}

/// Where the base image keeps each structure.
#[derive(Debug)]
struct Layout {
    index: u64,
    bitmap: u64,
    ref_count: u64,
    /// The bitset btree's root, its leaves (the root itself if it is a leaf), and the
    /// array blocks, in order.
    root: u64,
    leaves: Vec<u64>,
    arrays: Vec<u64>,
}

impl Layout {
    fn of(img: &[u8]) -> Self {
        let sb = &img[..BLOCK_SIZE];
        let index = le64(sb, SM_BITMAP_ROOT);
        let root = le64(sb, offset::BITSET_ROOT);
        let flags = le32(&img[root as usize * BLOCK_SIZE..], NODE_FLAGS);
        let leaves = if flags == 1 {
            node_children(img, root)
        } else {
            vec![root]
        };
        let arrays = leaves.iter().flat_map(|&b| node_children(img, b)).collect();
        Self {
            index,
            bitmap: le64(&img[index as usize * BLOCK_SIZE..], ENTRY_BLOCKNR),
            ref_count: le64(sb, SM_REF_COUNT_ROOT),
            root,
            leaves,
            arrays,
        }
    }
}

/// The block a problem must name.
#[derive(Debug, Clone, Copy)]
enum At {
    /// None: the metadata as a whole.
    Whole,
    Super,
    Index,
    Bitmap,
    RefCount,
    Root,
    Leaf(usize),
    Array(usize),
    Block(u64),
}

impl At {
    fn block(self, l: &Layout) -> Option<u64> {
        Some(match self {
            At::Whole => return None,
            At::Super => 0,
            At::Index => l.index,
            At::Bitmap => l.bitmap,
            At::RefCount => l.ref_count,
            At::Root => l.root,
            At::Leaf(i) => l.leaves[i],
            At::Array(i) => l.arrays[i],
            At::Block(b) => b,
        })
    }
}

type Damage = fn(&mut Vec<u8>, &Layout);

/// (what is damaged, the base image, the damage, the block the problem names, what it says)
type Case = (&'static str, Base, Damage, At, &'static str);

/// The superblock's block.
const SB: u64 = 0;

#[rustfmt::skip]
const CASES: &[Case] = &[
    // The image as a whole.
    ("metadata shorter than one block", Base::Small, |img, _| img.truncate(100),
        At::Whole, "the metadata is shorter than one block"),
    // Superblock (block 0).
    ("superblock all zeroes", Base::Small, |img, _| block(img, SB).fill(0),
        At::Super, "superblock: all zeroes (never formatted)"),
    ("superblock checksum", Base::Small, |img, _| flip(img, SB, offset::CSUM),
        At::Super, "superblock: bad checksum"),
    ("superblock blocknr", Base::Small, |img, _| set64(img, SB, offset::BLOCKNR, 3, Superblock),
        At::Super, "superblock: says it is block 3"),
    ("superblock magic", Base::Small, |img, _| set64(img, SB, offset::MAGIC, 0x8af2_7f65, Superblock),
        At::Super, "superblock: magic 0x8af27f65, should be 0x8af27f64"),
    ("superblock version 2", Base::Small, |img, _| set32(img, SB, offset::VERSION, 2, Superblock),
        At::Super, "superblock: version 2, should be 1"),
    ("superblock version 0", Base::Small, |img, _| set32(img, SB, offset::VERSION, 0, Superblock),
        At::Super, "superblock: version 0, should be 1"),
    ("region size not a power of two", Base::Small,
        |img, _| set64(img, SB, offset::REGION_SIZE, 12, Superblock),
        At::Super, "superblock: region size 12 is not a power of two of 8 to 2097152"),
    ("region size below 8 sectors", Base::Small,
        |img, _| set64(img, SB, offset::REGION_SIZE, 4, Superblock),
        At::Super, "superblock: region size 4 is not"),
    ("region size above 2097152 sectors", Base::Small,
        |img, _| set64(img, SB, offset::REGION_SIZE, 1 << 22, Superblock),
        At::Super, "superblock: region size 4194304 is not"),
    ("target size 0", Base::Small, |img, _| set64(img, SB, offset::TARGET_SIZE, 0, Superblock),
        At::Super, "superblock: target size 0"),
    ("more than 2^31 regions", Base::Small,
        |img, _| set64(img, SB, offset::TARGET_SIZE, 8 * ((1 << 31) + 1), Superblock),
        At::Super, "superblock: 2147483649 regions, more than 2^31"),
    ("2^31 regions on a device of 1024 blocks", Base::Small,
        |img, _| set64(img, SB, offset::TARGET_SIZE, 8 << 31, Superblock),
        At::Super,
        "superblock: 2147483648 regions need 65923 bitset array blocks, more than the metadata's 1024 blocks"),
    ("target size longer than the bitset", Base::Small,
        |img, _| set64(img, SB, offset::TARGET_SIZE, 1 << 20, Superblock),
        At::Whole, "bitset: 1 array blocks, 131072 regions need 5"),
    // The superblock's space map root.
    ("space map nr_blocks needing more than 255 bitmaps", Base::Small,
        |img, _| set64(img, SB, SM_NR_BLOCKS, 255 * 16320 + 1, Superblock),
        At::Whole, "space map: 4161601 blocks need 256 bitmaps, more than 255"),
    ("space map nr_blocks past the metadata's end", Base::Small,
        |img, _| set64(img, SB, SM_NR_BLOCKS, 2000, Superblock),
        At::Whole, "space map: counts 2000 blocks, the metadata has 1024"),
    ("space map nr_allocated", Base::Small, |img, _| set64(img, SB, SM_NR_ALLOCATED, 7, Superblock),
        At::Super, "space map root: 7 blocks allocated, the bitmaps count 6"),
    ("space map bitmap_root past the end", Base::Small,
        |img, _| set64(img, SB, SM_BITMAP_ROOT, 5000, Superblock),
        At::Block(5000), "space map index is past the end of the metadata (1024 blocks)"),
    ("space map ref_count_root past the end", Base::Small,
        |img, _| set64(img, SB, SM_REF_COUNT_ROOT, 5000, Superblock),
        At::Block(5000), "space map reference counts node is past the end of the metadata"),
    ("bitset_root past the end", Base::Small,
        |img, _| set64(img, SB, offset::BITSET_ROOT, 5000, Superblock),
        At::Block(5000), "bitset btree node is past the end of the metadata"),
    // Space map index block.
    ("index checksum", Base::Small, |img, l| flip(img, l.index, 0),
        At::Index, "space map index: bad checksum"),
    ("index blocknr", Base::Small, |img, l| set64(img, l.index, INDEX_BLOCKNR, 7, SpaceMapIndex),
        At::Index, "space map index: says it is block 7"),
    ("index entry blocknr past the end", Base::Small,
        |img, l| set64(img, l.index, ENTRY_BLOCKNR, 5000, SpaceMapIndex),
        At::Block(5000), "space map bitmap is past the end of the metadata"),
    ("index entry blocknr naming a block in use", Base::Small,
        |img, l| set64(img, l.index, ENTRY_BLOCKNR, l.root, SpaceMapIndex),
        At::Root, "space map: bitmap block used twice"),
    ("index entry nr_free", Base::Small,
        |img, l| set32(img, l.index, ENTRY_NR_FREE, 16315, SpaceMapIndex),
        At::Index, "space map index: bitmap 0 (block 2) says 16315 free, it has 16314"),
    ("index entry none_free_before past the first free entry", Base::Small,
        |img, l| set32(img, l.index, ENTRY_NONE_FREE_BEFORE, 7, SpaceMapIndex),
        At::Index, "space map index: bitmap 0 (block 2) says none free before entry 7, its first free entry is 6"),
    // Space map bitmap block.
    ("bitmap checksum", Base::Small, |img, l| flip(img, l.bitmap, 100),
        At::Bitmap, "space map bitmap: bad checksum"),
    ("bitmap blocknr", Base::Small, |img, l| set64(img, l.bitmap, BITMAP_BLOCKNR, 9, SpaceMapBitmap),
        At::Bitmap, "space map bitmap: says it is block 9"),
    ("bitmap entry past the last block not free", Base::Small, |img, l| set_count(img, l, 1500, 1),
        At::Bitmap, "space map bitmap: entry 1500 (block 1500) is past the last block (1024) but not free"),
    ("bitmap count 3 not in the reference count btree", Base::Small,
        |img, l| set_count(img, l, l.root, 3),
        At::Root, "space map: count above 2 but not in the reference count btree"),
    // Reference counts against reachability.
    ("a free block counted in use: leaked", Base::Small, |img, l| set_count(img, l, 320, 1),
        At::Block(320), "leaked: counted 1 in the space map, reached from nothing"),
    ("a block in use counted free", Base::Small, |img, l| set_count(img, l, l.root, 0),
        At::Root, "in use (reached 1 times) but free in the space map"),
    ("a block in use counted twice", Base::Small, |img, l| set_count(img, l, l.root, 2),
        At::Root, "reached 1 times, counted 2"),
    ("a block counted once reached twice", Base::Small,
        |img, l| set64(img, SB, SM_REF_COUNT_ROOT, l.root, Superblock),
        At::Root, "reached 2 times, counted 1"),
    ("a count above 2 from the reference count btree", Base::Small, |img, l| {
        set_count(img, l, l.root, 3);
        set_ref_counts(img, l, &[(l.root, 3)]);
    }, At::Root, "reached 1 times, counted 3"),
    // Reference count btree: its entries, then its node.
    ("reference count btree count below 3", Base::Small, |img, l| {
        set_count(img, l, l.root, 3);
        set_ref_counts(img, l, &[(l.root, 1)]);
    }, At::Root, "space map: count 1 in the reference count btree, should be above 2"),
    ("reference count btree entry for a bitmap count below 3", Base::Small,
        |img, l| set_ref_counts(img, l, &[(l.root, 5)]),
        At::Root, "space map: count 5 in the reference count btree, but 1 (not 3) in the bitmap"),
    ("reference count btree keys out of order", Base::Small, |img, l| {
        set_count(img, l, l.root, 3);
        set_count(img, l, l.index, 3);
        set_ref_counts(img, l, &[(l.root, 3), (l.index, 3)]);
    }, At::RefCount, "space map reference counts node: keys out of order (5 then 1)"),
    ("reference count node reached twice", Base::Small,
        |img, l| set64(img, SB, SM_REF_COUNT_ROOT, l.root, Superblock),
        At::Root, "space map reference counts: node reached twice"),
    ("reference count node checksum", Base::Small, |img, l| flip(img, l.ref_count, 40),
        At::RefCount, "space map reference counts node: bad checksum"),
    ("reference count node blocknr", Base::Small,
        |img, l| set64(img, l.ref_count, NODE_BLOCKNR, 77, BtreeNode),
        At::RefCount, "space map reference counts node: says it is block 77"),
    ("reference count node flags", Base::Small,
        |img, l| set32(img, l.ref_count, NODE_FLAGS, 0, BtreeNode),
        At::RefCount, "space map reference counts node: flags 0 are neither internal nor leaf"),
    ("reference count leaf value_size", Base::Small,
        |img, l| set32(img, l.ref_count, NODE_VSIZE, 8, BtreeNode),
        At::RefCount, "space map reference counts node: value size 8, should be 4"),
    ("reference count node max_entries", Base::Small,
        |img, l| set32(img, l.ref_count, NODE_MAX, 3, BtreeNode),
        At::RefCount, "space map reference counts node: max entries 3, should be 336"),
    ("reference count node nr_entries", Base::Small,
        |img, l| set32(img, l.ref_count, NODE_NR, 337, BtreeNode),
        At::RefCount, "space map reference counts node: 337 entries, more than its max of 336"),
    // Bitset btree node.
    ("bitset node checksum", Base::Small, |img, l| flip(img, l.root, 40),
        At::Root, "bitset btree node: bad checksum"),
    ("bitset node blocknr", Base::Small, |img, l| set64(img, l.root, NODE_BLOCKNR, 77, BtreeNode),
        At::Root, "bitset btree node: says it is block 77"),
    ("bitset node flags 0", Base::Small, |img, l| set32(img, l.root, NODE_FLAGS, 0, BtreeNode),
        At::Root, "bitset btree node: flags 0 are neither internal nor leaf"),
    ("bitset node flags 3", Base::Small, |img, l| set32(img, l.root, NODE_FLAGS, 3, BtreeNode),
        At::Root, "bitset btree node: flags 3 are neither internal nor leaf"),
    ("bitset leaf value_size", Base::Small, |img, l| set32(img, l.root, NODE_VSIZE, 4, BtreeNode),
        At::Root, "bitset btree node: value size 4, should be 8"),
    ("bitset internal node value_size", Base::Deep, |img, l| set32(img, l.root, NODE_VSIZE, 4, BtreeNode),
        At::Root, "bitset btree node: value size 4, should be 8"),
    ("bitset node max_entries 0", Base::Small, |img, l| set32(img, l.root, NODE_MAX, 0, BtreeNode),
        At::Root, "bitset btree node: max entries 0, should be 252"),
    ("bitset node max_entries more than a block holds", Base::Small,
        |img, l| set32(img, l.root, NODE_MAX, 255, BtreeNode),
        At::Root, "bitset btree node: max entries 255, should be 252"),
    ("bitset node max_entries fewer than the kernel gives", Base::Small,
        |img, l| set32(img, l.root, NODE_MAX, 249, BtreeNode),
        At::Root, "bitset btree node: max entries 249, should be 252"),
    ("bitset node nr_entries above max_entries", Base::Small,
        |img, l| set32(img, l.root, NODE_NR, 253, BtreeNode),
        At::Root, "bitset btree node: 253 entries, more than its max of 252"),
    ("bitset leaf keys out of order", Base::Deep, |img, l| set_key(img, l.leaves[0], 5, 4),
        At::Leaf(0), "bitset btree node: keys out of order (4 then 4)"),
    ("bitset internal node keys out of order", Base::Deep, |img, l| set_key(img, l.root, 0, 300),
        At::Root, "bitset btree node: keys out of order (300 then 252)"),
    ("bitset internal key above its child's first key", Base::Deep,
        |img, l| set_key(img, l.root, 1, 253),
        At::Root, "starts at key 252, below its key 253"),
    ("bitset internal key not above the previous child's last key", Base::Deep,
        |img, l| set_key(img, l.root, 1, 251),
        At::Root, "ends at key 251, not below the next key 251"),
    ("bitset child named twice", Base::Deep, |img, l| set_value(img, l.root, 1, l.leaves[0]),
        At::Leaf(0), "bitset btree: node reached twice"),
    ("bitset child past the end", Base::Deep, |img, l| set_value(img, l.root, 1, 5000),
        At::Block(5000), "bitset btree node is past the end of the metadata"),
    ("bitset btree deeper than 16 levels", Base::Small, |img, l| {
        // 17 internal nodes in free blocks, each naming the next, the last the real root.
        for b in 600..617 {
            internal_node(img, b, 0, if b == 616 { l.root } else { b + 1 });
        }
        set64(img, SB, offset::BITSET_ROOT, 600, Superblock);
    }, At::Root, "bitset btree: deeper than 16 levels"),
    // The bitset's leaves: the array blocks they name.
    ("bitset array block index past the end", Base::Small, |img, l| set_key(img, l.root, 0, 5),
        At::Array(0), "bitset: array block index 5 past the end"),
    ("bitset array blocks missing", Base::Small, |img, l| set32(img, l.root, NODE_NR, 0, BtreeNode),
        At::Whole, "bitset: 0 array blocks, 250 regions need 1"),
    ("bitset array block named twice", Base::Deep, |img, l| set_value(img, l.leaves[0], 1, l.arrays[0]),
        At::Array(0), "bitset: array block used twice"),
    ("bitset array block past the end", Base::Small, |img, l| set_value(img, l.root, 0, 5000),
        At::Block(5000), "bitset array block is past the end of the metadata"),
    // Bitset array block.
    ("array block checksum", Base::Small, |img, l| flip(img, l.arrays[0], 100),
        At::Array(0), "bitset array block: bad checksum"),
    ("array block blocknr", Base::Small, |img, l| set64(img, l.arrays[0], ARRAY_BLOCKNR, 77, Array),
        At::Array(0), "bitset array block: says it is block 77"),
    ("array block max_entries", Base::Small, |img, l| set32(img, l.arrays[0], ARRAY_MAX, 508, Array),
        At::Array(0), "bitset array block 0: 4 of 508 entries of 8 bytes, should be 4 of 509 of 8"),
    ("array block nr_entries", Base::Small, |img, l| set32(img, l.arrays[0], ARRAY_NR, 3, Array),
        At::Array(0), "bitset array block 0: 3 of 509 entries of 8 bytes, should be 4 of 509 of 8"),
    ("array block value_size", Base::Small, |img, l| set32(img, l.arrays[0], ARRAY_VSIZE, 4, Array),
        At::Array(0), "bitset array block 0: 4 of 509 entries of 4 bytes, should be 4 of 509 of 8"),
    ("array block bits past the last region", Base::Small, |img, l| {
        // Region 255, in the last word (3) but past the 250th region.
        let at = ARRAY_WORDS + 3 * 8;
        let w = le64(block(img, l.arrays[0]), at) | 1 << 63;
        set64(img, l.arrays[0], at, w, Array);
    }, At::Array(0), "bitset: bits set past the last region (250)"),
];

fn check(img: &[u8]) -> Report {
    read::read(&Memory(img), Depth::All)
}

#[test]
fn each_check_reports_its_damage_in_its_block() {
    let bases = [Base::Small, Base::Deep].map(|b| {
        let img = b.image();
        let rep = check(&img);
        assert!(rep.problems.is_empty(), "{b:?}: {:#?}", rep.problems);
        (b, img)
    });
    let mut failed = Vec::new();
    for &(what, base, damage, at, text) in CASES {
        let good = &bases.iter().find(|(b, _)| *b == base).unwrap().1;
        let layout = Layout::of(good);
        let want = at.block(&layout);
        let mut img = good.clone();
        damage(&mut img, &layout);
        let rep = check(&img);
        if !rep
            .problems
            .iter()
            .any(|p| p.block == want && p.what.contains(text))
        {
            eprintln!(
                "case {what:?} failed: no problem in block {want:?} saying {text:?}; problems: {:#?}",
                rep.problems
            );
            failed.push(what);
        }
    }
    assert!(failed.is_empty(), "cases failed: {failed:#?}");
}

#[test]
fn what_the_kernel_allows_reads_clean() {
    // none_free_before only has to be at or below the first free entry (6).
    for nfb in [0, 3, 6] {
        let mut img = Base::Small.image();
        let l = Layout::of(&img);
        set32(
            &mut img,
            l.index,
            ENTRY_NONE_FREE_BEFORE,
            nfb,
            SpaceMapIndex,
        );
        let rep = check(&img);
        assert!(rep.problems.is_empty(), "{nfb}: {:#?}", rep.problems);
    }
    // A second leaf holding one entry (fewer than a third of its maximum), as the writer
    // leaves it, is allowed.
    assert!(check(&Base::Deep.image()).problems.is_empty());
}

/// An image whose block `bad` cannot be read.
struct Unreadable<'a> {
    img: &'a [u8],
    bad: u64,
}

impl BlockSource for Unreadable<'_> {
    fn nr_blocks(&self) -> u64 {
        Memory(self.img).nr_blocks()
    }

    fn read(&self, b: u64) -> Result<Vec<u8>, String> {
        if b == self.bad {
            return Err(format!("reading block {b}: Input/output error"));
        }
        Memory(self.img).read(b)
    }
}

#[test]
fn an_unreadable_block_is_reported_in_its_block() {
    let img = Base::Small.image();
    let l = Layout::of(&img);
    for (bad, what) in [
        (0, "superblock"),
        (l.index, "space map index"),
        (l.bitmap, "space map bitmap"),
        (l.ref_count, "space map reference counts node"),
        (l.root, "bitset btree node"),
        (l.arrays[0], "bitset array block"),
    ] {
        let rep = read::read(&Unreadable { img: &img, bad }, Depth::All);
        let text = format!("{what}: reading block {bad}: Input/output error");
        assert!(
            rep.problems
                .iter()
                .any(|p| p.block == Some(bad) && p.what == text),
            "{text}: {:#?}",
            rep.problems
        );
    }
}

/// (what is damaged, the damage): superblocks that are refused and record 2^45 regions or
/// more.
#[rustfmt::skip]
const HUGE_SUPERBLOCKS: &[(&str, Damage)] = &[
    ("bad checksum", |img, _| {
        block(img, SB)[offset::TARGET_SIZE..][..8].copy_from_slice(&(1u64 << 48).to_le_bytes());
    }),
    ("bad magic", |img, _| {
        set64(img, SB, offset::TARGET_SIZE, 1 << 48, Superblock);
        set64(img, SB, offset::MAGIC, 0x1234, Superblock);
    }),
    ("bad version", |img, _| {
        set64(img, SB, offset::TARGET_SIZE, 1 << 48, Superblock);
        set32(img, SB, offset::VERSION, 7, Superblock);
    }),
    ("region size 1", |img, _| {
        set64(img, SB, offset::TARGET_SIZE, 1 << 48, Superblock);
        set64(img, SB, offset::REGION_SIZE, 1, Superblock);
    }),
    ("more than 2^31 regions", |img, _| set64(img, SB, offset::TARGET_SIZE, u64::MAX, Superblock)),
];

#[test]
fn a_refused_superblock_gives_no_runs_whatever_its_sizes() {
    let good = Base::Small.image();
    let layout = Layout::of(&good);
    let mut failed = Vec::new();
    for &(what, damage) in HUGE_SUPERBLOCKS {
        let mut img = good.clone();
        damage(&mut img, &layout);
        // On a thread, so that a walk over the superblock's regions fails the case
        // instead of hanging the test.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rep = check(&img);
            let _ = tx.send((
                rep.superblock_ok,
                rep.copied_runs(),
                rep.unknown_runs(),
                rep.nr_copied(),
            ));
        });
        match rx.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok((false, copied, unknown, 0)) if copied.is_empty() && unknown.is_empty() => {}
            Ok(r) => {
                eprintln!("case {what:?}: (superblock_ok, copied, unknown, nr_copied) = {r:?}");
                failed.push(what);
            }
            Err(_) => {
                eprintln!("case {what:?}: the report's runs took more than 10 s");
                failed.push(what);
            }
        }
    }
    assert!(failed.is_empty(), "cases failed: {failed:#?}");
}

/// Whether region `r` is in one of `runs` (in order).
fn in_runs(runs: &[(u64, u64)], r: u64) -> bool {
    let i = runs.partition_point(|&(f, _)| f <= r);
    i > 0 && r < runs[i - 1].0 + runs[i - 1].1
}

#[test]
fn a_salvaged_dump_keeps_each_region_or_marks_it_unknown() {
    use clone_metadata::cli::Unknown;
    use clone_metadata::xml;
    let mut failed = Vec::new();
    let mut salvaged = 0;
    for &(what, base, damage, _, _) in CASES {
        let good = base.image();
        let (m, _) = base.metadata();
        let layout = Layout::of(&good);
        let mut img = good.clone();
        damage(&mut img, &layout);
        let rep = check(&img);
        if !rep.superblock_ok {
            continue;
        }
        let d = xml::Dump::from_report(&rep);
        // What clone_dump -r writes, and what clone_restore reads back.
        let mut text = Vec::new();
        d.write_xml(&mut text).unwrap();
        let back = xml::parse(&String::from_utf8(text).unwrap());
        if back.as_ref() != Ok(&d) {
            eprintln!("case {what:?}: the XML reads back as {back:?}, not {d:?}");
            failed.push(what);
            continue;
        }
        if d.metadata.nr_regions() != m.nr_regions() {
            continue; // a damaged size: the regions are not the same ones
        }
        salvaged += usize::from(!d.unknown.is_empty());
        let copied = d.clone().resolve(Unknown::Copied).copied;
        let uncopied = d.clone().resolve(Unknown::Uncopied).copied;
        // Every region keeps its state, or is unknown: copied with --unknown copied and
        // not with --unknown uncopied.
        let wrong = (0..m.nr_regions()).find(|&r| {
            let was = in_runs(&m.copied, r);
            if in_runs(&d.unknown, r) {
                !in_runs(&copied, r) || in_runs(&uncopied, r)
            } else {
                in_runs(&copied, r) != was || in_runs(&uncopied, r) != was
            }
        });
        if let Some(r) = wrong {
            eprintln!("case {what:?}: region {r} changed state silently: {d:?}");
            failed.push(what);
        }
    }
    assert!(failed.is_empty(), "cases failed: {failed:#?}");
    // Cases with regions of unknown state were among them.
    assert!(salvaged >= 5, "only {salvaged} cases had unknown regions");
}

/// Makes the counters that follow from the bitmap's counts agree with it: bitmap 0's free
/// count in the index and the superblock's allocated count (as the kernel's space map keeps
/// them), so that what a case changed in the bitmap is all that is wrong.
fn recount(img: &mut [u8], l: &Layout) {
    let nr_blocks = le64(block(img, SB), SM_NR_BLOCKS);
    let bm = block(img, l.bitmap);
    let allocated = (0..nr_blocks)
        .filter(|&e| (le64(bm, 16 + 8 * (e / 32) as usize) >> (2 * (e % 32))) & 3 != 0)
        .count() as u64;
    let free = read::ENTRIES_PER_BITMAP - allocated;
    set32(img, l.index, ENTRY_NR_FREE, free as u32, SpaceMapIndex);
    set64(img, SB, SM_NR_ALLOCATED, allocated, Superblock);
}

/// (what is wrong, the damage, whether all it gives is non-fatal, the block a problem names
/// and what it says): a leak (a block counted once that nothing references) is non-fatal,
/// as thin_check's; any other count that differs is damage.
#[rustfmt::skip]
const SEVERITY_CASES: &[(&str, Damage, bool, At, &str)] = &[
    ("a free block counted once", |img, l| { set_count(img, l, 320, 1); recount(img, l) },
        true, At::Block(320), "leaked: counted 1 in the space map, reached from nothing"),
    ("the first free block counted once", |img, l| { set_count(img, l, 6, 1); recount(img, l) },
        true, At::Block(6), "leaked: counted 1"),
    ("the last block counted once", |img, l| { set_count(img, l, 1023, 1); recount(img, l) },
        true, At::Block(1023), "leaked: counted 1"),
    ("two free blocks counted once", |img, l| {
        set_count(img, l, 320, 1);
        set_count(img, l, 700, 1);
        recount(img, l)
    }, true, At::Block(700), "leaked: counted 1"),
    ("a free block counted twice", |img, l| { set_count(img, l, 320, 2); recount(img, l) },
        false, At::Block(320), "counted 2 in the space map, reached from nothing"),
    ("a free block counted once, the counters left as they were", |img, l| set_count(img, l, 320, 1),
        false, At::Index, "space map index: bitmap 0 (block 2) says 16314 free, it has 16313"),
    ("a block in use counted twice", |img, l| { set_count(img, l, l.root, 2); recount(img, l) },
        false, At::Root, "reached 1 times, counted 2"),
    ("a block in use counted free", |img, l| { set_count(img, l, l.root, 0); recount(img, l) },
        false, At::Root, "in use (reached 1 times) but free in the space map"),
];

#[test]
fn a_leaked_block_is_non_fatal_and_nothing_else_is() {
    let good = Base::Small.image();
    let layout = Layout::of(&good);
    let mut failed = Vec::new();
    for &(what, damage, non_fatal, at, text) in SEVERITY_CASES {
        let mut img = good.clone();
        damage(&mut img, &layout);
        let rep = check(&img);
        let want = at.block(&layout);
        let named = rep
            .problems
            .iter()
            .find(|p| p.block == want && p.what.contains(text));
        let ok = match named {
            None => false,
            Some(p) if non_fatal => {
                !p.is_fatal() && rep.is_sound() && rep.problems.iter().all(|p| !p.is_fatal())
            }
            Some(p) => p.is_fatal() && !rep.is_sound(),
        };
        // What the metadata records is read whole either way.
        let (m, _) = Base::Small.metadata();
        if !ok || rep.copied_runs() != m.copied || !rep.unknown_runs().is_empty() {
            eprintln!(
                "case {what:?}: want {} problem in block {want:?} saying {text:?}; problems: {:#?}",
                if non_fatal { "a non-fatal" } else { "a fatal" },
                rep.problems
            );
            failed.push(what);
        }
    }
    assert!(failed.is_empty(), "cases failed: {failed:#?}");
}

#[test]
fn every_damage_case_is_fatal() {
    // --ignore-non-fatal-errors must pass none of them.
    let mut failed = Vec::new();
    for &(what, base, damage, _, _) in CASES {
        let good = base.image();
        let layout = Layout::of(&good);
        let mut img = good.clone();
        damage(&mut img, &layout);
        let rep = check(&img);
        if rep.is_sound() {
            eprintln!(
                "case {what:?}: no fatal problem; problems: {:#?}",
                rep.problems
            );
            failed.push(what);
        }
    }
    assert!(failed.is_empty(), "cases failed: {failed:#?}");
}

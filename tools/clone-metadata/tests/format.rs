// SPDX-License-Identifier: GPL-2.0
//! The metadata reader and writer against each other, and the checker against
//! damage: one case per structure and field it checks.

use clone_metadata::checksum::{self, BlockKind};
use clone_metadata::read::{self, Depth, Memory, Report};
use clone_metadata::superblock::offset;
use clone_metadata::write::{self, Metadata};
use clone_metadata::BLOCK_SIZE;

fn image(m: &Metadata, device_blocks: u64) -> Vec<u8> {
    let mut img = vec![0u8; device_blocks as usize * BLOCK_SIZE];
    for (b, d) in write::write(m, device_blocks).expect("write") {
        img[b as usize * BLOCK_SIZE..][..BLOCK_SIZE].copy_from_slice(&d);
    }
    img
}

fn check(img: &[u8]) -> Report {
    read::read(&Memory(img), Depth::All)
}

fn block(img: &mut [u8], b: u64) -> &mut [u8] {
    &mut img[b as usize * BLOCK_SIZE..][..BLOCK_SIZE]
}

fn le64(d: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(d[at..at + 8].try_into().unwrap())
}

fn small() -> Metadata {
    Metadata {
        region_size: 8,
        target_size: 2048,
        copied: vec![(0, 10), (100, 2), (255, 1)],
    }
}

/// Where the superblock says the bitset's root and the index are.
fn roots(img: &[u8]) -> (u64, u64) {
    let sb = &img[..BLOCK_SIZE];
    (
        le64(sb, offset::BITSET_ROOT),
        le64(sb, offset::SPACE_MAP_ROOT + 16),
    )
}

fn has(rep: &Report, block: Option<u64>, text: &str) -> bool {
    rep.problems
        .iter()
        .any(|p| p.block == block && p.what.contains(text))
        || {
            eprintln!("problems: {:#?}", rep.problems);
            false
        }
}

#[test]
fn written_metadata_reads_back_clean_with_its_regions() {
    for m in [
        small(),
        Metadata {
            region_size: 8,
            target_size: 2048,
            copied: vec![],
        },
        Metadata {
            region_size: 8,
            target_size: 2047,
            copied: vec![(0, 256)],
        },
        // Two array blocks: runs across their boundary (word 509 starts at region 32576).
        Metadata {
            region_size: 8,
            target_size: 262_144,
            copied: vec![(0, 1), (32_511, 130), (32_767, 1)],
        },
        Metadata {
            region_size: 1 << 21,
            target_size: 1,
            copied: vec![(0, 1)],
        },
    ] {
        let img = image(&m, 1024);
        let rep = check(&img);
        assert!(rep.problems.is_empty(), "{:?}: {:#?}", m, rep.problems);
        assert_eq!(rep.copied_runs(), m.copied);
        assert_eq!(rep.superblock.nr_regions(), m.nr_regions());
        assert_eq!(rep.superblock.space_map.nr_blocks, 1024);
    }
}

#[test]
fn a_btree_of_two_levels_reads_back() {
    // 253 array blocks: more than a leaf holds (252), so an internal root.
    let regions = 253 * 509 * 64;
    let m = Metadata {
        region_size: 8,
        target_size: regions * 8,
        copied: vec![(0, 3), (regions - 64, 64)],
    };
    let img = image(&m, 2048);
    let rep = check(&img);
    assert!(rep.problems.is_empty(), "{:#?}", rep.problems);
    assert_eq!(rep.copied_runs(), m.copied);
    let (root, _) = roots(&img);
    assert_eq!(
        u32::from_le_bytes(
            img[root as usize * BLOCK_SIZE + 4..][..4]
                .try_into()
                .unwrap()
        ),
        1,
        "root is internal"
    );
}

#[test]
fn refuses_what_it_cannot_write() {
    let m = |rs, ts, copied| Metadata {
        region_size: rs,
        target_size: ts,
        copied,
    };
    assert!(write::write(&m(12, 2048, vec![]), 1024)
        .unwrap_err()
        .contains("power of two"));
    assert!(write::write(&m(8, 0, vec![]), 1024)
        .unwrap_err()
        .contains("target size 0"));
    assert!(write::write(&m(8, 2048, vec![(250, 7)]), 1024)
        .unwrap_err()
        .contains("past the last"));
    assert!(write::write(&m(8, 2048, vec![(5, 2), (4, 1)]), 1024)
        .unwrap_err()
        .contains("out of order"));
    let e = write::write(&m(8, 2048, vec![]), 100).unwrap_err();
    assert!(
        e.contains("100 blocks") && e.contains("need at least"),
        "{e}"
    );
}

#[test]
fn damage_to_the_superblock_is_reported_in_block_0() {
    let good = image(&small(), 1024);
    let mut img = good.clone();
    block(&mut img, 0)[100] ^= 1;
    assert!(has(&check(&img), Some(0), "bad checksum"));
    let mut img = good.clone();
    block(&mut img, 0)[offset::MAGIC] ^= 1;
    checksum::seal(block(&mut img, 0), BlockKind::Superblock);
    assert!(has(&check(&img), Some(0), "magic"));
    let mut img = good.clone();
    block(&mut img, 0)[offset::VERSION] = 2;
    checksum::seal(block(&mut img, 0), BlockKind::Superblock);
    assert!(has(&check(&img), Some(0), "version 2"));
    let mut img = good.clone();
    block(&mut img, 0)[offset::REGION_SIZE] = 12;
    checksum::seal(block(&mut img, 0), BlockKind::Superblock);
    assert!(has(&check(&img), Some(0), "region size 12"));
    let mut img = good.clone();
    block(&mut img, 0)[offset::BLOCKNR] = 3;
    checksum::seal(block(&mut img, 0), BlockKind::Superblock);
    assert!(has(&check(&img), Some(0), "says it is block 3"));
    // A longer target than the bitset holds.
    let mut img = good.clone();
    block(&mut img, 0)[offset::TARGET_SIZE..offset::TARGET_SIZE + 8]
        .copy_from_slice(&(1u64 << 20).to_le_bytes());
    checksum::seal(block(&mut img, 0), BlockKind::Superblock);
    assert!(has(&check(&img), None, "regions need"));
    let zero = vec![0u8; 8 * BLOCK_SIZE];
    assert!(has(&check(&zero), Some(0), "never formatted"));
    assert!(has(&check(&[0u8; 100]), None, "shorter than one block"));
}

#[test]
fn damage_to_the_bitset_is_reported_in_its_block() {
    let good = image(&small(), 1024);
    let (root, _) = roots(&good);
    // The root is a leaf naming the one array block.
    let array = le64(&good[root as usize * BLOCK_SIZE..], 32 + 8 * 252);
    let mut img = good.clone();
    block(&mut img, root)[40] ^= 1;
    assert!(has(&check(&img), Some(root), "bad checksum"));
    let mut img = good.clone();
    block(&mut img, root)[24] = 4; // value size
    checksum::seal(block(&mut img, root), BlockKind::BtreeNode);
    assert!(has(&check(&img), Some(root), "value size 4"));
    let mut img = good.clone();
    block(&mut img, root)[4] = 7; // flags
    checksum::seal(block(&mut img, root), BlockKind::BtreeNode);
    assert!(has(&check(&img), Some(root), "neither internal nor leaf"));
    let mut img = good.clone();
    block(&mut img, array)[16] ^= 1; // blocknr
    checksum::seal(block(&mut img, array), BlockKind::Array);
    assert!(has(&check(&img), Some(array), "says it is block"));
    let mut img = good.clone();
    block(&mut img, array)[8] = 3; // nr_entries
    checksum::seal(block(&mut img, array), BlockKind::Array);
    assert!(has(&check(&img), Some(array), "3 of 509 entries"));
    let mut img = good.clone();
    block(&mut img, array)[24 + 3 * 8 + 7] |= 0x80; // region 255 + 1 + ... past the end
    checksum::seal(block(&mut img, array), BlockKind::Array);
    // 256 regions fill 4 words exactly: set a bit in a word that does not exist by
    // shortening the target instead.
    let mut img2 = image(
        &Metadata {
            region_size: 8,
            target_size: 2000,
            copied: vec![],
        },
        1024,
    );
    let (root2, _) = roots(&img2);
    let array2 = le64(&img2[root2 as usize * BLOCK_SIZE..], 32 + 8 * 252);
    block(&mut img2, array2)[24 + 3 * 8 + 7] |= 0x80; // region 255, past 250
    checksum::seal(block(&mut img2, array2), BlockKind::Array);
    assert!(has(&check(&img2), Some(array2), "past the last region"));
    // Regions read as copied, from the words as they are.
    assert!(check(&img).is_copied(255));
}

#[test]
fn damage_to_the_space_map_is_reported() {
    let good = image(&small(), 1024);
    let (root, index) = roots(&good);
    let bitmap = le64(&good[index as usize * BLOCK_SIZE..], 16);
    let mut img = good.clone();
    block(&mut img, index)[200] ^= 1;
    assert!(has(&check(&img), Some(index), "bad checksum"));
    // A free block counted in use: a leak.
    let mut img = good.clone();
    let d = block(&mut img, bitmap);
    d[16 + 8 * 10] |= 0b10; // block 320, count 1 (its low bit)... entry 320 is word 10, bit 1
    checksum::seal(d, BlockKind::SpaceMapBitmap);
    let rep = check(&img);
    assert!(has(&rep, Some(320), "leaked"));
    assert!(has(&rep, Some(index), "free"));
    assert!(has(&rep, Some(0), "allocated"));
    // A block in use counted free.
    let mut img = good.clone();
    let d = block(&mut img, bitmap);
    let (w, bit) = (root / 32, (root % 32) * 2 + 1);
    let at = 16 + 8 * w as usize;
    let v = le64(d, at) & !(1 << bit);
    d[at..at + 8].copy_from_slice(&v.to_le_bytes());
    checksum::seal(d, BlockKind::SpaceMapBitmap);
    assert!(has(&check(&img), Some(root), "free in the space map"));
    // Two leaves naming the same array block: used twice.
    let mut img = image(
        &Metadata {
            region_size: 8,
            target_size: 262_144,
            copied: vec![],
        },
        1024,
    );
    let (root, _) = roots(&img);
    let d = block(&mut img, root);
    let first = le64(d, 32 + 8 * 252);
    d[32 + 8 * 252 + 8..][..8].copy_from_slice(&first.to_le_bytes());
    checksum::seal(d, BlockKind::BtreeNode);
    assert!(has(&check(&img), Some(first), "used twice"));
}

#[test]
fn superblock_only_reads_block_0() {
    let mut img = image(&small(), 1024);
    let (root, _) = roots(&img);
    block(&mut img, root)[40] ^= 1;
    let rep = read::read(&Memory(&img), Depth::Superblock);
    assert!(rep.superblock_ok && rep.problems.is_empty());
    assert!(!check(&img).problems.is_empty());
}

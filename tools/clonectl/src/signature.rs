// SPDX-License-Identifier: GPL-2.0
//! What a device already holds, before `create` gives it to a clone as its metadata
//! device or its destination: another clone's metadata (a superblock that clone-metadata's reader accepts),
//! another device-mapper target's metadata, or a common on-disk format, found by the
//! magic numbers at the offsets wipefs and libblkid look at. A small table, not a
//! libblkid: what it does not know passes (the kernel refuses a superblock that is
//! neither zeroes nor a clone's).

use crate::error::{fail, Res};
use clone_metadata::read::{self, Depth};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// How much of the start of a device is read: past btrfs's superblock (64 KiB + 64 +
/// 8) and the swap signature of 64 KiB pages.
const HEAD: usize = 68 * 1024;

/// A magic string at a byte offset (and, for some, a second one), and what it means.
struct Magic {
    at: usize,
    bytes: &'static [u8],
    also: Option<(usize, &'static [u8])>,
    what: &'static str,
}

const fn m(at: usize, bytes: &'static [u8], what: &'static str) -> Magic {
    Magic {
        at,
        bytes,
        also: None,
        what,
    }
}

/// An LVM2 physical volume's label in sector `s`: "LABELONE", and "LVM2 001" at 24.
const fn lvm(s: usize) -> Magic {
    Magic {
        at: s * 512,
        bytes: b"LABELONE",
        also: Some((s * 512 + 24, b"LVM2 001")),
        what: "an LVM2 physical volume",
    }
}

/// The formats recognised by their magic, in the order they are tried.
#[rustfmt::skip]
const MAGICS: &[Magic] = &[
    // Device-mapper metadata: the magic at byte 32 of block 0, as ours.
    m(32, &27_022_010u64.to_le_bytes(), "thin-pool metadata"),
    m(32, &6_142_003u64.to_le_bytes(), "dm-cache metadata"),
    m(32, &2_126_579_579u64.to_le_bytes(), "dm-era metadata"),
    m(0, b"LUKS\xba\xbe", "a LUKS encrypted volume"),
    m(0, b"XFSB", "an XFS file system"),
    m(1080, &[0x53, 0xef], "an ext2/ext3/ext4 file system"),
    m(65_600, b"_BHRfS_M", "a btrfs file system"),
    // LVM2 labels its physical volumes in one of the first four sectors.
    lvm(0), lvm(1), lvm(2), lvm(3),
    // Swap: its signature ends the first page (4 to 64 KiB pages).
    m(4096 - 10, b"SWAPSPACE2", "swap space"),
    m(8192 - 10, b"SWAPSPACE2", "swap space"),
    m(16_384 - 10, b"SWAPSPACE2", "swap space"),
    m(65_536 - 10, b"SWAPSPACE2", "swap space"),
    m(4096 - 10, b"SWAP-SPACE", "swap space"),
    // A GPT (512- or 4096-byte logical blocks), then an MBR or boot sector.
    m(512, b"EFI PART", "a GPT partition table"),
    m(4096, b"EFI PART", "a GPT partition table"),
    m(510, &[0x55, 0xaa], "an MBR partition table or boot sector"),
];

/// What `file` holds at its start, in words (`None`: nothing known, or zeroes: a new
/// clone).
pub fn what_it_holds(file: &File) -> Option<String> {
    let mut head = vec![0u8; HEAD];
    let mut n = 0;
    while n < head.len() {
        match file.read_at(&mut head[n..], n as u64) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let head = &head[..n];
    if head.iter().all(|&b| b == 0) {
        return None;
    }
    let magic = |at: usize| {
        head.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    if magic(clone_metadata::superblock::offset::MAGIC) == Some(clone_metadata::superblock::MAGIC) {
        let rep = read::read(file, Depth::Superblock);
        let sb = rep.superblock;
        return Some(if rep.superblock_ok {
            format!(
                "a clone's metadata (region size {} sectors, target size {} sectors)",
                sb.region_size, sb.target_size
            )
        } else {
            let why = rep
                .problems
                .first()
                .map_or_else(String::new, |p| format!(": {p}"));
            format!("a clone's metadata, damaged{why}")
        });
    }
    let at = |at: usize, bytes: &[u8]| head.get(at..at + bytes.len()) == Some(bytes);
    MAGICS
        .iter()
        .find(|g| at(g.at, g.bytes) && g.also.is_none_or(|(o, b)| at(o, b)))
        .map(|g| g.what.to_string())
}

/// Refuses to make `path`, the metadata device, a new clone's when it holds something
/// (see [`what_it_holds`]), unless `force`: then a warning on stderr.
pub fn check_metadata(path: &Path, force: bool) -> Res<()> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return fail(format!("metadata device {}: {e}", path.display())),
    };
    let Some(what) = what_it_holds(&file) else {
        return Ok(());
    };
    let p = path.display();
    if force {
        eprintln!("clonectl: warning: metadata device {p} holds {what}; using it anyway (--force)");
        return Ok(());
    }
    if what.starts_with("a clone's metadata (") {
        return fail(format!(
            "metadata device {p} holds {what}: the kernel would go on with that clone, taking its copied regions as already on the destination; give --force only to resume that same clone (the same source and destination), or zero its first 4 KiB for a new clone (dd if=/dev/zero of={p} bs=4k count=1)"
        ));
    }
    fail(format!(
        "metadata device {p} holds {what}: a new clone would overwrite it; check the device name, zero its first 4 KiB if it is not needed (dd if=/dev/zero of={p} bs=4k count=1), or give --force"
    ))
}

/// Refuses to make `path` a new clone's destination when it holds something (see
/// [`what_it_holds`]): the copy overwrites it with the source, so a file system, a volume
/// or a partition table there most likely means the wrong device was named. With `force`
/// (also what resuming a clone on its own destination needs, which holds part of the
/// source) a warning on stderr instead.
pub fn check_destination(path: &Path, force: bool) -> Res<()> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return fail(format!("destination {}: {e}", path.display())),
    };
    let Some(what) = what_it_holds(&file) else {
        return Ok(());
    };
    let p = path.display();
    if force {
        eprintln!(
            "clonectl: warning: destination {p} holds {what}; the copy overwrites it (--force)"
        );
        return Ok(());
    }
    fail(format!(
        "destination {p} holds {what}: the copy would overwrite it with the source; check the device name, wipe it if it is not needed (wipefs -a {p}), or give --force (as when resuming a clone on its own destination)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clone_metadata::write::{self, Metadata};
    use clone_metadata::BLOCK_SIZE;

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("clonectl-signature-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    /// A 1 MiB image of zeroes with `bytes` at `at`.
    fn with(at: usize, bytes: &[u8]) -> Vec<u8> {
        let mut img = vec![0u8; 1 << 20];
        img[at..at + bytes.len()].copy_from_slice(bytes);
        img
    }

    fn clone_metadata() -> Vec<u8> {
        let m = Metadata {
            region_size: 128,
            target_size: 1 << 20,
            copied: vec![(0, 5)],
        };
        let mut img = vec![0u8; 1024 * BLOCK_SIZE];
        for (b, d) in write::write(&m, 1024).unwrap() {
            img[b as usize * BLOCK_SIZE..][..BLOCK_SIZE].copy_from_slice(&d);
        }
        img
    }

    fn lvm(sector: usize) -> Vec<u8> {
        let mut img = with(sector * 512, b"LABELONE");
        img[sector * 512 + 24..][..8].copy_from_slice(b"LVM2 001");
        img
    }

    type Make = fn() -> Vec<u8>;

    /// (what the image holds, how to make it, what is said of it: `None`, nothing).
    #[rustfmt::skip]
    const CASES: &[(&str, Make, Option<&str>)] = &[
        ("zeroes", || vec![0u8; 1 << 20], None),
        ("a short zero device", || vec![0u8; 100], None),
        ("data no table knows", || vec![0x5a; 1 << 20], None),
        ("clone metadata", clone_metadata,
            Some("a clone's metadata (region size 128 sectors, target size 1048576 sectors)")),
        ("damaged clone metadata", || { let mut i = clone_metadata(); i[200] ^= 1; i },
            Some("a clone's metadata, damaged: block 0: superblock: bad checksum")),
        ("thin-pool metadata", || with(32, &27_022_010u64.to_le_bytes()), Some("thin-pool metadata")),
        ("dm-cache metadata", || with(32, &6_142_003u64.to_le_bytes()), Some("dm-cache metadata")),
        ("dm-era metadata", || with(32, &2_126_579_579u64.to_le_bytes()), Some("dm-era metadata")),
        ("ext4", || with(1080, &[0x53, 0xef]), Some("an ext2/ext3/ext4 file system")),
        ("xfs", || with(0, b"XFSB"), Some("an XFS file system")),
        ("btrfs", || with(65_600, b"_BHRfS_M"), Some("a btrfs file system")),
        ("LUKS", || with(0, b"LUKS\xba\xbe\x00\x02"), Some("a LUKS encrypted volume")),
        ("LVM2 PV label in sector 1", || lvm(1), Some("an LVM2 physical volume")),
        ("LVM2 PV label in sector 0", || lvm(0), Some("an LVM2 physical volume")),
        ("LABELONE without LVM2", || with(512, b"LABELONE"), None),
        ("swap (4 KiB pages)", || with(4086, b"SWAPSPACE2"), Some("swap space")),
        ("swap (64 KiB pages)", || with(65_526, b"SWAPSPACE2"), Some("swap space")),
        ("GPT", || { let mut i = with(512, b"EFI PART"); i[510] = 0x55; i[511] = 0xaa; i },
            Some("a GPT partition table")),
        ("MBR", || with(510, &[0x55, 0xaa]), Some("an MBR partition table or boot sector")),
    ];

    #[test]
    fn each_signature_is_recognised_in_an_image() {
        let mut failed = Vec::new();
        for (i, &(what, make, says)) in CASES.iter().enumerate() {
            let p = tmp(&format!("sig-{i}.img"));
            std::fs::write(&p, make()).unwrap();
            let got = what_it_holds(&File::open(&p).unwrap());
            let ok = match (says, &got) {
                (None, None) => true,
                (Some(s), Some(g)) => g.starts_with(s),
                _ => false,
            };
            if !ok {
                eprintln!("case {what:?}: want {says:?}, got {got:?}");
                failed.push(what);
            }
        }
        assert!(failed.is_empty(), "cases failed: {failed:#?}");
    }

    #[test]
    fn create_refuses_a_metadata_device_that_holds_something_unless_forced() {
        let p = tmp("meta.img");
        std::fs::write(&p, clone_metadata()).unwrap();
        let Err(e) = check_metadata(&p, false) else {
            panic!("another clone's metadata was accepted")
        };
        assert!(
            e.0.contains(&format!(
                "metadata device {} holds a clone's metadata (region size 128",
                p.display()
            )) && e.0.contains("give --force only to resume that same clone"),
            "{}",
            e.0
        );
        assert!(check_metadata(&p, true).is_ok());
        std::fs::write(&p, with(1080, &[0x53, 0xef])).unwrap();
        let Err(e) = check_metadata(&p, false) else {
            panic!("an ext4 file system was accepted")
        };
        assert!(
            e.0.contains("holds an ext2/ext3/ext4 file system: a new clone would overwrite it"),
            "{}",
            e.0
        );
        std::fs::write(&p, vec![0u8; 1 << 20]).unwrap();
        assert!(check_metadata(&p, false).is_ok());
        let Err(e) = check_metadata(&tmp("none.img"), false) else {
            panic!("a missing device was accepted")
        };
        assert!(e.0.contains("none.img"), "{}", e.0);
    }

    #[test]
    fn create_refuses_a_destination_that_holds_something_unless_forced() {
        let p = tmp("dest.img");
        std::fs::write(&p, with(1080, &[0x53, 0xef])).unwrap();
        let Err(e) = check_destination(&p, false) else {
            panic!("a destination holding ext4 was accepted")
        };
        assert!(
            e.0.contains(&format!(
                "destination {} holds an ext2/ext3/ext4 file system: the copy would overwrite it",
                p.display()
            )) && e.0.contains("or give --force"),
            "{}",
            e.0
        );
        assert!(check_destination(&p, true).is_ok());
        std::fs::write(&p, lvm(1)).unwrap();
        assert!(check_destination(&p, false).is_err());
        for img in [vec![0u8; 1 << 20], vec![0x5a; 1 << 20]] {
            std::fs::write(&p, img).unwrap();
            assert!(check_destination(&p, false).is_ok());
        }
        let Err(e) = check_destination(&tmp("none-dest.img"), false) else {
            panic!("a missing device was accepted")
        };
        assert!(
            e.0.contains("destination") && e.0.contains("none-dest.img"),
            "{}",
            e.0
        );
    }
}

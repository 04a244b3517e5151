// SPDX-License-Identifier: GPL-2.0
//! The reader on metadata the kernel targets wrote (tests/fixtures, made by
//! make.sh in the test VM with dm_clone_rs and the C dm_clone): clean, with
//! exactly the regions the script copied, the same for both targets; and a
//! dump -> restore -> dump round trip of each is byte-equal.

use clone_metadata::read::{self, Depth, Memory};
use clone_metadata::{write, xml};
use std::io::Read;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/{name}.img.gz",
        env!("CARGO_MANIFEST_DIR")
    );
    let gz = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (make it with make.sh)"));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn expected(name: &str) -> (u64, Vec<(u64, u64)>) {
    match name {
        "small" => (2048, vec![(0, 10), (100, 2), (255, 1)]),
        "big" => (262_144, vec![(0, 1), (32_511, 130), (32_767, 1)]),
        _ => (2048, vec![]),
    }
}

#[test]
fn kernel_written_metadata_is_clean_with_its_regions() {
    for target in ["rs", "c"] {
        for kind in ["small", "big", "none"] {
            let img = fixture(&format!("{target}-{kind}"));
            let rep = read::read(&Memory(&img), Depth::All);
            assert!(
                rep.problems.is_empty(),
                "{target}-{kind}: {:#?}",
                rep.problems
            );
            let (len, runs) = expected(kind);
            assert_eq!(rep.superblock.target_size, len, "{target}-{kind}");
            assert_eq!(rep.superblock.region_size, 8);
            assert_eq!(rep.copied_runs(), runs, "{target}-{kind}");
        }
    }
}

#[test]
fn dump_restore_dump_of_kernel_metadata_is_byte_equal() {
    for name in ["rs-small", "c-small", "rs-big", "c-big", "c-none"] {
        let img = fixture(name);
        let rep = read::read(&Memory(&img), Depth::All);
        let m = write::Metadata {
            region_size: rep.superblock.region_size,
            target_size: rep.superblock.target_size,
            copied: rep.copied_runs(),
        };
        let x1 = xml::to_xml(&m);
        let back = xml::from_xml(&x1).unwrap();
        let blocks = (img.len() / 4096) as u64;
        let mut out = vec![0u8; img.len()];
        for (b, d) in write::write(&back, blocks).unwrap() {
            out[b as usize * 4096..][..4096].copy_from_slice(&d);
        }
        let rep2 = read::read(&Memory(&out), Depth::All);
        assert!(rep2.problems.is_empty(), "{name}: {:#?}", rep2.problems);
        let x2 = xml::to_xml(&write::Metadata {
            region_size: rep2.superblock.region_size,
            target_size: rep2.superblock.target_size,
            copied: rep2.copied_runs(),
        });
        assert_eq!(x1, x2, "{name}");
    }
}

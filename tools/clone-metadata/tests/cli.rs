// SPDX-License-Identifier: GPL-2.0
//! The standard command-line cases of clone_check and clone_dump (as
//! thin-provisioning-tools tests its tools): --help, --version, no input, an
//! input that cannot be opened, an output that exists, and what each says of
//! clean and damaged metadata.

use clone_metadata::checksum::{self, BlockKind};
use clone_metadata::write::{self, Metadata};
use clone_metadata::BLOCK_SIZE;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clone-metadata-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Writes a clean image to `path`, or with `damage` one whose bitset root has a bad
/// checksum; returns the bitset root's block number (the damaged block).
fn image(path: &Path, damage: bool) -> u64 {
    let m = Metadata {
        region_size: 8,
        target_size: 2048,
        copied: vec![(0, 10), (100, 2), (255, 1)],
    };
    let mut img = vec![0u8; 1024 * BLOCK_SIZE];
    for (b, d) in write::write(&m, 1024).unwrap() {
        img[b as usize * BLOCK_SIZE..][..BLOCK_SIZE].copy_from_slice(&d);
    }
    // The bitset's root (superblock field bitset_root, at byte 188).
    let root = u64::from_le_bytes(img[188..196].try_into().unwrap());
    if damage {
        // Its checksum no longer matches.
        img[root as usize * BLOCK_SIZE + 40] ^= 1;
    }
    std::fs::write(path, img).unwrap();
    root
}

fn run(tool: &str, args: &[&str]) -> Output {
    let exe = match tool {
        "check" => env!("CARGO_BIN_EXE_clone_check"),
        _ => env!("CARGO_BIN_EXE_clone_dump"),
    };
    Command::new(exe).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn help_and_version() {
    for tool in ["check", "dump"] {
        let o = run(tool, &["--help"]);
        assert_eq!(o.status.code(), Some(0));
        assert!(text(&o).contains("Usage:"), "{}", text(&o));
        let o = run(tool, &["--version"]);
        assert_eq!(o.status.code(), Some(0));
        assert!(text(&o).contains(env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn no_input_and_unreadable_input() {
    for tool in ["check", "dump"] {
        let o = run(tool, &[]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let o = run(tool, &["/nonexistent/meta"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(text(&o).contains("/nonexistent/meta"), "{}", text(&o));
        let o = run(tool, &["--bogus", "x"]);
        assert_eq!(o.status.code(), Some(2));
    }
}

#[test]
fn check_says_clean_or_names_the_damaged_block() {
    let good = tmp("good.img");
    image(&good, false);
    let o = run("check", &[good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("256 regions, 13 copied") && text(&o).contains("clean"),
        "{}",
        text(&o)
    );
    let o = run("check", &["-q", good.to_str().unwrap()]);
    assert_eq!((o.status.code(), o.stdout.len()), (Some(0), 0));
    let bad = tmp("bad.img");
    let root = image(&bad, true);
    let o = run("check", &[bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    // The bitset root is not the superblock (block 0), so naming block 0, or any block
    // but the root, fails. Exactly one problem: the root's checksum, with its number.
    // (Block 5 with this writer: the last of the 6 blocks in use.)
    assert_eq!(root, 5, "bitset root moved: the writer's layout changed");
    let named: Vec<String> = text(&o)
        .lines()
        .filter(|l| l.contains(": block "))
        .map(String::from)
        .collect();
    let want = format!(
        "{}: block {root}: bitset btree node: bad checksum ",
        bad.display()
    );
    assert!(
        named.len() == 1 && named[0].starts_with(&want),
        "want one line starting {want:?}, got:\n{}",
        text(&o)
    );
    assert!(
        text(&o).contains(&format!("{}: damaged: 1 problem(s)", bad.display())),
        "{}",
        text(&o)
    );
    let o = run("check", &["--quiet", bad.to_str().unwrap()]);
    assert_eq!((o.status.code(), o.stdout.len()), (Some(1), 0));
    // The superblock alone is fine.
    let o = run("check", &["--super-block-only", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("clean"), "{}", text(&o));
    // A broken superblock.
    let mut img = std::fs::read(&good).unwrap();
    img[32] ^= 1;
    checksum::seal(&mut img[..BLOCK_SIZE], BlockKind::Superblock);
    let sb = tmp("sb.img");
    std::fs::write(&sb, img).unwrap();
    let o = run("check", &["--super-block-only", sb.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("block 0: superblock: magic"),
        "{}",
        text(&o)
    );
}

#[test]
fn dump_writes_the_copied_runs() {
    let good = tmp("dump.img");
    image(&good, false);
    let o = run("dump", &[good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "<superblock version=\"1\" region_size=\"8\" target_size=\"2048\" nr_regions=\"256\" nr_copied=\"13\">\n  <copied first=\"0\" count=\"10\"/>\n  <copied first=\"100\" count=\"2\"/>\n  <copied first=\"255\" count=\"1\"/>\n</superblock>\n"
    );
    let o = run("dump", &["--format", "human", good.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("copied: 0-9\ncopied: 100-101\ncopied: 255\n")
    );
    let out = tmp("dump.xml");
    let _ = std::fs::remove_file(&out);
    let o = run(
        "dump",
        &["-o", out.to_str().unwrap(), good.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("count=\"10\""));
    let o = run(
        "dump",
        &["-o", out.to_str().unwrap(), good.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("must not exist"), "{}", text(&o));
    // Damaged: what can be read, and exit 1.
    let bad = tmp("dump-bad.img");
    let root = image(&bad, true);
    let o = run("dump", &[bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("block {root}: bitset btree node: bad checksum"))
            && text(&o).contains("dumped what could be read"),
        "{}",
        text(&o)
    );
}

fn restore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clone_restore"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn dump_restore_dump_is_byte_equal() {
    let img = tmp("rt.img");
    image(&img, false);
    let d1 = run("dump", &[img.to_str().unwrap()]);
    let xml = tmp("rt.xml");
    std::fs::write(&xml, &d1.stdout).unwrap();
    // A fresh device of another size: the regions come back, the layout is the writer's.
    let dev = tmp("rt-dev.img");
    std::fs::write(&dev, vec![0xa5u8; 4096 * BLOCK_SIZE]).unwrap();
    let o = restore(&["-i", xml.to_str().unwrap(), "-o", dev.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run("check", &[dev.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let d2 = run("dump", &[dev.to_str().unwrap()]);
    assert_eq!(d1.stdout, d2.stdout);
}

#[test]
fn restore_refusals_say_why() {
    let xml = tmp("bad.xml");
    std::fs::write(&xml, "<superblock version=\"1\" region_size=\"8\" target_size=\"64\">\n<copied first=\"9\" count=\"1\"/>\n</superblock>\n").unwrap();
    let dev = tmp("small-dev.img");
    std::fs::write(&dev, vec![0u8; 64 * BLOCK_SIZE]).unwrap();
    let o = restore(&["-i", xml.to_str().unwrap(), "-o", dev.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("past the last region"), "{}", text(&o));
    std::fs::write(&xml, "<superblock version=\"1\" region_size=\"8\" target_size=\"64\">\n<copied first=\"1\" count=\"1\"/>\n</superblock>\n").unwrap();
    let o = restore(&["-i", xml.to_str().unwrap(), "-o", dev.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("64 blocks") && text(&o).contains("need at least"),
        "{}",
        text(&o)
    );
    std::fs::write(&xml, "<superblock version=\"1\"\n region_size=\"8\">").unwrap();
    let o = restore(&["-i", xml.to_str().unwrap(), "-o", dev.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("target_size"), "{}", text(&o));
    std::fs::write(
        &xml,
        "<superblock version=\"1\" region_size=\"8\" target_size=\"64\"/>\n",
    )
    .unwrap();
    let o = restore(&["-i", xml.to_str().unwrap(), "-o", "/nonexistent/dev"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("/nonexistent/dev"), "{}", text(&o));
    let o = restore(&["-i", "/nonexistent/x.xml", "-o", dev.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("/nonexistent/x.xml"));
    let o = restore(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let o = restore(&[]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn metadata_size_follows_the_guide() {
    let ms = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_clone_metadata_size"))
            .args(args)
            .output()
            .unwrap()
    };
    // The metadata_size selftest's case: 1 TiB in 1 MiB regions on 4.25 MiB.
    let o = ms(&["--device-size", "1t", "--region-size", "1M", "-n"]);
    assert_eq!(
        (o.status.code(), String::from_utf8_lossy(&o.stdout).trim()),
        (Some(0), "8704")
    );
    let o = ms(&["--device-size", "2147483648", "--region-size", "2048"]);
    assert!(text(&o).contains("worst case: 78 blocks"), "{}", text(&o));
    let o = ms(&["--device-size", "1t", "--region-size", "12"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("power of two"));
    let o = ms(&["--device-size", "1x", "--region-size", "8"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("unknown unit"), "{}", text(&o));
    assert_eq!(ms(&[]).status.code(), Some(2));
    assert_eq!(ms(&["--help"]).status.code(), Some(0));
    assert!(text(&ms(&["--version"])).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn repair_keeps_what_it_can_read_and_asks_about_the_rest() {
    // Two array blocks; the second (regions 32576 on) damaged.
    let m = Metadata {
        region_size: 8,
        target_size: 262_144,
        copied: vec![(0, 1), (32_511, 130), (32_767, 1)],
    };
    let mut img = vec![0u8; 1024 * BLOCK_SIZE];
    let blocks = write::write(&m, 1024).unwrap();
    for (b, d) in &blocks {
        img[*b as usize * BLOCK_SIZE..][..BLOCK_SIZE].copy_from_slice(d);
    }
    // Array blocks carry the array checksum: find the second one (max entries 509, 3 words).
    let second = blocks
        .iter()
        .find(|(_, d)| d[4..8] == 509u32.to_le_bytes() && d[8..12] == 3u32.to_le_bytes())
        .map(|(b, _)| *b)
        .unwrap();
    img[second as usize * BLOCK_SIZE + 30] ^= 1;
    let bad = tmp("repair-in.img");
    std::fs::write(&bad, &img).unwrap();
    let out = tmp("repair-out.img");
    let fresh = || std::fs::write(&out, vec![0u8; 1024 * BLOCK_SIZE]).unwrap();
    let repair = |extra: &[&str]| {
        let mut a = vec!["-i", bad.to_str().unwrap(), "-o", out.to_str().unwrap()];
        a.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_clone_repair"))
            .args(&a)
            .output()
            .unwrap()
    };
    fresh();
    let o = repair(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("192 regions cannot be read (32576-32767)"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("--unknown copied or --unknown uncopied"));
    let o = repair(&["--unknown", "uncopied"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let d = run("dump", &[out.to_str().unwrap()]);
    let x = String::from_utf8_lossy(&d.stdout).into_owned();
    // Known: 0, and 32511-32575 (the first block's part of the run).
    assert!(x.contains("<copied first=\"0\" count=\"1\"/>\n  <copied first=\"32511\" count=\"65\"/>\n</superblock>"), "{x}");
    assert_eq!(
        run("check", &[out.to_str().unwrap()]).status.code(),
        Some(0)
    );
    fresh();
    let o = repair(&["--unknown", "copied"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let x = String::from_utf8_lossy(&run("dump", &[out.to_str().unwrap()]).stdout).into_owned();
    assert!(x.contains("<copied first=\"32511\" count=\"257\"/>"), "{x}");
    // The output must not be the input.
    let o = Command::new(env!("CARGO_BIN_EXE_clone_repair"))
        .args(["-i", bad.to_str().unwrap(), "-o", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("must not be the input"));
    // A damaged superblock: the sizes must be given; then every region is unknown.
    img[40] ^= 1;
    std::fs::write(&bad, &img).unwrap();
    let o = repair(&["--unknown", "uncopied"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("give --region-size and --target-size"),
        "{}",
        text(&o)
    );
    fresh();
    let o = repair(&["--region-size", "8", "--target-size", "262144"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("32768 regions cannot be read"),
        "{}",
        text(&o)
    );
}

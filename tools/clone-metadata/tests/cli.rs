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

/// Asserts that the tool exited with `code` and said `needle` (stdout or stderr).
fn says(o: &Output, code: i32, needle: &str) {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
    assert!(text(o).contains(needle), "{}", text(o));
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
    says(&o, 0, "256 regions, 13 copied");
    says(&o, 0, "clean");
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
    says(&o, 1, "block 0: superblock: magic");
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
    // Damaged: nothing dumped, exit 1 (see dump_refuses_damaged_metadata_unless_repairing).
    let bad = tmp("dump-bad.img");
    let root = image(&bad, true);
    let o = run("dump", &[bad.to_str().unwrap()]);
    assert_eq!(
        (o.status.code(), o.stdout.len()),
        (Some(1), 0),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains(&format!("block {root}: bitset btree node: bad checksum")),
        "{}",
        text(&o)
    );
}

#[test]
fn dump_refuses_damaged_metadata_unless_repairing() {
    let bad = tmp("salvage-in.img");
    std::fs::write(&bad, two_array_blocks_second_damaged()).unwrap();
    let b = bad.to_str().unwrap();
    // Without -r: no XML, on standard output or in a file; exit 1; the way out named.
    let xml = tmp("salvage.xml");
    let _ = std::fs::remove_file(&xml);
    for args in [
        &[b][..],
        &["-o", xml.to_str().unwrap(), b],
        &["-f", "human", b],
    ] {
        let o = run("dump", args);
        assert_eq!(
            (o.status.code(), o.stdout.len()),
            (Some(1), 0),
            "{args:?}: {}",
            text(&o)
        );
        assert!(
            text(&o).contains(": bitset array block: bad checksum")
                && text(&o).contains(&format!(
                    "clone_dump: {b}: the metadata is damaged: nothing dumped; use -r/--repair"
                )),
            "{args:?}: {}",
            text(&o)
        );
        assert!(!xml.exists(), "{args:?}: the output file was created");
    }
    // With -r: the regions that could be read, and those that could not as <unknown>.
    let want = "<superblock version=\"1\" region_size=\"8\" target_size=\"262144\" nr_regions=\"32768\" nr_copied=\"66\" nr_unknown=\"192\">\n  <copied first=\"0\" count=\"1\"/>\n  <copied first=\"32511\" count=\"65\"/>\n  <unknown first=\"32576\" count=\"192\"/>\n</superblock>\n";
    for r in ["-r", "--repair"] {
        let o = run("dump", &[r, b]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout), want);
        assert!(
            text(&o).contains(": bitset array block: bad checksum"),
            "{}",
            text(&o)
        );
    }
    let o = run("dump", &["-r", "-f", "human", b]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("regions: 32768 (66 copied, 192 unknown)\ncopied: 0\ncopied: 32511-32575\nunknown: 32576-32767\n"),
        "{}",
        text(&o)
    );
    std::fs::write(&xml, want).unwrap();
    let x = xml.to_str().unwrap();
    // clone_restore refuses the unknown regions until told what they are.
    let dev = tmp("salvage-dev.img");
    let d = dev.to_str().unwrap();
    std::fs::write(&dev, vec![0u8; 1024 * BLOCK_SIZE]).unwrap();
    let o = restore(&["-i", x, "-o", d]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "clone_restore: {x}: the state of 192 regions is unknown (32576-32767)"
        )) && text(&o).contains("--unknown copied or --unknown uncopied"),
        "{}",
        text(&o)
    );
    assert!(
        std::fs::read(&dev).unwrap().iter().all(|&b| b == 0),
        "written"
    );
    for (unknown, runs) in [
        (
            "copied",
            "  <copied first=\"0\" count=\"1\"/>\n  <copied first=\"32511\" count=\"257\"/>\n",
        ),
        (
            "uncopied",
            "  <copied first=\"0\" count=\"1\"/>\n  <copied first=\"32511\" count=\"65\"/>\n",
        ),
    ] {
        std::fs::write(&dev, vec![0u8; 1024 * BLOCK_SIZE]).unwrap();
        let o = restore(&["-i", x, "-o", d, "--unknown", unknown]);
        says(
            &o,
            0,
            &format!("192 regions of unknown state become {unknown}"),
        );
        let o = run("check", &[d]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let o = run("dump", &[d]);
        let n = if unknown == "copied" { 258 } else { 66 };
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            format!("<superblock version=\"1\" region_size=\"8\" target_size=\"262144\" nr_regions=\"32768\" nr_copied=\"{n}\">\n{runs}</superblock>\n"),
            "--unknown {unknown}"
        );
    }
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
    says(&o, 1, "64 blocks");
    says(&o, 1, "need at least");
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
    // The metadata_size selftest's case: 1 TiB in 1 MiB regions on 4504 KiB.
    let o = ms(&["--device-size", "1t", "--region-size", "1M", "-n"]);
    assert_eq!(
        (o.status.code(), String::from_utf8_lossy(&o.stdout).trim()),
        (Some(0), "9008")
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

/// Metadata of 32768 regions in two array blocks, copied: 0, 32511-32640 and 32767;
/// the second array block (regions 32576 on) has a bad checksum: regions 32576-32767
/// are of unknown state.
fn two_array_blocks_second_damaged() -> Vec<u8> {
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
    img
}

#[test]
fn repair_keeps_what_it_can_read_and_asks_about_the_rest() {
    let mut img = two_array_blocks_second_damaged();
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
    says(&o, 1, "192 regions cannot be read (32576-32767)");
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
    says(&o, 1, "give --region-size and --target-size");
    fresh();
    let o = repair(&["--region-size", "8", "--target-size", "262144"]);
    says(&o, 1, "32768 regions cannot be read");
}

/// Runs `exe` with `args`, killing it if it has not finished in `secs` seconds: a tool
/// that hangs fails the test instead of hanging it (its status is then the signal's, and
/// its stderr ends with "did not finish").
fn run_bounded(exe: &str, args: &[&str], secs: u64) -> Output {
    use std::process::Stdio;
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the pipes on threads so that a chatty child cannot block on them.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let start = std::time::Instant::now();
    let mut late = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed().as_secs() >= secs {
            let _ = child.kill();
            late = true;
            break child.wait().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = t_err.join().unwrap();
    if late {
        stderr
            .extend_from_slice(format!("\n{exe} {args:?} did not finish in {secs} s\n").as_bytes());
    }
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr,
    }
}

#[test]
fn restore_of_a_million_runs_is_linear_and_dumps_back_equal() {
    // 2^20 runs of one region, one region apart: 2^21 regions. The restore used to
    // count lines from the start of the text on every element (hours for this).
    let runs = 1u64 << 20;
    let regions = 2 * runs;
    let mut xml = format!(
        "<superblock version=\"1\" region_size=\"8\" target_size=\"{}\" nr_regions=\"{regions}\" nr_copied=\"{runs}\">\n",
        regions * 8
    );
    for i in 0..runs {
        xml.push_str(&format!("  <copied first=\"{}\" count=\"1\"/>\n", 2 * i));
    }
    xml.push_str("</superblock>\n");
    let input = tmp("million.xml");
    std::fs::write(&input, &xml).unwrap();
    let dev = tmp("million-dev.img");
    std::fs::write(&dev, vec![0u8; 2048 * BLOCK_SIZE]).unwrap();
    let o = run_bounded(
        env!("CARGO_BIN_EXE_clone_restore"),
        &["-i", input.to_str().unwrap(), "-o", dev.to_str().unwrap()],
        120,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let d = run_bounded(
        env!("CARGO_BIN_EXE_clone_dump"),
        &[dev.to_str().unwrap()],
        120,
    );
    assert_eq!(d.status.code(), Some(0), "{}", text(&d));
    assert!(
        d.stdout == xml.as_bytes(),
        "the dump differs from the restored XML"
    );
}

#[test]
fn repair_of_a_damaged_superblock_with_huge_sizes_finishes_with_the_sizes_given() {
    // (what is damaged, byte offset, new 64-bit value, reseal the checksum): each leaves a
    // superblock that is refused and records 2^45 regions or more.
    #[rustfmt::skip]
    let cases: &[(&str, usize, u64, bool)] = &[
        ("bad checksum, 2^45 regions", 180, 1 << 48, false),
        ("bad magic, 2^45 regions", 32, 0x1234, true),
        ("region size 1, 2^48 regions", 172, 1, true),
        ("target size 2^63, more than 2^31 regions", 180, 1 << 63, true),
    ];
    let good = {
        let m = Metadata {
            region_size: 8,
            target_size: 262_144,
            copied: vec![(0, 1), (100, 5)],
        };
        let mut img = vec![0u8; 1024 * BLOCK_SIZE];
        for (b, d) in write::write(&m, 1024).unwrap() {
            img[b as usize * BLOCK_SIZE..][..BLOCK_SIZE].copy_from_slice(&d);
        }
        img
    };
    let mut failed = Vec::new();
    for &(what, at, value, reseal) in cases {
        let mut img = good.clone();
        if at != 180 {
            // A superblock of 2^45 regions, or more: 8-sector regions of 2^48 sectors.
            img[180..188].copy_from_slice(&(1u64 << 48).to_le_bytes());
        }
        img[at..at + 8].copy_from_slice(&value.to_le_bytes());
        if reseal {
            checksum::seal(&mut img[..BLOCK_SIZE], BlockKind::Superblock);
        }
        let bad = tmp("huge-sb.img");
        std::fs::write(&bad, &img).unwrap();
        let out = tmp("huge-sb-out.img");
        for (unknown, want_copied) in [
            ("uncopied", ""),
            ("copied", "  <copied first=\"0\" count=\"32768\"/>\n"),
        ] {
            std::fs::write(&out, vec![0u8; 1024 * BLOCK_SIZE]).unwrap();
            let o = run_bounded(
                env!("CARGO_BIN_EXE_clone_repair"),
                &[
                    "-i",
                    bad.to_str().unwrap(),
                    "-o",
                    out.to_str().unwrap(),
                    "--region-size",
                    "8",
                    "--target-size",
                    "262144",
                    "--unknown",
                    unknown,
                ],
                30,
            );
            let want = format!("<superblock version=\"1\" region_size=\"8\" target_size=\"262144\" nr_regions=\"32768\" nr_copied=\"{}\">\n{want_copied}</superblock>\n",
                if want_copied.is_empty() { 0 } else { 32768 });
            let d = run_bounded(
                env!("CARGO_BIN_EXE_clone_dump"),
                &[out.to_str().unwrap()],
                30,
            );
            if o.status.code() != Some(0)
                || !text(&o).contains("32768 regions of unknown state become")
                || d.stdout != want.as_bytes()
            {
                eprintln!(
                    "case {what:?} --unknown {unknown}: repair said:\n{}dump:\n{}",
                    text(&o),
                    text(&d)
                );
                failed.push(what);
            }
        }
    }
    assert!(failed.is_empty(), "cases failed: {failed:#?}");
}

/// The binaries that write to standard output, with arguments that make them write; a
/// `{out}` argument is replaced by a fresh output image.
#[rustfmt::skip]
const STDOUT_CASES: &[(&str, &str, &[&str])] = &[
    ("clone_check", env!("CARGO_BIN_EXE_clone_check"), &["{good}"]),
    ("clone_check (damaged)", env!("CARGO_BIN_EXE_clone_check"), &["{bad}"]),
    ("clone_dump", env!("CARGO_BIN_EXE_clone_dump"), &["{good}"]),
    ("clone_dump --format human", env!("CARGO_BIN_EXE_clone_dump"), &["--format", "human", "{good}"]),
    ("clone_metadata_size", env!("CARGO_BIN_EXE_clone_metadata_size"), &["--device-size", "1t", "--region-size", "64k"]),
    ("clone_metadata_size -n", env!("CARGO_BIN_EXE_clone_metadata_size"), &["--device-size", "1t", "--region-size", "64k", "-n"]),
    ("clone_repair", env!("CARGO_BIN_EXE_clone_repair"), &["-i", "{bad}", "-o", "{out}", "--unknown", "copied"]),
];

/// Runs case `args` of `exe` with standard output `stdout`.
fn run_to(exe: &str, args: &[&str], stdout: std::process::Stdio, name: &str) -> Output {
    let good = tmp(&format!("{name}-good.img"));
    image(&good, false);
    let bad = tmp(&format!("{name}-bad.img"));
    image(&bad, true);
    let out = tmp(&format!("{name}-out.img"));
    std::fs::write(&out, vec![0u8; 1024 * BLOCK_SIZE]).unwrap();
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.replace("{good}", good.to_str().unwrap())
                .replace("{bad}", bad.to_str().unwrap())
                .replace("{out}", out.to_str().unwrap())
        })
        .collect();
    Command::new(exe)
        .args(&args)
        .stdout(stdout)
        .output()
        .unwrap()
}

#[test]
fn a_full_standard_output_is_reported_with_status_2() {
    let mut failed = Vec::new();
    for (i, &(what, exe, args)) in STDOUT_CASES.iter().enumerate() {
        let full = std::fs::File::create("/dev/full").unwrap();
        let o = run_to(exe, args, full.into(), &format!("full{i}"));
        let err = String::from_utf8_lossy(&o.stderr);
        if o.status.code() != Some(2)
            || err.contains("panicked")
            || !err.contains("cannot write to standard output: No space left on device")
        {
            eprintln!("case {what:?}: status {:?}, stderr:\n{err}", o.status);
            failed.push(what);
        }
    }
    assert!(failed.is_empty(), "cases failed: {failed:#?}");
}

#[test]
fn a_closed_pipe_ends_the_tool_quietly_with_status_141() {
    let mut failed = Vec::new();
    for (i, &(what, exe, args)) in STDOUT_CASES.iter().enumerate() {
        // A pipe whose reader has exited: `true` reads nothing and ends.
        let mut reader = Command::new("true")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pipe = reader.stdin.take().unwrap();
        reader.wait().unwrap();
        let o = run_to(exe, args, pipe.into(), &format!("pipe{i}"));
        let err = String::from_utf8_lossy(&o.stderr);
        // clone_repair reports its choice on stderr before it writes its result.
        let quiet = err
            .lines()
            .all(|l| l.contains("regions of unknown state") || l.contains(": block "));
        if o.status.code() != Some(141) || err.contains("panicked") || !quiet {
            eprintln!("case {what:?}: status {:?}, stderr:\n{err}", o.status);
            failed.push(what);
        }
    }
    assert!(failed.is_empty(), "cases failed: {failed:#?}");
}

/// (what the input is, how to make it at a path, what the refusal says): inputs that
/// are not a clone's metadata.
type MakeInput = fn(&Path);

#[rustfmt::skip]
const NOT_METADATA: &[(&str, MakeInput, &str)] = &[
    ("a FIFO", |p| {
        let s = Command::new("mkfifo").arg(p).status().unwrap();
        assert!(s.success());
    }, "is a FIFO, not a regular file or a block device"),
    ("a directory", |p| std::fs::create_dir(p).unwrap(),
        "is a directory, not a regular file or a block device"),
    ("/dev/null", |p| std::os::unix::fs::symlink("/dev/null", p).unwrap(),
        "is a character device, not a regular file or a block device"),
    ("clone_dump's XML", |p| std::fs::write(p,
        "<superblock version=\"1\" region_size=\"8\" target_size=\"64\"/>\n").unwrap(),
        "looks like XML, not binary metadata"),
    ("XML with a declaration, longer than a block", |p| {
        let mut x = String::from("<?xml version=\"1.0\"?>\n<superblock version=\"1\" region_size=\"8\" target_size=\"262144\">\n");
        for i in 0..200 {
            x.push_str(&format!("  <copied first=\"{}\" count=\"1\"/>\n", 2 * i));
        }
        x.push_str("</superblock>\n");
        std::fs::write(p, x).unwrap();
    }, "looks like XML, not binary metadata"),
    ("thin-pool metadata", |p| {
        // A thin pool's superblock: its magic, 27022010, where ours keeps its own.
        let mut img = vec![0u8; 64 * BLOCK_SIZE];
        img[32..40].copy_from_slice(&27_022_010u64.to_le_bytes());
        img[0..4].copy_from_slice(&0x1234_5678u32.to_le_bytes());
        std::fs::write(p, img).unwrap();
    }, "is thin-pool metadata (superblock magic 27022010), not a clone's"),
];

#[test]
fn inputs_that_are_not_clone_metadata_are_refused_as_such() {
    let mut failed = Vec::new();
    for (i, &(what, make, says)) in NOT_METADATA.iter().enumerate() {
        for tool in ["clone_check", "clone_dump", "clone_repair"] {
            let input = tmp(&format!("not-metadata-{i}-{tool}"));
            let _ = std::fs::remove_file(&input);
            let _ = std::fs::remove_dir(&input);
            make(&input);
            let out = tmp(&format!("not-metadata-out-{i}"));
            std::fs::write(&out, vec![0u8; 1024 * BLOCK_SIZE]).unwrap();
            let (exe, args) = match tool {
                "clone_check" => (
                    env!("CARGO_BIN_EXE_clone_check"),
                    vec![input.to_str().unwrap()],
                ),
                "clone_dump" => (
                    env!("CARGO_BIN_EXE_clone_dump"),
                    vec![input.to_str().unwrap()],
                ),
                _ => (
                    env!("CARGO_BIN_EXE_clone_repair"),
                    vec![
                        "-i",
                        input.to_str().unwrap(),
                        "-o",
                        out.to_str().unwrap(),
                        "--unknown",
                        "copied",
                        "--region-size",
                        "8",
                        "--target-size",
                        "262144",
                    ],
                ),
            };
            let o = run_bounded(exe, &args, 30);
            let want = format!("{}: {says}", input.display());
            if o.status.code() != Some(2)
                || !text(&o).contains(&want)
                || text(&o).contains("damaged")
            {
                eprintln!(
                    "case {what:?} with {tool}: status {:?}, want {want:?}:\n{}",
                    o.status,
                    text(&o)
                );
                failed.push(format!("{what} ({tool})"));
            }
            // Nothing was written on the output.
            if std::fs::read(&out).unwrap().iter().any(|&b| b != 0) {
                eprintln!("case {what:?} with {tool}: the output was written");
                failed.push(format!("{what} ({tool}): output written"));
            }
        }
    }
    assert!(failed.is_empty(), "cases failed: {failed:#?}");
}

#[test]
fn restore_refuses_a_fifo_and_its_own_input_as_output() {
    let xml = tmp("self.xml");
    let body = "<superblock version=\"1\" region_size=\"8\" target_size=\"64\"/>\n";
    std::fs::write(&xml, body).unwrap();
    let link = tmp("self-link.xml");
    let _ = std::fs::remove_file(&link);
    std::fs::hard_link(&xml, &link).unwrap();
    for out in [&xml, &link] {
        let o = run_bounded(
            env!("CARGO_BIN_EXE_clone_restore"),
            &["-i", xml.to_str().unwrap(), "-o", out.to_str().unwrap()],
            30,
        );
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("is the input"), "{}", text(&o));
        assert_eq!(
            std::fs::read_to_string(&xml).unwrap(),
            body,
            "the input was overwritten"
        );
    }
    let fifo = tmp("restore.fifo");
    let _ = std::fs::remove_file(&fifo);
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let dev = tmp("restore-fifo-dev.img");
    std::fs::write(&dev, vec![0u8; 1024 * BLOCK_SIZE]).unwrap();
    let o = run_bounded(
        env!("CARGO_BIN_EXE_clone_restore"),
        &["-i", fifo.to_str().unwrap(), "-o", dev.to_str().unwrap()],
        30,
    );
    says(&o, 2, "is a FIFO, not a regular file or a block device");
}

#[test]
fn restore_refuses_xml_that_is_not_utf8_as_xml_that_does_not_parse() {
    let xml = tmp("latin1.xml");
    std::fs::write(
        &xml,
        b"<superblock version=\"1\" region_size=\"8\" target_size=\"64\">\n<!-- caf\xe9 -->\n</superblock>\n",
    )
    .unwrap();
    let dev = tmp("latin1-dev.img");
    std::fs::write(&dev, vec![0u8; 1024 * BLOCK_SIZE]).unwrap();
    let o = restore(&["-i", xml.to_str().unwrap(), "-o", dev.to_str().unwrap()]);
    says(&o, 1, &format!("{}: line 2: not UTF-8 text", xml.display()));
}

#[test]
fn restore_and_repair_refuse_an_output_that_is_not_a_file_or_a_block_device() {
    let xml = tmp("out-kind.xml");
    std::fs::write(
        &xml,
        "<superblock version=\"1\" region_size=\"8\" target_size=\"64\"/>\n",
    )
    .unwrap();
    let bad = tmp("out-kind-bad.img");
    image(&bad, true);
    let fifo = tmp("out-kind.fifo");
    let _ = std::fs::remove_file(&fifo);
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let dir = tmp("out-kind.dir");
    let _ = std::fs::create_dir(&dir);
    let (x, b) = (xml.to_str().unwrap(), bad.to_str().unwrap());
    let mut failed = Vec::new();
    for (out, says) in [
        (
            fifo.to_str().unwrap(),
            "is a FIFO, not a regular file or a block device",
        ),
        (
            dir.to_str().unwrap(),
            "is a directory, not a regular file or a block device",
        ),
        (
            "/dev/null",
            "is a character device, not a regular file or a block device",
        ),
    ] {
        for (exe, args) in [
            (
                env!("CARGO_BIN_EXE_clone_restore"),
                vec!["-i", x, "-o", out],
            ),
            (
                env!("CARGO_BIN_EXE_clone_repair"),
                vec!["-i", b, "-o", out, "--unknown", "copied"],
            ),
        ] {
            // A FIFO opened for writing would block the tool until a reader came.
            let o = run_bounded(exe, &args, 30);
            if o.status.code() != Some(2) || !text(&o).contains(&format!("{out}: {says}")) {
                eprintln!("{exe} -o {out}: status {:?}:\n{}", o.status, text(&o));
                failed.push(format!("{exe} -o {out}"));
            }
        }
    }
    assert!(failed.is_empty(), "cases failed: {failed:#?}");
}

#[test]
fn meta_csum_has_help_version_and_quiet() {
    let csum = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dmc-meta-csum"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = csum(&["--help"]);
    says(&o, 0, "Usage:");
    says(&o, 0, "--seal");
    let o = csum(&["-V"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains(env!("CARGO_PKG_VERSION")), "{}", text(&o));
    let img = tmp("csum.img");
    let root = image(&img, true);
    let (i, r) = (img.to_str().unwrap(), root.to_string());
    // The superblock is right, the bitset root is not.
    assert_eq!(csum(&[i, "0", "superblock"]).status.code(), Some(0));
    let o = csum(&[i, &r, "btree"]);
    says(&o, 1, &format!("{i}: block {r}: wrong checksum"));
    let o = csum(&["-q", i, &r, "btree"]);
    assert_eq!((o.status.code(), text(&o)), (Some(1), String::new()));
    // --seal anywhere on the line, as the selftest gives it.
    assert_eq!(csum(&[i, &r, "btree", "--seal"]).status.code(), Some(0));
    assert_eq!(csum(&[i, &r, "btree"]).status.code(), Some(0));
    // Usage errors: status 2, saying what is wrong.
    for (args, says) in [
        (&[i, "x", "btree"][..], "'x' is not a block number"),
        (&[i, "0", "leaf"], "unknown block kind 'leaf'"),
        (&[i, "0"], "Usage:"),
    ] {
        let o = csum(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }
}

const CHECK: &str = env!("CARGO_BIN_EXE_clone_check");
const DUMP: &str = env!("CARGO_BIN_EXE_clone_dump");
const RESTORE: &str = env!("CARGO_BIN_EXE_clone_restore");
const REPAIR: &str = env!("CARGO_BIN_EXE_clone_repair");
const SIZE: &str = env!("CARGO_BIN_EXE_clone_metadata_size");
const CSUM: &str = env!("CARGO_BIN_EXE_dmc-meta-csum");

/// Writes to `path` the image of [`image`] (with `damage`, its bitset root's checksum bad)
/// with block 320, which nothing references, counted `count` (1 or 2) in the space map,
/// and the counters that follow from it made to agree (the index's free count, the
/// superblock's allocated count): with count 1 and no damage, a leaked block and nothing
/// else, as the kernel's space map would leave it.
fn leaked_image(path: &Path, count: u64, damage: bool) {
    const LEAKED: usize = 320;
    image(path, damage);
    let mut img = std::fs::read(path).unwrap();
    let le64 = |d: &[u8], at: usize| u64::from_le_bytes(d[at..at + 8].try_into().unwrap());
    let index = le64(&img, 44 + 16) as usize;
    let bitmap = le64(&img[index * BLOCK_SIZE..], 16) as usize;
    // The entry's two bits: the high bit of its count at 2e, the low one at 2e + 1.
    let bm = &mut img[bitmap * BLOCK_SIZE..][..BLOCK_SIZE];
    let at = 16 + 8 * (LEAKED / 32);
    let mut w = le64(bm, at);
    w |= (count >> 1) << (2 * (LEAKED % 32)) | (count & 1) << (2 * (LEAKED % 32) + 1);
    bm[at..at + 8].copy_from_slice(&w.to_le_bytes());
    checksum::seal(bm, BlockKind::SpaceMapBitmap);
    let ix = &mut img[index * BLOCK_SIZE..][..BLOCK_SIZE];
    let free = u32::from_le_bytes(ix[24..28].try_into().unwrap()) - 1;
    ix[24..28].copy_from_slice(&free.to_le_bytes());
    checksum::seal(ix, BlockKind::SpaceMapIndex);
    let allocated = le64(&img, 44 + 8) + 1;
    img[44 + 8..44 + 16].copy_from_slice(&allocated.to_le_bytes());
    checksum::seal(&mut img[..BLOCK_SIZE], BlockKind::Superblock);
    std::fs::write(path, img).unwrap();
}

/// The XML clone_dump writes of [`image`]'s metadata.
const GOOD_XML: &str = "<superblock version=\"1\" region_size=\"8\" target_size=\"2048\" nr_regions=\"256\" nr_copied=\"13\">\n  <copied first=\"0\" count=\"10\"/>\n  <copied first=\"100\" count=\"2\"/>\n  <copied first=\"255\" count=\"1\"/>\n</superblock>\n";

/// The inputs the table-driven cases name in their arguments, made afresh under names of
/// their own (`name`): `(word, path)`.
///
/// - `{good}`: [`image`], clean; `{bad}`: its bitset root's checksum bad (fatal);
/// - `{leak}`: one leaked block, nothing else (non-fatal); `{bad_leak}`: a leaked block
///   and `{bad}`'s damage; `{overcount}`: a block nothing references counted 2 (fatal:
///   only a count of 1 is a leak);
/// - `{salvage}`: [`two_array_blocks_second_damaged`];
/// - `{xml}`: `{good}`'s dump; `{unknown_xml}`: a salvaged dump with `<unknown>` runs;
///   `{bad_xml}`: XML with an unknown element;
/// - `{out}`: a blank image to write on.
fn inputs(name: &str) -> Vec<(&'static str, String)> {
    let path = |what: &str| {
        let p = tmp(&format!("{name}-{what}"));
        let _ = std::fs::remove_file(&p);
        p
    };
    let good = path("good.img");
    image(&good, false);
    let bad = path("bad.img");
    image(&bad, true);
    let leak = path("leak.img");
    leaked_image(&leak, 1, false);
    let bad_leak = path("bad-leak.img");
    leaked_image(&bad_leak, 1, true);
    let overcount = path("overcount.img");
    leaked_image(&overcount, 2, false);
    let salvage = path("salvage.img");
    std::fs::write(&salvage, two_array_blocks_second_damaged()).unwrap();
    let xml = path("good.xml");
    std::fs::write(&xml, GOOD_XML).unwrap();
    let unknown_xml = path("unknown.xml");
    std::fs::write(&unknown_xml, "<superblock version=\"1\" region_size=\"8\" target_size=\"2048\" nr_copied=\"10\" nr_unknown=\"64\">\n  <copied first=\"0\" count=\"10\"/>\n  <unknown first=\"64\" count=\"64\"/>\n</superblock>\n").unwrap();
    let bad_xml = path("bad.xml");
    std::fs::write(&bad_xml, "<superblock version=\"1\" region_size=\"8\" target_size=\"2048\">\n  <copy first=\"1\" count=\"1\"/>\n</superblock>\n").unwrap();
    let out = path("out.img");
    std::fs::write(&out, vec![0u8; 1024 * BLOCK_SIZE]).unwrap();
    let s = |p: PathBuf| p.to_str().unwrap().to_string();
    vec![
        ("{good}", s(good)),
        ("{bad}", s(bad)),
        ("{leak}", s(leak)),
        ("{bad_leak}", s(bad_leak)),
        ("{overcount}", s(overcount)),
        ("{salvage}", s(salvage)),
        ("{xml}", s(xml)),
        ("{unknown_xml}", s(unknown_xml)),
        ("{bad_xml}", s(bad_xml)),
        ("{out}", s(out)),
    ]
}

/// `text` with the words of [`inputs`] replaced by their paths.
fn fill(text: &str, inputs: &[(&str, String)]) -> String {
    inputs
        .iter()
        .fold(text.to_string(), |t, (word, path)| t.replace(word, path))
}

/// Runs `exe` with `args` (the words of [`inputs`] filled in), bounded in time.
fn run_case(exe: &str, args: &[&str], inputs: &[(&str, String)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| fill(a, inputs)).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_bounded(exe, &args, 30)
}

/// (case, binary, arguments, exit status, what `-q` leaves on standard error: `None` for
/// nothing, else the one line that says why the tool refused or could not run).
type QuietCase = (
    &'static str,
    &'static str,
    &'static [&'static str],
    i32,
    Option<&'static str>,
);

#[rustfmt::skip]
const QUIET_CASES: &[QuietCase] = &[
    ("clone_check, clean", CHECK, &["{good}"], 0, None),
    ("clone_check, damaged", CHECK, &["{bad}"], 1, None),
    ("clone_check --super-block-only, damaged past it", CHECK, &["--super-block-only", "{bad}"], 0, None),
    ("clone_check, a leaked block", CHECK, &["{leak}"], 1, None),
    ("clone_check --ignore-non-fatal-errors, a leaked block", CHECK,
        &["--ignore-non-fatal-errors", "{leak}"], 0, None),
    ("clone_check --ignore-non-fatal-errors, damaged", CHECK,
        &["--ignore-non-fatal-errors", "{bad}"], 1, None),
    ("clone_check, no input", CHECK, &["/nonexistent/meta"], 2, Some("cannot open /nonexistent/meta")),
    ("clone_dump, clean", DUMP, &["{good}"], 0, None),
    ("clone_dump --format human", DUMP, &["--format", "human", "{good}"], 0, None),
    ("clone_dump -r, salvaged", DUMP, &["-r", "{salvage}"], 0, None),
    ("clone_dump, a leaked block", DUMP, &["{leak}"], 0, None),
    ("clone_dump, damaged", DUMP, &["{bad}"], 1, Some("the metadata is damaged: nothing dumped")),
    ("clone_restore", RESTORE, &["-i", "{xml}", "-o", "{out}"], 0, None),
    ("clone_restore --unknown copied", RESTORE,
        &["-i", "{unknown_xml}", "-o", "{out}", "--unknown", "copied"], 0, None),
    ("clone_restore, XML that does not parse", RESTORE, &["-i", "{bad_xml}", "-o", "{out}"], 1,
        Some("line 2: unknown element <copy>")),
    ("clone_restore, unknown runs", RESTORE, &["-i", "{unknown_xml}", "-o", "{out}"], 1,
        Some("Choose with --unknown copied or --unknown uncopied")),
    ("clone_repair, damaged", REPAIR, &["-i", "{bad}", "-o", "{out}"], 0, None),
    ("clone_repair --unknown copied", REPAIR, &["-i", "{salvage}", "-o", "{out}", "--unknown", "copied"], 0, None),
    ("clone_repair, clean", REPAIR, &["-i", "{good}", "-o", "{out}"], 0, None),
    ("clone_repair, a leaked block", REPAIR, &["-i", "{leak}", "-o", "{out}"], 0, None),
    ("clone_repair, unknown regions", REPAIR, &["-i", "{salvage}", "-o", "{out}"], 1,
        Some("Choose with --unknown copied or --unknown uncopied")),
    ("dmc-meta-csum, wrong", CSUM, &["{bad}", "5", "btree"], 1, None),
];

#[test]
fn quiet_keeps_the_exit_status_and_says_nothing_but_why_it_could_not_run() {
    let inputs = inputs("quiet");
    let mut failed = Vec::new();
    for &(what, exe, args, code, left) in QUIET_CASES {
        let loud = run_case(exe, args, &inputs);
        for q in ["-q", "--quiet"] {
            let quiet = run_case(exe, &[&[q], args].concat(), &inputs);
            let err = String::from_utf8_lossy(&quiet.stderr);
            // The data output (clone_dump's) is written all the same; nothing else.
            let stdout_ok = if exe == DUMP {
                quiet.stdout == loud.stdout
            } else {
                quiet.stdout.is_empty()
            };
            let stderr_ok = match left {
                None => err.is_empty(),
                Some(why) => err.contains(why) && err.lines().count() == 1,
            };
            if loud.status.code() != Some(code)
                || quiet.status.code() != Some(code)
                || !stdout_ok
                || !stderr_ok
            {
                eprintln!(
                    "case {what:?} {q}: want status {code}, got {:?} without and {:?} with it; with it, stdout:\n{}stderr:\n{err}",
                    loud.status.code(),
                    quiet.status.code(),
                    String::from_utf8_lossy(&quiet.stdout)
                );
                failed.push(format!("{what} {q}"));
            }
        }
    }
    assert!(failed.is_empty(), "cases failed: {failed:#?}");
}

/// (case, binary, arguments, exit status, what stdout says, what stderr says): each text
/// on its stream and not on the other; a stream with nothing listed stays empty.
type StreamCase = (
    &'static str,
    &'static str,
    &'static [&'static str],
    i32,
    &'static [&'static str],
    &'static [&'static str],
);

#[rustfmt::skip]
const STREAM_CASES: &[StreamCase] = &[
    ("clone_check, clean", CHECK, &["{good}"], 0,
        &["{good}: region size 8 sectors, target size 2048 sectors, 256 regions, 13 copied", "{good}: clean"], &[]),
    ("clone_check, damaged", CHECK, &["{bad}"], 1,
        &["{bad}: region size 8 sectors", "{bad}: damaged: 1 problem(s); clone_dump -r salvages"],
        &["{bad}: block 5: bitset btree node: bad checksum"]),
    ("clone_check, a leaked block", CHECK, &["{leak}"], 1,
        &["{leak}: region size 8 sectors", "{leak}: no damage, 1 non-fatal problem(s)"],
        &["{leak}: block 320: leaked: counted 1 in the space map, reached from nothing"]),
    ("clone_check --super-block-only, a bad superblock", CHECK, &["--super-block-only", "{bad_xml}"], 2,
        &[], &["looks like XML"]),
    ("clone_dump -r, salvaged", DUMP, &["-r", "{salvage}"], 0,
        &["<superblock version=\"1\"", "<unknown first=\"32576\" count=\"192\"/>"],
        &["bitset array block: bad checksum", "dumped as unknown (32576-32767)"]),
    ("clone_dump, damaged", DUMP, &["{bad}"], 1, &[],
        &["{bad}: block 5: bitset btree node: bad checksum", "nothing dumped"]),
    ("clone_dump, a leaked block", DUMP, &["{leak}"], 0,
        &["<copied first=\"0\" count=\"10\"/>"], &["{leak}: block 320: leaked"]),
    ("clone_restore --unknown copied", RESTORE,
        &["-i", "{unknown_xml}", "-o", "{out}", "--unknown", "copied"], 0,
        &[], &["clone_restore: 64 regions of unknown state become copied"]),
    ("clone_restore, XML that does not parse", RESTORE, &["-i", "{bad_xml}", "-o", "{out}"], 1,
        &[], &["unknown element <copy>"]),
    ("clone_repair, damaged", REPAIR, &["-i", "{bad}", "-o", "{out}"], 0,
        &["clone_repair: {out}: 256 regions, 13 copied"],
        &["{bad}: block 5: bitset btree node: bad checksum"]),
    ("clone_repair, unknown regions", REPAIR, &["-i", "{salvage}", "-o", "{out}", "--unknown", "copied"], 0,
        &["clone_repair: {out}: 32768 regions, 258 copied"],
        &["{salvage}: block ", ": bitset array block: bad checksum", "clone_repair: 192 regions of unknown state become copied"]),
    ("clone_repair, a leaked block", REPAIR, &["-i", "{leak}", "-o", "{out}"], 0,
        &["clone_repair: {out}: 256 regions, 13 copied"], &["{leak}: block 320: leaked"]),
    ("clone_metadata_size", SIZE, &["--device-size", "1t", "--region-size", "64k"], 0,
        &["suggested: "], &[]),
    ("clone_metadata_size, a refusal", SIZE, &["--device-size", "1t", "--region-size", "12k"], 1,
        &[], &["is not a power of two"]),
];

#[test]
fn data_goes_to_stdout_diagnostics_to_stderr() {
    let inputs = inputs("streams");
    let mut failed = Vec::new();
    for &(what, exe, args, code, on_out, on_err) in STREAM_CASES {
        let o = run_case(exe, args, &inputs);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        let mut wrong = Vec::new();
        for (texts, here, there, name) in [
            (on_out, &out, &err, "stdout"),
            (on_err, &err, &out, "stderr"),
        ] {
            for t in texts.iter().map(|t| fill(t, &inputs)) {
                if !here.contains(&t) || there.contains(&t) {
                    wrong.push(format!("{t:?} not on {name} alone"));
                }
            }
            if texts.is_empty() && !here.is_empty() {
                wrong.push(format!("{name} not empty"));
            }
        }
        if o.status.code() != Some(code) || !wrong.is_empty() {
            eprintln!(
                "case {what:?}: status {:?} (want {code}); {wrong:?}\nstdout:\n{out}stderr:\n{err}",
                o.status.code()
            );
            failed.push(what);
        }
    }
    assert!(failed.is_empty(), "cases failed: {failed:#?}");
}

/// (case, clone_check's arguments, exit status, its verdict on stdout): leaked blocks are
/// non-fatal, as thin_check's; --ignore-non-fatal-errors passes them, and nothing else.
#[rustfmt::skip]
const NON_FATAL_CASES: &[(&str, &[&str], i32, &str)] = &[
    ("clean", &["{good}"], 0, "{good}: clean"),
    ("clean, ignoring non-fatal errors", &["--ignore-non-fatal-errors", "{good}"], 0, "{good}: clean"),
    ("a leaked block", &["{leak}"], 1,
        "{leak}: no damage, 1 non-fatal problem(s) (leaked blocks); --ignore-non-fatal-errors passes them, clone_repair rebuilds the space map"),
    ("a leaked block, ignoring non-fatal errors", &["--ignore-non-fatal-errors", "{leak}"], 0,
        "{leak}: no damage, 1 non-fatal problem(s)"),
    ("damaged", &["{bad}"], 1, "{bad}: damaged: 1 problem(s)"),
    ("damaged, ignoring non-fatal errors", &["--ignore-non-fatal-errors", "{bad}"], 1,
        "{bad}: damaged: 1 problem(s)"),
    ("damaged and a leaked block, ignoring non-fatal errors", &["--ignore-non-fatal-errors", "{bad_leak}"], 1,
        "{bad_leak}: damaged: 2 problem(s) (1 of them non-fatal)"),
    ("a block counted 2 that nothing references, ignoring non-fatal errors",
        &["--ignore-non-fatal-errors", "{overcount}"], 1, "{overcount}: damaged: 1 problem(s)"),
    ("a leaked block, the superblock only", &["--super-block-only", "{leak}"], 0, "{leak}: clean"),
];

#[test]
fn a_leaked_block_is_non_fatal_and_ignored_on_request() {
    let inputs = inputs("non-fatal");
    let mut failed = Vec::new();
    for &(what, args, code, verdict) in NON_FATAL_CASES {
        let o = run_case(CHECK, args, &inputs);
        let out = String::from_utf8_lossy(&o.stdout);
        if o.status.code() != Some(code) || !out.contains(&fill(verdict, &inputs)) {
            eprintln!(
                "case {what:?}: want status {code} and {verdict:?}, got {:?}:\n{}",
                o.status.code(),
                text(&o)
            );
            failed.push(what);
        }
    }
    assert!(failed.is_empty(), "cases failed: {failed:#?}");
}

#[test]
fn a_full_standard_error_changes_no_exit_status() {
    let inputs = inputs("stderr-full");
    // Cases that write to stderr, each run with stderr on /dev/full: the status is the
    // one it has with a stderr that takes everything (eprintln! would panic: status 101).
    let cases: Vec<(&str, &str, &[&str], i32)> = QUIET_CASES
        .iter()
        .chain(
            [(
                "clone_metadata_size, a refusal",
                SIZE,
                &["--device-size", "1t", "--region-size", "12k"][..],
                1,
                None,
            )]
            .iter(),
        )
        .map(|&(what, exe, args, code, _)| (what, exe, args, code))
        .collect();
    let mut failed = Vec::new();
    for (what, exe, args, code) in cases {
        let args: Vec<String> = args.iter().map(|a| fill(a, &inputs)).collect();
        let full = std::fs::File::create("/dev/full").unwrap();
        let o = Command::new(exe)
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(full)
            .output()
            .unwrap();
        if o.status.code() != Some(code) {
            eprintln!("case {what:?}: status {:?}, want {code}", o.status);
            failed.push(what);
        }
    }
    assert!(failed.is_empty(), "cases failed: {failed:#?}");
}

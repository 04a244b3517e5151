// SPDX-License-Identifier: GPL-2.0
//! dmc-write: the file's bytes land at the offset and nothing else changes; a length or
//! offset that O_DIRECT cannot take is refused, naming both, and the target is untouched.

use std::path::PathBuf;
use std::process::{Command, Output};

fn tmp(name: &str) -> PathBuf {
    // Under target/, not /tmp (which may be a tmpfs, without O_DIRECT).
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("dmc-write-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write(file: &PathBuf, dev: &PathBuf, offset: u64) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dmc-write"))
        .arg(file)
        .arg(dev)
        .arg("--offset")
        .arg(offset.to_string())
        .output()
        .unwrap()
}

#[test]
fn writes_the_file_at_the_offset_and_nothing_else() {
    let dev = tmp("dev-ok");
    std::fs::write(&dev, vec![0x55u8; 5 * 4096]).unwrap();
    let data: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = tmp("data-ok");
    std::fs::write(&file, &data).unwrap();
    let out = write(&file, &dev, 4096);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = std::fs::read(&dev).unwrap();
    let mut want = vec![0x55u8; 5 * 4096];
    want[4096..4096 + 8192].copy_from_slice(&data);
    assert_eq!(got, want);
}

#[test]
fn refuses_what_o_direct_cannot_take_and_leaves_the_target() {
    let dev = tmp("dev-bad");
    std::fs::write(&dev, vec![0x55u8; 4 * 4096]).unwrap();
    let short = tmp("data-short");
    std::fs::write(&short, vec![1u8; 100]).unwrap();
    let whole = tmp("data-whole");
    std::fs::write(&whole, vec![1u8; 4096]).unwrap();
    for (file, offset, says) in [
        (&short, 0, "has 100 bytes and the offset is 0"),
        (&whole, 512, "has 4096 bytes and the offset is 512"),
    ] {
        let out = write(file, &dev, offset);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("dmc-write: ") && err.contains(says),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(&dev).unwrap(), vec![0x55u8; 4 * 4096]);
    let out = write(&whole, &tmp("no-such-dir").join("dev"), 0);
    assert_eq!(out.status.code(), Some(1));
}

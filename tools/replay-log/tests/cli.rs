// SPDX-License-Identifier: GPL-2.0
//! dmc-replay-log's crash-window commands on a log file: `windows` and `states`
//! print what the module doc says, `replay --with` applies the prefix and
//! exactly the chosen entries, refuses what is not in the window (before
//! touching the target), and `replay` without it does what it always did.

use dmc_replay_log::{flag, Log, MAGIC, VERSION};
use std::path::PathBuf;
use std::process::{Command, Output};

const SS: usize = 512;

fn tmp(name: &str) -> PathBuf {
    // Under target/, not /tmp: the log is read with O_DIRECT.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("replay-log-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Entry i of the log writes byte 0x20 + i (a discard: zeros):
///  0 write 0+2, 1 flush, 2 write 2+1, 3 write 1+2, 4 discard 4+1, 5 mark,
///  6 write 2+3, 7 flush, 8 fua write 8+1, 9 write 0+1 (sector+sectors).
fn log_file(name: &str) -> PathBuf {
    let mut log = vec![0u8; SS];
    let mut n = 0u64;
    let mut push = |log: &mut Vec<u8>, sector: u64, sectors: u64, flags: u64, mark: &str| {
        let mut h = vec![0u8; SS];
        h[0..8].copy_from_slice(&sector.to_le_bytes());
        h[8..16].copy_from_slice(&sectors.to_le_bytes());
        h[16..24].copy_from_slice(&flags.to_le_bytes());
        let dl = if mark.is_empty() {
            sectors * 512
        } else {
            mark.len() as u64
        };
        h[24..32].copy_from_slice(&dl.to_le_bytes());
        h[32..32 + mark.len()].copy_from_slice(mark.as_bytes());
        log.extend_from_slice(&h);
        if flags & (flag::DISCARD | flag::MARK) == 0 {
            log.extend(std::iter::repeat_n(0x20 + n as u8, sectors as usize * 512));
        }
        n += 1;
    };
    push(&mut log, 0, 2, 0, "");
    push(&mut log, 0, 0, flag::FLUSH, "");
    push(&mut log, 2, 1, 0, "");
    push(&mut log, 1, 2, 0, "");
    push(&mut log, 4, 1, flag::DISCARD, "");
    push(&mut log, 0, 0, flag::MARK, "f1");
    push(&mut log, 2, 3, 0, "");
    push(&mut log, 0, 0, flag::FLUSH, "");
    push(&mut log, 8, 1, flag::FUA, "");
    push(&mut log, 0, 1, 0, "");
    log[0..8].copy_from_slice(&MAGIC.to_le_bytes());
    log[8..16].copy_from_slice(&VERSION.to_le_bytes());
    log[16..24].copy_from_slice(&10u64.to_le_bytes());
    log[24..28].copy_from_slice(&(SS as u32).to_le_bytes());
    let p = tmp(name);
    std::fs::write(&p, log).unwrap();
    p
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dmc-replay-log"))
        .args(args)
        .output()
        .unwrap()
}

/// The exit code of a run.
fn code(args: &[&str]) -> Option<i32> {
    run(args).status.code()
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Replay `args` onto a fresh 16-sector target of 0x11; its bytes.
fn replay(log: &str, name: &str, args: &[&str]) -> Vec<u8> {
    let t = tmp(name);
    std::fs::write(&t, vec![0x11u8; 16 * 512]).unwrap();
    let ts = t.to_str().unwrap();
    stdout(&run(&[&["replay", log, ts][..], args].concat()));
    std::fs::read(&t).unwrap()
}

/// The model: 0x11, then each (sector, sectors, byte) in order.
fn model(writes: &[(usize, usize, u8)]) -> Vec<u8> {
    let mut d = vec![0x11u8; 16 * 512];
    for &(s, n, b) in writes {
        d[s * 512..(s + n) * 512].fill(b);
    }
    d
}

#[test]
fn windows_and_states_print_the_documented_lines() {
    let log = log_file("w.log");
    let log = log.to_str().unwrap();
    assert_eq!(
        stdout(&run(&["windows", log])),
        "- 0 0 1\n1 2 6 4\n7 - - 0\n8 9 9 1\n"
    );
    let s = stdout(&run(&["states", log, "--point", "1"]));
    let lines: Vec<_> = s.lines().collect();
    assert_eq!(lines.len(), 16);
    assert_eq!(lines[0], "0 -");
    assert_eq!(lines[1], "1 2");
    assert_eq!(lines[5], "5 2,4");
    assert_eq!(lines[15], "15 2,3,4,6");
    assert_eq!(stdout(&run(&["states", log, "--point", "-"])), "0 -\n1 0\n");
    assert_eq!(stdout(&run(&["states", log, "--point", "7"])), "0 -\n");
    // Sampled: the empty one, 3 others, the full one; the same for a seed.
    let args = [
        "states",
        log,
        "--point",
        "1",
        "--max-exhaustive",
        "2",
        "--random",
        "3",
    ];
    let a = stdout(&run(&[&args[..], &["--seed", "9"]].concat()));
    assert_eq!(a, stdout(&run(&[&args[..], &["--seed", "9"]].concat())));
    let lines: Vec<_> = a.lines().collect();
    assert_eq!(lines.len(), 5);
    assert_eq!((lines[0], lines[4]), ("0 -", "4 2,3,4,6"));
    // Not a point: refused, naming the entry.
    let o = run(&["states", log, "--point", "2"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("entry 2 is a write entry, not a flush or FUA entry"),
        "{err}"
    );
    let o = run(&["states", log, "--point", "10"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(code(&["states", log, "--point", "x"]), Some(2));
    assert_eq!(
        code(&["states", log, "--point", "1", "--max-exhaustive", "21"]),
        Some(2)
    );
}

#[test]
fn replay_with_applies_the_prefix_then_exactly_the_chosen_entries() {
    let log = log_file("r.log");
    let log = log.to_str().unwrap();
    let prefix = (0, 2, 0x20);
    assert_eq!(
        replay(log, "a", &["--to", "1", "--with", "2,6"]),
        model(&[prefix, (2, 1, 0x22), (2, 3, 0x26)])
    );
    // Listed out of order: applied in log order; --reverse: the other way.
    assert_eq!(
        replay(log, "b", &["--to", "1", "--with", "6,2,4"]),
        model(&[prefix, (2, 1, 0x22), (4, 1, 0), (2, 3, 0x26)])
    );
    assert_eq!(
        replay(log, "c", &["--to", "1", "--with", "2,6", "--reverse"]),
        model(&[prefix, (2, 3, 0x26), (2, 1, 0x22)])
    );
    // Onto a copy of the prefix: --from N+1 --to N applies only the subset.
    let t = tmp("d");
    std::fs::write(&t, replay(log, "d0", &["--to", "1"])).unwrap();
    let ts = t.to_str().unwrap();
    stdout(&run(&[
        "replay", log, ts, "--from", "2", "--to", "1", "--with", "3",
    ]));
    assert_eq!(std::fs::read(&t).unwrap(), model(&[prefix, (1, 2, 0x23)]));
    // The start of the log: no --to.
    assert_eq!(replay(log, "e", &["--with", "0"]), model(&[prefix]));
    assert_eq!(replay(log, "f", &["--with", "-"]), model(&[]));
    // After a FUA entry.
    let to8 = [prefix, (1, 2, 0x23), (4, 1, 0), (2, 3, 0x26), (8, 1, 0x28)];
    assert_eq!(
        replay(log, "g", &["--to", "8", "--with", "9"]),
        model(&[&to8[..], &[(0, 1, 0x29)]].concat())
    );
    assert_eq!(replay(log, "h", &["--to", "8", "--with", "-"]), model(&to8));
}

#[test]
fn replay_without_with_is_unchanged() {
    let log = log_file("u.log");
    let l = log.to_str().unwrap();
    let bytes = std::fs::read(&log).unwrap();
    let mut lg = Log::open(&bytes[..]).unwrap();
    let e = lg.entries().unwrap();
    for (from, to) in [(0, 0), (0, 1), (0, 7), (0, 9), (2, 6)] {
        let mut want = vec![0x11u8; 16 * 512];
        lg.replay(&e[from..=to], &mut want).unwrap();
        let (f, t) = (from.to_string(), to.to_string());
        assert_eq!(replay(l, "u", &["--from", &f, "--to", &t]), want);
        assert_eq!(
            replay(l, "v", &["--from", &f, "--to", &t, "--with", "-"]),
            want
        );
    }
    let t = tmp("x");
    std::fs::write(&t, vec![0x11u8; 16 * 512]).unwrap();
    let ts = t.to_str().unwrap();
    // The refusals of before, with their exit codes.
    assert_eq!(code(&["replay", l, ts]), Some(2));
    assert_eq!(code(&["replay", l, ts, "--to", "10"]), Some(1));
    assert_eq!(
        code(&["replay", l, ts, "--from", "2", "--to", "1"]),
        Some(1)
    );
    assert_eq!(code(&["replay", l, ts, "--to", "1", "--reverse"]), Some(2));
}

#[test]
fn replay_with_refuses_what_is_not_in_the_window_and_leaves_the_target() {
    let log = log_file("e.log");
    let l = log.to_str().unwrap();
    let t = tmp("y");
    std::fs::write(&t, vec![0x11u8; 16 * 512]).unwrap();
    let ts = t.to_str().unwrap();
    for (args, code, text) in [
        (
            &["--to", "1", "--with", "0"][..],
            1,
            "entry 0 is not after entry 1",
        ),
        (&["--to", "1", "--with", "5"], 1, "entry 5 is a mark entry"),
        (
            &["--to", "1", "--with", "2,9"],
            1,
            "entry 9 is not in the window after entry 1",
        ),
        (
            &["--to", "1", "--with", "7"],
            1,
            "entry 7 is not in the window after entry 1",
        ),
        (
            &["--with", "2"],
            1,
            "entry 2 is not in the window after the start of the log",
        ),
        (
            &["--to", "1", "--with", "2,2"],
            1,
            "entry 2 is listed twice",
        ),
        (
            &["--to", "1", "--with", "42"],
            1,
            "entry 42: the log has entries 0..=9",
        ),
        (
            &["--from", "3", "--to", "1", "--with", "2"],
            1,
            "cannot replay 3..=1",
        ),
        (&["--from", "3", "--with", "2"], 1, "--from 3 without --to"),
        (
            &["--to", "1", "--with", "2,x"],
            2,
            "`x` is not an entry index",
        ),
        (&["--to", "1", "--with", ""], 2, "`` is not an entry index"),
    ] {
        let o = run(&[&["replay", l, ts][..], args].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(text), "{args:?}: {err}");
        assert_eq!(
            std::fs::read(&t).unwrap(),
            vec![0x11u8; 16 * 512],
            "{args:?}"
        );
    }
}

/// A one-entry-per-call log of 512-byte sectors, each header as given:
/// (sector, sectors, flags, data bytes actually stored after it).
fn crafted(name: &str, entries: &[(u64, u64, u64, usize)]) -> PathBuf {
    let mut log = vec![0u8; SS];
    for &(sector, sectors, flags, data) in entries {
        let mut h = vec![0u8; SS];
        h[0..8].copy_from_slice(&sector.to_le_bytes());
        h[8..16].copy_from_slice(&sectors.to_le_bytes());
        h[16..24].copy_from_slice(&flags.to_le_bytes());
        h[24..32].copy_from_slice(&sectors.wrapping_mul(512).to_le_bytes());
        log.extend_from_slice(&h);
        log.extend(std::iter::repeat_n(0x77, data));
    }
    log[0..8].copy_from_slice(&MAGIC.to_le_bytes());
    log[8..16].copy_from_slice(&VERSION.to_le_bytes());
    log[16..24].copy_from_slice(&(entries.len() as u64).to_le_bytes());
    log[24..28].copy_from_slice(&(SS as u32).to_le_bytes());
    let p = tmp(name);
    std::fs::write(&p, log).unwrap();
    p
}

#[test]
fn replay_refuses_entries_past_the_target_or_the_log_before_writing_anything() {
    // Each log starts with a good write of sector 0 (so a refusal after it
    // had been applied would show on the target), then the bad entry.
    let good = (0, 1, 0, 512);
    for (name, bad, text) in [
        (
            "huge-discard",
            (0, (1u64 << 55) + 1, flag::DISCARD, 0),
            "entry 1 (discard of 36028797018963969 sectors at sector 0) ends past the end of",
        ),
        (
            "huge-write",
            (0, 1u64 << 40, 0, 512),
            "entry 1 (write of 1099511627776 sectors at sector 0) ends past the end of",
        ),
        (
            "overflowing-write",
            (u64::MAX / 512, 2, 0, 1024),
            "entry 1 (write of 2 sectors at sector 36028797018963967) ends past the end of",
        ),
        (
            "past-the-target",
            (15, 2, 0, 1024),
            "entry 1 (write of 2 sectors at sector 15) ends past the end of",
        ),
        (
            "discard-past-the-target",
            (8, 9, flag::DISCARD, 0),
            "entry 1 (discard of 9 sectors at sector 8) ends past the end of",
        ),
        (
            "data-past-the-log",
            (2, 4, 0, 1024),
            "entry 1 (write of 4 sectors at sector 2): its data runs past the end of the log",
        ),
    ] {
        let log = crafted(name, &[good, bad]);
        let l = log.to_str().unwrap();
        let t = tmp(&format!("{name}.target"));
        std::fs::write(&t, vec![0x11u8; 16 * 512]).unwrap();
        let ts = t.to_str().unwrap();
        let o = run(&["replay", l, ts, "--to", "1"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(text), "{name}: {err}");
        assert!(err.contains(l) && err.contains(ts), "{name}: {err}");
        if !text.contains("the log") {
            assert!(err.contains("the target (16 sectors)"), "{name}: {err}");
        }
        assert_eq!(
            std::fs::read(&t).unwrap(),
            vec![0x11u8; 16 * 512],
            "{name}: the target was written"
        );
        // The same log up to its good entry replays.
        assert_eq!(run(&["replay", l, ts, "--to", "0"]).status.code(), Some(0));
    }
}

// SPDX-License-Identifier: GPL-2.0
//! Properties of the tools' paths on inputs nobody wrote by hand, run in-process through
//! the library calls the binaries make (no process per case):
//!
//! - XML, generated (random superblock attributes, huge, negative and garbage ones
//!   included; random runs, overlapping, out of order, out of range) or a valid dump
//!   mutated (cut short, bytes changed, elements repeated, dropped or swapped), through
//!   clone_restore's path (`xml::text`, `xml::restore`, `write::write`): never panics,
//!   finishes; whatever it accepts restores to metadata that checks clean and dumps back
//!   to the same regions, in clone_dump's canonical XML.
//! - Metadata the writer made, then damaged at random (bytes or whole blocks, fields set
//!   to block numbers or extremes, blocks copied over others, the image cut short, each
//!   damaged block's checksum made right again or not), through clone_check's,
//!   clone_dump's (with and without -r) and clone_repair's paths: never panics,
//!   finishes; a dump reads back as written, a sound report has no region of unknown
//!   state, and whatever a repair writes checks clean with every region it could read.
//!
//! Time: each case runs on a thread of its own, and fails if it has not finished in
//! `DEADLINE` (the thread is left behind; the test fails instead of hanging). The inputs
//! also bound the work: XML of a few KiB, images of at most a few thousand blocks, and
//! restores onto devices of at most 600 blocks, which the writer refuses past their room.
//! Deterministic: a fixed seed (`PROPTEST_RNG_SEED` and `PROPTEST_CASES` override it and
//! the number of cases), no failure file written.

use clone_metadata::checksum::{self, BlockKind};
use clone_metadata::cli::Unknown;
use clone_metadata::read::{self, Depth, Memory};
use clone_metadata::write::{self, Metadata};
use clone_metadata::xml::{self, Dump};
use clone_metadata::{repair, BLOCK_SIZE};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError};
use std::time::Duration;

/// The longest a case may take: the slowest take 0.2 s in a debug build (a 253-array-block
/// image repaired with every region copied), most a few milliseconds.
const DEADLINE: Duration = Duration::from_secs(10);

/// The cases run, each property, unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 256;

fn config() -> Config {
    // Config::default() reads the PROPTEST_* variables.
    let mut c = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = CASES;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(0x00c1_0e0d_a7a5);
    }
    c.failure_persistence = None;
    // Shrinking a failure is bounded too (milliseconds; a case in progress then ends by
    // its deadline).
    c.max_shrink_time = 30_000;
    c
}

/// Runs `f` on a thread of its own: its failure, a panic (with its message), or not
/// finishing in [`DEADLINE`] fail the case.
fn bounded(f: impl FnOnce() -> Result<(), String> + Send + 'static) -> Result<(), TestCaseError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(r) => r.map_err(TestCaseError::fail),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(TestCaseError::fail(format!(
            "did not finish in {DEADLINE:?}"
        ))),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            let why = match t.join() {
                Err(p) => p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
                Ok(()) => String::new(),
            };
            Err(TestCaseError::fail(format!("panicked: {why}")))
        }
    }
}

/// An image of `device_blocks` blocks holding `blocks` (from `write::write`); the blocks not
/// written keep `fill`, as a device's old content.
fn image(blocks: &[(u64, Vec<u8>)], device_blocks: u64, fill: u8) -> Vec<u8> {
    let mut img = vec![fill; device_blocks as usize * BLOCK_SIZE];
    for (b, d) in blocks {
        img[*b as usize * BLOCK_SIZE..][..BLOCK_SIZE].copy_from_slice(d);
    }
    img
}

/// `runs` in order, those that touch or overlap merged: clone_dump's form.
fn canonical(runs: &[(u64, u64)]) -> Vec<(u64, u64)> {
    write::union_runs(runs, &[])
}

// ---- XML ------------------------------------------------------------------------------

/// A dump that clone_restore accepts (given `--unknown` for its unknown runs): a region
/// size a clone can have, up to 4 array blocks of regions, and runs in order, each copied
/// or unknown, that may touch.
fn valid_dump() -> impl Strategy<Value = Dump> {
    let sizes = (
        prop_oneof![4 => Just(8u64), 1 => (3u32..=21).prop_map(|k| 1u64 << k)],
        prop_oneof![3 => 1u64..=2048, 2 => 1u64..=130_000],
    );
    // Runs as (gap before, length, unknown), laid one after the other.
    let runs = prop::collection::vec(
        (
            prop_oneof![0u64..=3, 0u64..=5000],
            prop_oneof![1u64..=3, 1u64..=5000],
            prop::bool::weighted(0.3),
        ),
        0..12,
    );
    (sizes, runs, 0u64..8).prop_map(|((rs, regions), runs, short)| {
        let target_size = (regions * rs).saturating_sub(short.min(rs - 1));
        let n = target_size.div_ceil(rs);
        let (mut copied, mut unknown, mut at) = (Vec::new(), Vec::new(), 0u64);
        for (gap, len, is_unknown) in runs {
            let first = at + gap;
            if first >= n {
                break;
            }
            let len = len.min(n - first);
            if is_unknown {
                unknown.push((first, len));
            } else {
                copied.push((first, len));
            }
            at = first + len;
        }
        // Unknown runs that touch are one run in a dump (and must not overlap).
        Dump {
            metadata: Metadata {
                region_size: rs,
                target_size,
                copied,
            },
            unknown: canonical(&unknown),
        }
    })
}

/// How a counted attribute (nr_regions, nr_copied, nr_unknown) is written.
#[derive(Debug, Clone)]
enum Count {
    Absent,
    Right,
    Off(u64),
    Text(String),
}

fn count() -> impl Strategy<Value = Count> {
    prop_oneof![
        12 => Just(Count::Right),
        8 => Just(Count::Absent),
        1 => (1u64..=3).prop_map(Count::Off),
        1 => garbage().prop_map(Count::Text),
    ]
}

/// Attribute values that are no number a clone has.
fn garbage() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|v| v.to_string()),
        Just("-8".to_string()),
        Just("18446744073709551616".to_string()),
        Just(String::new()),
        Just("x".to_string()),
        Just("0x10".to_string()),
        Just(" 8".to_string()),
        Just("+8".to_string()),
        Just("1e3".to_string()),
        Just("&amp;".to_string()),
        "[0-9a-z<>&;\"' -]{0,12}",
    ]
}

/// The wrappings of a document clone_restore ignores.
#[derive(Debug, Clone)]
struct Dress {
    declaration: bool,
    comment: bool,
    extra_attribute: bool,
    /// An empty `<superblock .../>` when there is no run.
    empty_element: bool,
    nr_regions: Count,
    nr_copied: Count,
    nr_unknown: Count,
}

fn dress() -> impl Strategy<Value = Dress> {
    (any::<[bool; 4]>(), count(), count(), count()).prop_map(|(b, r, c, u)| Dress {
        declaration: b[0],
        comment: b[1],
        extra_attribute: b[2],
        empty_element: b[3],
        nr_regions: r,
        nr_copied: c,
        nr_unknown: u,
    })
}

/// `d` written as XML dressed as `dr` (the runs in order, copied and unknown mixed).
fn serialize(d: &Dump, dr: &Dress) -> String {
    let m = &d.metadata;
    let attr = |name: &str, c: &Count, right: u64| match c {
        Count::Absent => String::new(),
        Count::Right => format!(" {name}=\"{right}\""),
        Count::Off(k) => format!(" {name}=\"{}\"", right.wrapping_add(*k)),
        Count::Text(t) => format!(" {name}=\"{t}\""),
    };
    let copied: u64 = m.copied.iter().map(|&(_, n)| n).sum();
    let mut x = String::new();
    if dr.declaration {
        x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    }
    x.push_str(&format!(
        "<superblock version=\"1\" region_size=\"{}\" target_size=\"{}\"{}{}{}{}",
        m.region_size,
        m.target_size,
        attr("nr_regions", &dr.nr_regions, m.nr_regions()),
        attr("nr_copied", &dr.nr_copied, copied),
        attr("nr_unknown", &dr.nr_unknown, d.nr_unknown()),
        if dr.extra_attribute {
            " uuid=\"ignored\""
        } else {
            ""
        }
    ));
    let runs = d.runs();
    if runs.is_empty() && dr.empty_element {
        x.push_str("/>\n");
        return x;
    }
    x.push_str(">\n");
    if dr.comment {
        x.push_str("  <!-- a comment -->\n");
    }
    for (first, count, unknown) in runs {
        let name = if unknown { "unknown" } else { "copied" };
        x.push_str(&format!(
            "  <{name} first=\"{first}\" count=\"{count}\"/>\n"
        ));
    }
    x.push_str("</superblock>\n");
    x
}

/// A change to a document's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    /// Cut at this fraction (per 1000) of its length.
    Truncate(u16),
    /// XOR the byte at this fraction with a value.
    Flip(u16, u8),
    /// Repeat, drop, or move to the end the line at this fraction.
    Repeat(u16),
    Drop(u16),
    Move(u16),
    /// Insert text at this fraction.
    Insert(u16, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0u16..=1000;
    prop_oneof![
        1 => at.clone().prop_map(Mutation::Truncate),
        3 => (at.clone(), 1u8..=255).prop_map(|(a, v)| Mutation::Flip(a, v)),
        2 => at.clone().prop_map(Mutation::Repeat),
        2 => at.clone().prop_map(Mutation::Drop),
        1 => at.clone().prop_map(Mutation::Move),
        2 => (at, prop_oneof![
            Just("<copied first=\"0\" count=\"1\"/>".to_string()),
            Just("<unknown first=\"1\" count=\"1\"/>".to_string()),
            Just("<superblock version=\"1\" region_size=\"8\" target_size=\"8\"/>".to_string()),
            Just("</superblock>".to_string()),
            Just("<copy first=\"1\" count=\"1\"/>".to_string()),
            Just("<![CDATA[x]]>".to_string()),
            Just("<!DOCTYPE x>".to_string()),
            "[<>/=\"a-z0-9 \n]{0,16}",
        ]).prop_map(|(a, t)| Mutation::Insert(a, t)),
    ]
}

fn mutate(text: &str, ms: &[Mutation]) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    let pos = |len: usize, f: u16| len * usize::from(f) / 1000;
    for m in ms {
        match m {
            Mutation::Truncate(f) => b.truncate(pos(b.len(), *f)),
            Mutation::Flip(f, v) => {
                let i = pos(b.len(), *f).min(b.len().saturating_sub(1));
                if let Some(c) = b.get_mut(i) {
                    *c ^= v;
                }
            }
            Mutation::Insert(f, t) => {
                let i = pos(b.len(), *f);
                b.splice(i..i, t.bytes());
            }
            Mutation::Repeat(f) | Mutation::Drop(f) | Mutation::Move(f) => {
                let mut lines: Vec<Vec<u8>> = b
                    .split_inclusive(|&c| c == b'\n')
                    .map(<[u8]>::to_vec)
                    .collect();
                if lines.is_empty() {
                    continue;
                }
                let i = pos(lines.len(), *f).min(lines.len() - 1);
                match m {
                    Mutation::Repeat(_) => lines.insert(i, lines[i].clone()),
                    Mutation::Drop(_) => {
                        lines.remove(i);
                    }
                    _ => {
                        let l = lines.remove(i);
                        lines.push(l);
                    }
                }
                b = lines.concat();
            }
        }
    }
    b
}

/// A number for a wild document: small, in the range of a clone's, or anything.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (0u64..=300).prop_map(|v| v.to_string()),
        2 => (0u64..=1 << 20).prop_map(|v| v.to_string()),
        1 => (0u32..64).prop_map(|k| (1u64 << k).to_string()),
        1 => Just(u64::MAX.to_string()),
        1 => garbage(),
    ]
}

/// A document whose superblock attributes and runs are anything at all.
fn wild_xml() -> impl Strategy<Value = Vec<u8>> {
    let attrs = prop::collection::vec(
        (
            prop::sample::select(vec![
                "version",
                "region_size",
                "target_size",
                "nr_regions",
                "nr_copied",
                "nr_unknown",
                "first",
            ]),
            number(),
        ),
        0..8,
    );
    let runs = prop::collection::vec(
        (
            prop::sample::select(vec!["copied", "unknown", "superblock", "x"]),
            number(),
            number(),
            any::<bool>(),
        ),
        0..12,
    );
    (
        attrs,
        prop_oneof![1 => Just("1".to_string()), 1 => number()],
        prop_oneof![2 => Just("8".to_string()), 1 => number()],
        number(),
        runs,
        any::<bool>(),
    )
        .prop_map(|(attrs, version, rs, ts, runs, close)| {
            let mut x = format!(
                "<superblock version=\"{version}\" region_size=\"{rs}\" target_size=\"{ts}\""
            );
            for (name, v) in attrs {
                x.push_str(&format!(" {name}=\"{v}\""));
            }
            x.push_str(">\n");
            for (name, first, count, with_count) in runs {
                x.push_str(&format!("  <{name} first=\"{first}\""));
                if with_count {
                    x.push_str(&format!(" count=\"{count}\""));
                }
                x.push_str("/>\n");
            }
            if close {
                x.push_str("</superblock>\n");
            }
            x.into_bytes()
        })
}

/// What clone_restore is given: the XML's bytes, its `--unknown`, and the output device's
/// size in blocks.
fn restore_input() -> impl Strategy<Value = (Vec<u8>, Option<Unknown>, u64)> {
    let xml = prop_oneof![
        4 => (valid_dump(), dress()).prop_map(|(d, dr)| serialize(&d, &dr).into_bytes()),
        3 => (valid_dump(), dress(), prop::collection::vec(mutation(), 1..4))
            .prop_map(|(d, dr, ms)| mutate(&serialize(&d, &dr), &ms)),
        2 => wild_xml(),
    ];
    let unknown = prop_oneof![
        1 => Just(None),
        2 => Just(Some(Unknown::Copied)),
        2 => Just(Some(Unknown::Uncopied)),
    ];
    (
        xml,
        unknown,
        prop_oneof![1 => 250u64..=262, 4 => 262u64..=600],
    )
}

/// clone_restore's path on `bytes`, then clone_check's and clone_dump's on what it wrote.
fn restore_case(
    bytes: Vec<u8>,
    unknown: Option<Unknown>,
    device_blocks: u64,
) -> Result<(), String> {
    let Ok(text) = xml::text(bytes) else {
        return Ok(()); // refused: not UTF-8
    };
    let (m, _) = match xml::restore(&text, unknown) {
        Ok(r) => r,
        Err(e) if e.is_empty() => return Err("refused without saying why".into()),
        Err(_) => return Ok(()),
    };
    let blocks = match write::write(&m, device_blocks) {
        Ok(b) => b,
        Err(_) => return Ok(()), // refused: the sizes, the runs or the room
    };
    // Accepted: written on a device whose other blocks hold old content.
    let img = image(&blocks, device_blocks, 0xa5);
    let rep = read::read(&Memory(&img), Depth::All);
    if !rep.superblock_ok || !rep.problems.is_empty() {
        return Err(format!(
            "restored metadata does not check clean: {:#?}",
            rep.problems
        ));
    }
    let d = Dump::from_report(&rep);
    let want = Metadata {
        copied: canonical(&m.copied),
        ..m
    };
    if !d.unknown.is_empty() || d.metadata != want {
        return Err(format!("dumped {d:?}, restored {want:?}"));
    }
    let mut dumped = Vec::new();
    d.write_xml(&mut dumped).map_err(|e| e.to_string())?;
    let dumped = String::from_utf8(dumped).map_err(|e| e.to_string())?;
    if dumped != xml::to_xml(&want) {
        return Err(format!(
            "the dump is not canonical:\n{dumped}\nwant:\n{}",
            xml::to_xml(&want)
        ));
    }
    // The dump restores to the same metadata.
    match xml::restore(&dumped, None) {
        Ok((back, 0)) if back == want => Ok(()),
        r => Err(format!("the dump restores as {r:?}, not {want:?}")),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn restore_never_panics_and_what_it_accepts_checks_clean_and_dumps_back(
        (bytes, unknown, device_blocks) in restore_input()
    ) {
        bounded(move || restore_case(bytes, unknown, device_blocks))?;
    }
}

// ---- Damaged images -------------------------------------------------------------------

/// Damage to one block (`block` picks it: mostly among the blocks in use).
#[derive(Debug, Clone)]
enum Hit {
    /// Bytes at an offset: XORed, or set.
    Bytes {
        at: u16,
        bytes: Vec<u8>,
        xor: bool,
    },
    /// A 64-bit field (8-byte aligned) set: to a block number or an extreme.
    Word64 {
        at: u16,
        value: u64,
    },
    /// A 32-bit field (4-byte aligned) set.
    Word32 {
        at: u16,
        value: u32,
    },
    /// The whole block: zeroes, or bytes from a seed.
    Zero,
    Fill(u64),
    /// Another block's content copied over it.
    CopyFrom(u16),
}

#[derive(Debug, Clone)]
struct Damage {
    block: u16,
    /// Among the blocks in use (else anywhere in the image).
    in_use: bool,
    hit: Hit,
    /// Make the block's checksum right again, for its kind, so that its fields' own
    /// checks are what is tried.
    reseal: bool,
}

/// An offset in a block: mostly where the fields are that the reader trusts least (the
/// headers, a node's first keys, where a node's values start: after 252 keys of 8 bytes
/// in the bitset's btree, 336 in the reference counts'), else anywhere.
fn field() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => 0u16..96,
        1 => 2048u16..2112,
        1 => 2720u16..2760,
        3 => 0u16..4088,
    ]
}

fn hit() -> impl Strategy<Value = Hit> {
    let value64 = prop_oneof![
        4 => 0u64..=40,
        1 => Just(u64::MAX),
        1 => Just(1u64 << 63),
        1 => (0u32..64).prop_map(|k| 1u64 << k),
        1 => any::<u64>(),
    ];
    let value32 = prop_oneof![
        4 => 0u32..=600,
        1 => Just(u32::MAX),
        1 => any::<u32>(),
    ];
    prop_oneof![
        4 => (field(), prop::collection::vec(any::<u8>(), 1..=16), any::<bool>())
            .prop_map(|(at, bytes, xor)| Hit::Bytes { at, bytes, xor }),
        3 => (field(), value64).prop_map(|(at, value)| Hit::Word64 { at: at / 8 * 8, value }),
        3 => (field(), value32).prop_map(|(at, value)| Hit::Word32 { at: at / 4 * 4, value }),
        1 => Just(Hit::Zero),
        1 => any::<u64>().prop_map(Hit::Fill),
        1 => any::<u16>().prop_map(Hit::CopyFrom),
    ]
}

fn damage() -> impl Strategy<Value = Damage> {
    (
        any::<u16>(),
        prop::bool::weighted(0.9),
        hit(),
        prop::bool::weighted(0.6),
    )
        .prop_map(|(block, in_use, hit, reseal)| Damage {
            block,
            in_use,
            hit,
            reseal,
        })
}

/// Metadata for the writer: up to 3 array blocks of regions, or (one case in 8) 253 of
/// them, a bitset btree of an internal root over two leaves.
fn metadata() -> impl Strategy<Value = Metadata> {
    let regions = prop_oneof![
        4 => 1u64..=3 * 32_576,
        1 => Just(253 * 32_576u64),
    ];
    let runs = prop::collection::vec((0u64..=1000, 1u64..=1000), 0..8);
    (
        prop_oneof![3 => Just(8u64), 1 => (3u32..=21).prop_map(|k| 1u64 << k)],
        regions,
        runs,
    )
        .prop_map(|(rs, n, runs)| {
            // Runs spread over the regions: gaps and lengths in thousandths of them.
            let (mut copied, mut at) = (Vec::new(), 0u64);
            for (gap, len) in runs {
                let first = at + n * gap / 4000;
                if first >= n {
                    break;
                }
                let len = (n * len / 4000).clamp(1, n - first);
                copied.push((first, len));
                at = first + len;
            }
            Metadata {
                region_size: rs,
                target_size: n * rs,
                copied: canonical(&copied),
            }
        })
}

/// A damaged image: the metadata, the device's spare blocks, the damage, where the image
/// is cut (thousandths of it, 1000 and above: not cut), and clone_repair's options.
type DamageInput = (Metadata, u64, Vec<Damage>, u16, (Sizes, Option<Unknown>));

/// `--region-size` and `--target-size`: the metadata's, none, or sizes no clone has.
#[derive(Debug, Clone, Copy)]
enum Sizes {
    Right,
    Absent,
    Wrong,
}

fn damage_input() -> impl Strategy<Value = DamageInput> {
    (
        metadata(),
        0u64..=64,
        prop::collection::vec(damage(), 1..=8),
        prop_oneof![6 => Just(1000u16), 1 => 0u16..1000],
        (
            prop_oneof![4 => Just(Sizes::Right), 1 => Just(Sizes::Absent), 1 => Just(Sizes::Wrong)],
            prop_oneof![
                Just(None),
                Just(Some(Unknown::Copied)),
                Just(Some(Unknown::Uncopied)),
            ],
        ),
    )
}

/// The kind of each block the writer wrote, for resealing.
fn kinds(blocks: &[(u64, Vec<u8>)]) -> Vec<(u64, BlockKind)> {
    let sb = &blocks[0].1;
    let le64 = |d: &[u8], at: usize| u64::from_le_bytes(d[at..at + 8].try_into().unwrap());
    let index = le64(sb, clone_metadata::superblock::offset::SPACE_MAP_ROOT + 16);
    let index_data = &blocks.iter().find(|(b, _)| *b == index).unwrap().1;
    // The index's entries, up to the first zero one.
    let bitmaps: Vec<u64> = (0..read::MAX_METADATA_BITMAPS)
        .map(|i| le64(index_data, 16 + 16 * i))
        .take_while(|&b| b != 0)
        .collect();
    blocks
        .iter()
        .map(|(b, d)| {
            let kind = if *b == 0 {
                BlockKind::Superblock
            } else if *b == index {
                BlockKind::SpaceMapIndex
            } else if bitmaps.contains(b) {
                BlockKind::SpaceMapBitmap
            } else if matches!(u32::from_le_bytes(d[4..8].try_into().unwrap()), 1 | 2) {
                // A btree node's flags, internal or leaf (an array block has its maximum
                // number of entries there, 509).
                BlockKind::BtreeNode
            } else {
                BlockKind::Array
            };
            (*b, kind)
        })
        .collect()
}

fn damage_case(input: DamageInput) -> Result<(), String> {
    let (m, spare, damage, cut, (sizes, unknown)) = input;
    let device_blocks = write::blocks_needed(m.nr_regions()) + spare;
    let blocks = write::write(&m, device_blocks).map_err(|e| format!("the writer: {e}"))?;
    let kinds = kinds(&blocks);
    let in_use = blocks.len() as u64;
    let mut img = image(&blocks, device_blocks, 0);
    for d in &damage {
        let nr = if d.in_use { in_use } else { device_blocks };
        let b = u64::from(d.block) % nr;
        let start = b as usize * BLOCK_SIZE;
        match &d.hit {
            Hit::Bytes { at, bytes, xor } => {
                for (i, v) in bytes.iter().enumerate() {
                    let at = (usize::from(*at) + i) % BLOCK_SIZE;
                    let c = &mut img[start + at];
                    *c = if *xor { *c ^ v } else { *v };
                }
            }
            Hit::Word64 { at, value } => {
                img[start + usize::from(*at)..][..8].copy_from_slice(&value.to_le_bytes());
            }
            Hit::Word32 { at, value } => {
                img[start + usize::from(*at)..][..4].copy_from_slice(&value.to_le_bytes());
            }
            Hit::Zero => img[start..start + BLOCK_SIZE].fill(0),
            Hit::Fill(seed) => {
                let mut x = *seed | 1;
                for c in &mut img[start..start + BLOCK_SIZE] {
                    // xorshift64
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *c = x as u8;
                }
            }
            Hit::CopyFrom(from) => {
                let from = (u64::from(*from) % in_use) as usize * BLOCK_SIZE;
                img.copy_within(from..from + BLOCK_SIZE, start);
            }
        }
        if d.reseal {
            if let Some(&(_, kind)) = kinds.iter().find(|(k, _)| *k == b) {
                checksum::seal(&mut img[start..start + BLOCK_SIZE], kind);
            }
        }
    }
    if cut < 1000 {
        img.truncate(img.len() * usize::from(cut) / 1000);
    }

    // clone_check, the superblock alone and everything.
    let sb_only = read::read(&Memory(&img), Depth::Superblock);
    let rep = read::read(&Memory(&img), Depth::All);
    if sb_only.superblock_ok != rep.superblock_ok {
        return Err(format!(
            "the superblock is {} alone, {} with the rest",
            sb_only.superblock_ok, rep.superblock_ok
        ));
    }
    if rep.problems.iter().any(|p| p.what.is_empty()) {
        return Err("a problem that says nothing".into());
    }
    // clone_dump: without -r only sound metadata, with -r whatever has a superblock; what
    // it writes reads back as the dump (clone_restore takes it).
    if rep.superblock_ok {
        let d = Dump::from_report(&rep);
        if rep.is_sound() && !d.unknown.is_empty() {
            return Err(format!(
                "sound metadata with regions of unknown state: {d:?}"
            ));
        }
        let mut x = Vec::new();
        d.write_xml(&mut x).map_err(|e| e.to_string())?;
        let x = String::from_utf8(x).map_err(|e| e.to_string())?;
        match xml::parse(&x) {
            Ok(back) if back == d => {}
            r => return Err(format!("the dump reads back as {r:?}, not {d:?}")),
        }
    }
    // clone_repair.
    let given = match sizes {
        Sizes::Right => (Some(m.region_size), Some(m.target_size)),
        Sizes::Absent => (None, None),
        Sizes::Wrong => (Some(12), Some(m.target_size)),
    };
    let r = match repair::repair(&rep, "damaged", given, unknown) {
        Ok(r) => r,
        Err(e) if e.is_empty() => return Err("a repair refused without saying why".into()),
        Err(_) => return Ok(()),
    };
    let out_blocks = device_blocks.max(1024);
    let Ok(blocks) = write::write(&r.metadata, out_blocks) else {
        return Ok(()); // refused: the output is too small for the sizes read
    };
    let out = image(&blocks, out_blocks, 0x5a);
    let back = read::read(&Memory(&out), Depth::All);
    if !back.problems.is_empty() {
        return Err(format!(
            "the repaired metadata does not check clean: {:#?}",
            back.problems
        ));
    }
    // Every region read keeps its state; those of unknown state are what --unknown said.
    let mut unknown_runs = if rep.superblock_ok {
        rep.unknown_runs()
    } else {
        vec![(0, r.metadata.nr_regions())]
    };
    unknown_runs.retain(|&(_, n)| n > 0);
    let want = match unknown {
        Some(Unknown::Copied) => write::union_runs(&rep.copied_runs(), &unknown_runs),
        _ => canonical(&rep.copied_runs()),
    };
    if back.copied_runs() != want {
        return Err(format!("repaired: {:?}, want {want:?}", back.copied_runs()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn damaged_metadata_never_panics_the_tools_and_repairs_clean(input in damage_input()) {
        bounded(move || damage_case(input))?;
    }
}

// SPDX-License-Identifier: GPL-2.0

//! `dm_marks_test`: unit tests of the clone target's copied map and its two-phase commit sets
//! (rust/md/clone/regions/marks.rs, included here as it is), run in the kernel when the module
//! is loaded. Each case prints `dm_marks_test: ok <n> <name>` or `not ok`; loading fails
//! (`EINVAL`) if any case failed. The selftest marks.sh loads it on both kernels.
//!
//! The cases: a mark lands once; the set switch at `begin_commit` (marks after it go to the
//! next commit, but one sharing a word with the closed set is written with it: the commit
//! order of `marks`); draining and ending both sets; `freeze` taking back exactly the marks
//! not on disk and refusing new ones, and `survives_reload` after it; the maps released once
//! all is copied and committed; marks at word edges (`mark_mask`, `mark_run`); `reset`; which
//! commits that changed enough of a big map to rewrite it whole (`dense`, `with_words`).

#[path = "../../rust/md/clone/regions/marks.rs"]
mod marks;

use kernel::prelude::*;
use marks::{Mark, Marks};

module! {
    type: MarksTest,
    name: "dm_marks_test",
    description: "unit tests of the clone target's copied map and commit sets",
    license: "GPL",
}

struct MarksTest;

type Case = fn() -> core::result::Result<(), &'static str>;

/// Fails the case with `why` unless `cond`.
fn check(cond: bool, why: &'static str) -> core::result::Result<(), &'static str> {
    if cond {
        Ok(())
    } else {
        Err(why)
    }
}

fn new_marks(n: u32) -> core::result::Result<Pin<KBox<Marks>>, &'static str> {
    let init = Marks::new(n).map_err(|_| "Marks::new failed")?;
    KBox::pin_init(init, GFP_KERNEL).map_err(|_| "allocation failed")
}

/// The regions a commit of the set would write (the bits of the words `drain_closed` calls
/// back with).
fn drain(m: &Marks, closed: &marks::ClosedSet) -> core::result::Result<KVec<u32>, &'static str> {
    let mut out = KVec::new();
    m.drain_closed(closed, |w, mut bits| {
        while bits != 0 {
            out.push(w * 64 + bits.trailing_zeros(), GFP_KERNEL)
                .map_err(|_| ENOMEM)?;
            bits &= bits - 1;
        }
        Ok(())
    })
    .map_err(|_| "drain_closed failed")?;
    Ok(out)
}

fn a_mark_lands_once() -> core::result::Result<(), &'static str> {
    let m = new_marks(200)?;
    check(!m.is_copied(5) && !m.changed(), "fresh map")?;
    check(m.mark(5) == Mark::New, "first mark")?;
    check(m.mark(5) == Mark::Already, "second mark")?;
    check(
        m.is_copied(5) && m.changed() && m.nr_copied() == 1,
        "counted once",
    )?;
    check(!m.done() && m.nr_regions() == 200, "not done")
}

fn sets_switch_at_begin_commit() -> core::result::Result<(), &'static str> {
    let m = new_marks(200)?;
    m.mark(5);
    let closed = m.begin_commit().ok_or("begin_commit found no marks")?;
    // After the switch: 6 shares word 0 with 5 (written with it), 70 is in word 1 only.
    m.mark(6);
    m.mark(70);
    check(
        drain(&m, &closed)?.as_slice() == [5, 6],
        "first commit writes word 0",
    )?;
    m.end_commit(closed);
    check(m.changed(), "the open set still has marks")?;
    let closed = m
        .begin_commit()
        .ok_or("second begin_commit found no marks")?;
    check(
        drain(&m, &closed)?.as_slice() == [5, 6, 70],
        "second commit writes words 0 and 1",
    )?;
    m.end_commit(closed);
    check(!m.changed(), "nothing left to commit")?;
    check(m.begin_commit().is_none(), "an empty set is not closed")
}

fn freeze_takes_back_what_is_not_on_disk() -> core::result::Result<(), &'static str> {
    let m = new_marks(200)?;
    m.mark(5);
    let closed = m.begin_commit().ok_or("no marks")?;
    let _ = drain(&m, &closed)?;
    m.end_commit(closed);
    // 100 and 101 are marked after the last commit; the metadata has 5 only.
    m.mark(100);
    m.mark(101);
    check(m.survives_reload(100), "before freeze every write survives")?;
    let taken = m.freeze(|w| if w == 0 { 1 << 5 } else { 0 });
    check(taken == 2, "freeze took back both uncommitted marks")?;
    check(
        !m.is_copied(100) && !m.is_copied(101) && m.is_copied(5),
        "the map is the disk's",
    )?;
    check(m.nr_copied() == 1, "count follows")?;
    check(
        m.mark(102) == Mark::Frozen && !m.is_copied(102),
        "no marks after freeze",
    )?;
    check(
        !m.mark_run(110, 2) && !m.mark_word(2, 1),
        "no runs or masks after freeze",
    )?;
    check(m.survives_reload(5), "a committed region survives")?;
    check(!m.survives_reload(100), "an uncommitted one does not")?;
    check(!m.changed(), "nothing to commit once frozen")
}

fn maps_released_when_all_is_committed() -> core::result::Result<(), &'static str> {
    let m = new_marks(3)?;
    check(m.release_if_done() == 0, "not done: nothing released")?;
    check(m.mark_run(0, 3), "mark_run")?;
    check(m.done(), "done")?;
    check(
        m.release_if_done() == 0,
        "marks not committed: nothing released",
    )?;
    let closed = m.begin_commit().ok_or("no marks")?;
    check(
        drain(&m, &closed)?.as_slice() == [0, 1, 2],
        "commit writes all three",
    )?;
    m.end_commit(closed);
    let bytes = m.bytes();
    check(
        bytes > 0 && m.release_if_done() == bytes,
        "released, all bytes",
    )?;
    check(m.bytes() == 0, "nothing left")?;
    check(
        m.is_copied(0) && m.is_copied(2),
        "released: every region reads as copied",
    )?;
    check(
        m.mark(1) == Mark::Already && !m.changed(),
        "a mark changes nothing",
    )
}

fn marks_at_word_edges() -> core::result::Result<(), &'static str> {
    let m = new_marks(130)?;
    check(m.mark_word(1, 0b101), "mark_word")?;
    check(
        m.is_copied(64) && !m.is_copied(65) && m.is_copied(66) && m.changed(),
        "word bits, a change",
    )?;
    check(m.mark_run(62, 4), "mark_run across words")?;
    check((62..66).all(|r| m.is_copied(r)), "run marked")?;
    check(m.nr_copied() == 5, "62, 63, 64, 65, 66")?;
    check(
        m.mark(129) == Mark::New && m.mark(130) == Mark::Already,
        "the last region; past it",
    )?;
    check(m.nr_copied() == 6, "past the end is not counted")?;
    check(m.all_copied(62, 5) && !m.all_copied(61, 2), "all_copied")?;
    check(
        m.next_uncopied_skipping(62, |_| 0) == Some(67),
        "next uncopied after the run",
    )?;
    check(
        m.next_uncopied_skipping(67, |w| if w == 1 { u64::MAX } else { 0 }) == Some(128),
        "a skipped word",
    )?;
    // Word 2 holds regions 128 and 129 (129 marked already): a full word marks 128 only.
    check(
        m.mark_word(2, u64::MAX) && m.is_copied(128) && m.nr_copied() == 7,
        "a full last word marks only its regions, and counts only new ones",
    )
}

fn reset_forgets_everything() -> core::result::Result<(), &'static str> {
    let m = new_marks(200)?;
    m.mark(1);
    m.mark(150);
    m.reset();
    check(
        m.nr_copied() == 0 && !m.is_copied(1) && !m.changed(),
        "reset",
    )?;
    m.load_word(0, 1 << 7);
    check(
        m.is_copied(7) && m.nr_copied() == 1 && !m.changed(),
        "load is not a change",
    )?;
    check(m.mark(7) == Mark::Already, "a loaded region is copied")?;
    // Word 3 holds regions 192..256, of which 192..200 exist: only those load and count;
    // loading bits again does not count them twice.
    m.load_word(3, u64::MAX);
    m.load_word(3, u64::MAX);
    check(
        m.nr_copied() == 9 && m.is_copied(199) && !m.is_copied(200),
        "a word loads its regions that exist, once",
    )
}

/// Marks regions `first..end` a word at a time (as a discard does).
fn mark_range(m: &Marks, first: u32, end: u32) -> core::result::Result<(), &'static str> {
    let mut r = first;
    while r < end {
        let w = r / 64;
        let hi = end.min((w + 1) * 64);
        let bits = (u64::MAX >> (64 - (hi - r))) << (r % 64);
        check(m.mark_word(w, bits), "mark_word")?;
        r = hi;
    }
    Ok(())
}

fn a_dense_commit_rewrites_the_map() -> core::result::Result<(), &'static str> {
    // 5001 words, the last holding 37 regions: dense from 5001 / 64 = 78 changed words.
    let n = 5000 * 64 + 37;
    for (changed, dense) in [(77, false), (78, true)] {
        let m = new_marks(n)?;
        // One region in each of `changed` words, spread over the map.
        for i in 0..changed {
            let r = i * 64 + i % 64;
            mark_range(&m, r, r + 1)?;
        }
        let closed = m.begin_commit().ok_or("no marks")?;
        check(
            m.dense(&closed) == dense,
            if dense {
                "78 of 5001 words changed: dense"
            } else {
                "77 of 5001 words changed: word by word"
            },
        )?;
        m.end_commit(closed);
        // What was committed does not count again.
        mark_range(&m, n - 1, n)?;
        let closed = m.begin_commit().ok_or("no marks")?;
        check(!m.dense(&closed), "one word changed since: not dense")?;
        // The words the rewrite reads are the map's, marks of either set included.
        let ok = m
            .with_words(|word| word(0) == 1 && word(5000) == 1 << 36 && word(1) == 1 << 1)
            .ok_or("maps released")?;
        check(ok, "with_words reads the map's words")?;
        m.end_commit(closed);
    }
    // A map below the minimum (4071 words) is never rewritten, even if all of it changed.
    let m = new_marks(4071 * 64)?;
    mark_range(&m, 0, 4071 * 64)?;
    let closed = m.begin_commit().ok_or("no marks")?;
    check(!m.dense(&closed), "4071 words: too few to rewrite")?;
    m.end_commit(closed);
    let m = new_marks(4072 * 64)?;
    mark_range(&m, 0, 4072 * 64)?;
    let closed = m.begin_commit().ok_or("no marks")?;
    check(m.dense(&closed), "4072 words, all changed: dense")?;
    m.end_commit(closed);
    Ok(())
}

const CASES: [(&str, Case); 7] = [
    ("a mark lands once", a_mark_lands_once),
    (
        "sets switch at begin_commit; a shared word goes with the closed set",
        sets_switch_at_begin_commit,
    ),
    (
        "freeze takes back what is not on disk and refuses marks",
        freeze_takes_back_what_is_not_on_disk,
    ),
    (
        "maps released once every region is copied and committed",
        maps_released_when_all_is_committed,
    ),
    (
        "marks at word edges (mask, run, last region)",
        marks_at_word_edges,
    ),
    ("reset and load", reset_forgets_everything),
    (
        "a commit that changed one word in 64 of a big map rewrites it",
        a_dense_commit_rewrites_the_map,
    ),
];

impl kernel::Module for MarksTest {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let mut failed = 0;
        for (i, (name, case)) in CASES.iter().enumerate() {
            match case() {
                Ok(()) => pr_info!("ok {} {}\n", i + 1, name),
                Err(why) => {
                    failed += 1;
                    pr_err!("not ok {} {}: {}\n", i + 1, name, why);
                }
            }
        }
        pr_info!("{} of {} cases passed\n", CASES.len() - failed, CASES.len());
        if failed > 0 {
            return Err(EINVAL);
        }
        Ok(MarksTest)
    }
}

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
//! runs of copied regions at the end of the map a commit writes whole (`full_tail`).

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

/// Commits what is marked (drain and end), as a commit of the target does.
fn commit(m: &Marks) -> core::result::Result<(), &'static str> {
    let closed = m.begin_commit().ok_or("no marks")?;
    drain(m, &closed)?;
    m.end_commit(closed);
    Ok(())
}

fn a_full_tail_is_written_whole_when_changed_enough() -> core::result::Result<(), &'static str> {
    // 5001 words, the last holding 37 regions.
    let n = 5000 * 64 + 37;
    let m = new_marks(n)?;
    // Every region from 645 on: word 10 holds 640..644 uncopied, the tail is words 11 on.
    mark_range(&m, 645, n)?;
    let closed = m.begin_commit().ok_or("no marks")?;
    check(
        m.full_tail(&closed) == Some(11),
        "a discard to the end: the tail from the first full word",
    )?;
    drain(&m, &closed)?;
    m.end_commit(closed);
    // A later commit that changed one word of it does not rewrite the tail.
    mark_range(&m, 0, 1)?;
    mark_range(&m, 640, 641)?;
    let closed = m.begin_commit().ok_or("no marks")?;
    check(
        m.full_tail(&closed).is_none(),
        "a tail the commit hardly changed: word by word",
    )?;
    m.end_commit(closed);
    // With the last region not copied there is no full tail; a tail shorter than the minimum
    // is written word by word.
    let m = new_marks(n)?;
    mark_range(&m, 0, n - 1)?;
    let closed = m.begin_commit().ok_or("no marks")?;
    check(m.full_tail(&closed).is_none(), "last region uncopied: none")?;
    m.end_commit(closed);
    let m = new_marks(n)?;
    mark_range(&m, (5001 - 4071) * 64, n)?;
    let closed = m.begin_commit().ok_or("no marks")?;
    check(m.full_tail(&closed).is_none(), "4071 words: too short")?;
    m.end_commit(closed);
    // 4072 words, of which the commit fills 62, then 63 (one in 64: written whole).
    for (filled, whole) in [(62, false), (63, true)] {
        let m = new_marks(n)?;
        let first = 5001 - 4072;
        for w in first..5001 {
            let skip = if w - first < filled { 1 } else { 0 };
            mark_range(&m, w * 64 + skip, n.min(w * 64 + 64))?;
        }
        commit(&m)?;
        for w in first..first + filled {
            mark_range(&m, w * 64, w * 64 + 1)?;
        }
        let closed = m.begin_commit().ok_or("no marks")?;
        check(
            m.full_tail(&closed) == whole.then_some(first),
            if whole {
                "4072 words, 63 changed: written whole"
            } else {
                "4072 words, 62 changed: word by word"
            },
        )?;
        m.end_commit(closed);
    }
    // Exactly the minimum, every word changed.
    let m = new_marks(n)?;
    mark_range(&m, (5001 - 4072) * 64, n)?;
    let closed = m.begin_commit().ok_or("no marks")?;
    check(
        m.full_tail(&closed) == Some(5001 - 4072),
        "4072 words, all changed: written whole",
    )?;
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
        "a full tail is written whole only when long and changed enough",
        a_full_tail_is_written_whole_when_changed_enough,
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

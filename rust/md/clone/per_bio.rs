// SPDX-License-Identifier: GPL-2.0

//! What the target keeps with each bio (device-mapper's per-bio data), packed in 8 bytes: a
//! larger struct cost 10-25% of the IOPS under TCG (a 16-byte one was measured).
//!
//! `map` writes it, in process context; the bio's completion (`end_io`, interrupt context)
//! reads it. Nothing else touches it: it needs no lock.

/// The bits of [`PerBio::tag`] holding the start time; the two above hold the kind.
const TIME_MASK: u32 = (1 << 30) - 1;
/// Kind: a write sent to the destination, to a region that is (or is being) copied.
const KIND_WRITE: u32 = 1 << 30;
/// Kind: a write that fills its region whole, sent to the destination before the region is
/// marked copied (its completion marks it).
const KIND_OVERWRITE: u32 = 2 << 30;
/// Kind: the same, for a FUA write, which completes only after the commit that records its
/// region. (Kept here: the block layer clears REQ_FUA on the way to a device without a
/// volatile cache, so the completed bio may no longer say.)
const KIND_OVERWRITE_FUA: u32 = 3 << 30;
const KIND_MASK: u32 = 3 << 30;

/// What a write sent to the destination is, for its completion.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum DestWrite {
    /// Not a write to the destination.
    None,
    /// A write to region `r` (copied, or waiting for the copy that makes it so).
    Write(u32),
    /// A write filling region `r` whole, which marks it when it completes; `fua`: it was a FUA
    /// write, which must not complete before the mark is committed.
    Overwrite { region: u32, fua: bool },
}

/// The per-bio data.
///
/// # Invariants
///
/// With `tag`'s kind bits other than 0, `region` is the region written.
#[derive(Clone, Copy, Default)]
pub(crate) struct PerBio {
    region: u32,
    /// Kind (bits 31..30) and the start time in microseconds, truncated to 30 bits (bits
    /// 29..0; 0: not timed).
    tag: u32,
}

impl PerBio {
    /// The bio is a write to region `r` that goes to the destination.
    pub(crate) fn set_write(&mut self, r: u32) {
        self.region = r;
        self.tag = (self.tag & TIME_MASK) | KIND_WRITE;
    }

    /// The bio fills region `r` whole, and marks it copied when it completes; `fua`: it is a
    /// FUA write.
    pub(crate) fn set_overwrite(&mut self, r: u32, fua: bool) {
        self.region = r;
        let kind = if fua {
            KIND_OVERWRITE_FUA
        } else {
            KIND_OVERWRITE
        };
        self.tag = (self.tag & TIME_MASK) | kind;
    }

    /// What kind of destination write it is.
    pub(crate) fn dest_write(&self) -> DestWrite {
        match self.tag & KIND_MASK {
            KIND_WRITE => DestWrite::Write(self.region),
            KIND_OVERWRITE => DestWrite::Overwrite {
                region: self.region,
                fua: false,
            },
            KIND_OVERWRITE_FUA => DestWrite::Overwrite {
                region: self.region,
                fua: true,
            },
            _ => DestWrite::None,
        }
    }

    /// Times the bio from `now_us` (microseconds, any origin: only differences count).
    pub(crate) fn set_start(&mut self, now_us: u32) {
        // Never 0, which means not timed.
        self.tag = (self.tag & KIND_MASK) | (now_us & TIME_MASK).max(1);
    }

    /// Microseconds from its start to `now_us`, if it was timed (modulo 2^30 us, about 18
    /// minutes: far above any latency the controller considers).
    pub(crate) fn elapsed_us(&self, now_us: u32) -> Option<u32> {
        let start = self.tag & TIME_MASK;
        (start != 0).then(|| now_us.wrapping_sub(start) & TIME_MASK)
    }
}

// SPDX-License-Identifier: GPL-2.0
//! What `clone_repair` writes for damaged metadata: the sizes (the superblock's, or the
//! ones given when it cannot be read) and the state of every region whose bitset word
//! could be read; the regions of unknown state become what `--unknown` says, and the
//! repair is refused while it says nothing. Writing it is [`crate::write`]'s.

use crate::cli::{runs_text, Unknown, UNKNOWN_CHOICE};
use crate::read::Report;
use crate::write::{self, Metadata};

/// What a repair writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    pub metadata: Metadata,
    /// How many regions of unknown state became what `--unknown` said (0: none).
    pub nr_unknown: u64,
}

/// The repair of what `rep` read from `input` (its name, for messages): `sizes` are
/// `--region-size` and `--target-size`, used only when the superblock cannot be read;
/// `unknown` is `--unknown`. Refused, saying why (for `clone_repair: <why>`): no
/// readable superblock and not both sizes, or sizes no clone has, or regions of unknown
/// state and no `unknown`.
pub fn repair(
    rep: &Report,
    input: &str,
    sizes: (Option<u64>, Option<u64>),
    unknown: Option<Unknown>,
) -> Result<Repair, String> {
    let (region_size, target_size, mut unknown_runs) = if rep.superblock_ok {
        (
            rep.superblock.region_size,
            rep.superblock.target_size,
            rep.unknown_runs(),
        )
    } else {
        match sizes {
            (Some(r), Some(t)) => {
                let given = Metadata {
                    region_size: r,
                    target_size: t,
                    copied: Vec::new(),
                };
                write::validate(&given, write::MAX_BLOCKS).map_err(|e| {
                    format!(
                        "--region-size {r} --target-size {t}: {e} (give the sizes of the clone's table)"
                    )
                })?;
                (r, t, vec![(0, given.nr_regions())])
            }
            _ => {
                return Err(format!(
                    "{input}: the superblock cannot be read: give --region-size and --target-size (the clone's table has them)"
                ))
            }
        }
    };
    unknown_runs.retain(|&(_, n)| n > 0);
    let mut m = Metadata {
        region_size,
        target_size,
        copied: rep.copied_runs(),
    };
    let nr_unknown: u64 = unknown_runs.iter().map(|&(_, n)| n).sum();
    if nr_unknown > 0 {
        match unknown {
            None => {
                return Err(format!(
                    "the state of {nr_unknown} regions cannot be read ({}). {UNKNOWN_CHOICE}",
                    runs_text(&unknown_runs)
                ))
            }
            Some(Unknown::Copied) => m.copied = write::union_runs(&m.copied, &unknown_runs),
            Some(Unknown::Uncopied) => {}
        }
    }
    Ok(Repair {
        metadata: m,
        nr_unknown,
    })
}

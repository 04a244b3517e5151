// SPDX-License-Identifier: GPL-2.0
//! clone_metadata_size: how big a clone's metadata device should be
//! (thin_metadata_size's conventions), by the user guide's sizing:
//!
//!   clone_metadata_size --device-size 1T --region-size 1M
//!
//! Sizes take a unit (s for 512-byte sectors, the default, or k, m, g, t:
//! KiB to TiB). Prints the suggested size, the worst case (a transaction that
//! changes every bitset block) and what the bitset takes at rest; with
//! `--numeric-only`, the suggested size in 512-byte sectors. Exit 0, or 1 for
//! sizes no clone can have (saying why), 2 for a usage error.

use clap::Parser;
use clone_metadata::size;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "The metadata device size a dm-clone needs")]
struct Args {
    /// The clone's size (the source's): a number of sectors, or with k, m, g, t.
    #[arg(long, value_parser = clone_metadata::cli::sectors)]
    device_size: u64,
    /// The region size: sectors, or with k, m (a power of two of 4 KiB to 1 GiB).
    #[arg(long, value_parser = clone_metadata::cli::sectors)]
    region_size: u64,
    /// Print only the suggested size, in sectors.
    #[arg(short, long)]
    numeric_only: bool,
}

fn main() -> ExitCode {
    let args: Args = match clone_metadata::cli::parse() {
        Ok(a) => a,
        Err(code) => return code,
    };
    let s = match size::sizes(args.device_size, args.region_size) {
        Ok(s) => s,
        Err(e) => {
            clone_metadata::cli::say(format_args!("clone_metadata_size: {e}"));
            return ExitCode::from(1);
        }
    };
    let kib = |blocks: u64| blocks * 4;
    let out = if args.numeric_only {
        format!("{}\n", s.suggested_bytes.div_ceil(512))
    } else {
        format!(
            "regions: {}\n\
             suggested: {} sectors ({} KiB: room to rewrite the bitset in one commit, plus 4 MiB)\n\
             worst case: {} blocks ({} KiB: a transaction changing every bitset block)\n\
             at rest: {} blocks ({} KiB: {} array blocks, {} btree nodes)\n",
            s.regions,
            s.suggested_bytes.div_ceil(512),
            s.suggested_bytes.div_ceil(1024),
            s.worst_blocks,
            kib(s.worst_blocks),
            s.at_rest_blocks,
            kib(s.at_rest_blocks),
            s.array_blocks,
            s.btree_blocks
        )
    };
    clone_metadata::cli::print("clone_metadata_size", &out);
    ExitCode::SUCCESS
}

// SPDX-License-Identifier: GPL-2.0

//! The table's options and the messages that change them.
//!
//! Names are matched ignoring ASCII case, like the C target's. Each option has our name and
//! the C target's (`copy_*` and `*_background_copy` / `hydration_*` and `*_hydration`), so
//! tables and scripts written for the C target keep working.

use kernel::{c_str, device_mapper::Args, device_mapper::TargetError, prelude::*};

/// Smallest region: 4 KiB.
pub(crate) const MIN_REGION_SIZE: u64 = 8;
/// Largest region: 1 GiB.
pub(crate) const MAX_REGION_SIZE: u64 = 2_097_152;
/// The largest `copy_rate_limit`, in MiB/s.
pub(crate) const MAX_RATE_LIMIT: u32 = 1 << 20;

/// The table's options after the three devices.
pub(crate) struct Options {
    /// Region size in sectors: a power of two within the limits.
    pub(crate) region_size: u64,
    /// `no_background_copy` was not given.
    pub(crate) background_copy: bool,
    /// `no_discard_passdown` was not given.
    pub(crate) discard_passdown: bool,
    /// At most this many regions copied at once (`None`: the copy controller decides).
    pub(crate) threshold: Option<u32>,
    /// At most this many contiguous regions per copy job (`None`: the controller decides).
    pub(crate) batch_size: Option<u32>,
    /// The background copy's rate limit in MiB/s; 0 for none.
    pub(crate) rate_limit: u32,
}

const FEATURES: [&str; 3] = ["no_background_copy", "no_hydration", "no_discard_passdown"];
const CORE_ARGS: [&str; 5] = [
    "copy_threshold",
    "hydration_threshold",
    "copy_batch_size",
    "hydration_batch_size",
    "copy_rate_limit",
];
const CORE_ARG_ERRORS: [&CStr; 5] = [
    c_str!("Invalid value for argument `copy_threshold'"),
    c_str!("Invalid value for argument `hydration_threshold'"),
    c_str!("Invalid value for argument `copy_batch_size'"),
    c_str!("Invalid value for argument `hydration_batch_size'"),
    c_str!("Invalid value for argument `copy_rate_limit' (MiB/s, 0 to 1048576)"),
];

impl Options {
    /// Parses `<region size> [<#features> <feature>* [<#core args> <core arg>*]]`.
    pub(crate) fn parse(args: &mut Args<'_>) -> Result<Self, TargetError> {
        const BAD_SIZE: &CStr = c_str!("Invalid region size: must be 8 to 2097152 sectors");
        let region_size = args.next_u64(MIN_REGION_SIZE..=MAX_REGION_SIZE, BAD_SIZE)?;
        if !region_size.is_power_of_two() {
            return Err(TargetError::invalid(c_str!(
                "Region size is not a power of 2"
            )));
        }
        let mut opts = Self {
            region_size,
            background_copy: true,
            discard_passdown: true,
            threshold: None,
            batch_size: None,
            rate_limit: 0,
        };
        let mut features = args.group(0..=2, c_str!("Invalid number of feature arguments"))?;
        while !features.is_empty() {
            match features.next_keyword(&FEATURES) {
                Some(0 | 1) => opts.background_copy = false,
                Some(_) => opts.discard_passdown = false,
                None => return Err(TargetError::invalid(c_str!("Invalid feature argument"))),
            }
        }
        let mut core = args.group(0..=6, c_str!("Invalid number of core arguments"))?;
        if core.len() % 2 != 0 {
            return Err(TargetError::invalid(c_str!(
                "Number of core arguments must be even"
            )));
        }
        while !core.is_empty() {
            let Some(i) = core.next_keyword(&CORE_ARGS) else {
                return Err(TargetError::invalid(c_str!("Invalid core argument")));
            };
            let error = CORE_ARG_ERRORS
                .get(i)
                .copied()
                .unwrap_or(c_str!("Invalid core argument"));
            if i == 4 {
                opts.rate_limit = core.next_u32(0..=MAX_RATE_LIMIT, error)?;
                continue;
            }
            let value = core.next_u32(0..=u32::MAX, error)?;
            if i < 2 {
                opts.threshold = Some(value);
            } else {
                opts.batch_size = Some(value);
            }
        }
        if !args.is_empty() {
            return Err(TargetError::invalid(c_str!("Too many arguments")));
        }
        Ok(opts)
    }
}

/// A `dmsetup message`.
pub(crate) enum Message {
    /// Cap the number of regions copied at once (`None`: no cap, the controller decides).
    Threshold(Option<u32>),
    /// Cap the number of contiguous regions per copy job (`None`: no cap).
    BatchSize(Option<u32>),
    /// Turn the background copy on or off.
    BackgroundCopy(bool),
    /// Set the rate limit, MiB/s (0: none).
    RateLimit(u32),
    /// Reply with what the copy controller chose and measured.
    CopyStats,
    /// Reply with the regions given up after failed copies.
    CopyFailures,
    /// Try the given-up regions again.
    RetryFailed,
    /// Reply with the bytes of memory the in-core maps take.
    Memory,
}

/// The text logged (and the error returned) for a message we do not take.
pub(crate) const MESSAGE_USAGE: &CStr = c_str!(
    "unsupported message; accepted: copy_threshold <n>|auto, copy_batch_size <n>|auto, \
     copy_rate_limit <MiB/s>, copy_stats, copy_failures, retry_failed, memory, \
     enable_background_copy, disable_background_copy \
     (or hydration_threshold <n>, hydration_batch_size <n>, enable_hydration, \
     disable_hydration)"
);

const MESSAGES: [&str; 13] = [
    "copy_threshold",
    "hydration_threshold",
    "copy_batch_size",
    "hydration_batch_size",
    "enable_background_copy",
    "enable_hydration",
    "disable_background_copy",
    "disable_hydration",
    "copy_rate_limit",
    "copy_stats",
    "copy_failures",
    "retry_failed",
    "memory",
];

impl Message {
    /// Parses a message's words.
    pub(crate) fn parse(mut args: Args<'_>) -> Result<Self, TargetError> {
        let usage = TargetError::invalid(MESSAGE_USAGE);
        let msg = match args.next_keyword(&MESSAGES).ok_or(usage)? {
            i @ 0..=3 => {
                let value = match args.next_keyword(&["auto"]) {
                    Some(_) => None,
                    None => Some(args.next_u32(0..=u32::MAX, MESSAGE_USAGE)?),
                };
                if i < 2 {
                    Self::Threshold(value)
                } else {
                    Self::BatchSize(value)
                }
            }
            4 | 5 => Self::BackgroundCopy(true),
            6 | 7 => Self::BackgroundCopy(false),
            8 => Self::RateLimit(args.next_u32(0..=MAX_RATE_LIMIT, MESSAGE_USAGE)?),
            9 => Self::CopyStats,
            10 => Self::CopyFailures,
            11 => Self::RetryFailed,
            _ => Self::Memory,
        };
        args.finish(MESSAGE_USAGE)?;
        Ok(msg)
    }
}

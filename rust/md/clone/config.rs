// SPDX-License-Identifier: GPL-2.0

//! The table's options and the messages that change them.
//!
//! Names are matched ignoring ASCII case, like the C target's. Each option has our name and
//! the C target's (`copy_*` and `*_background_copy` / `hydration_*` and `*_hydration`), so
//! tables and scripts written for the C target keep working.

use crate::geometry::{MAX_REGION_SECTORS, MIN_REGION_SECTORS};
use kernel::{c_str, device_mapper::Args, device_mapper::TargetError, prelude::*};

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

/// A feature argument.
#[derive(Clone, Copy)]
enum Feature {
    NoBackgroundCopy,
    NoDiscardPassdown,
}

const FEATURES: &[(&str, Feature)] = &[
    ("no_background_copy", Feature::NoBackgroundCopy),
    ("no_hydration", Feature::NoBackgroundCopy),
    ("no_discard_passdown", Feature::NoDiscardPassdown),
];

/// A core argument, with the error text for a bad value (which names the argument as given).
#[derive(Clone, Copy)]
enum CoreArg {
    Threshold(&'static CStr),
    BatchSize(&'static CStr),
    RateLimit,
}

const CORE_ARGS: &[(&str, CoreArg)] = &[
    (
        "copy_threshold",
        CoreArg::Threshold(c_str!("Invalid value for argument `copy_threshold'")),
    ),
    (
        "hydration_threshold",
        CoreArg::Threshold(c_str!("Invalid value for argument `hydration_threshold'")),
    ),
    (
        "copy_batch_size",
        CoreArg::BatchSize(c_str!("Invalid value for argument `copy_batch_size'")),
    ),
    (
        "hydration_batch_size",
        CoreArg::BatchSize(c_str!("Invalid value for argument `hydration_batch_size'")),
    ),
    ("copy_rate_limit", CoreArg::RateLimit),
];

const BAD_RATE_LIMIT: &CStr =
    c_str!("Invalid value for argument `copy_rate_limit' (MiB/s, 0 to 1048576)");

impl Options {
    /// Parses `<region size> [<#features> <feature>* [<#core args> <core arg>*]]`.
    pub(crate) fn parse(args: &mut Args<'_>) -> Result<Self, TargetError> {
        const BAD_SIZE: &CStr = c_str!("Invalid region size: must be 8 to 2097152 sectors");
        let region_size = args.next_u64(MIN_REGION_SECTORS..=MAX_REGION_SECTORS, BAD_SIZE)?;
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
            match features.next_keyword(FEATURES) {
                Some(Feature::NoBackgroundCopy) => opts.background_copy = false,
                Some(Feature::NoDiscardPassdown) => opts.discard_passdown = false,
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
            match core.next_keyword(CORE_ARGS) {
                Some(CoreArg::Threshold(error)) => {
                    opts.threshold = Some(core.next_u32(0..=u32::MAX, error)?);
                }
                Some(CoreArg::BatchSize(error)) => {
                    opts.batch_size = Some(core.next_u32(0..=u32::MAX, error)?);
                }
                Some(CoreArg::RateLimit) => {
                    opts.rate_limit = core.next_u32(0..=MAX_RATE_LIMIT, BAD_RATE_LIMIT)?;
                }
                None => return Err(TargetError::invalid(c_str!("Invalid core argument"))),
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
    /// Reply with what the metadata commits did.
    CommitStats,
}

/// The text logged (and the error returned) for a message we do not take.
pub(crate) const MESSAGE_USAGE: &CStr = c_str!(
    "unsupported message; accepted: copy_threshold <n>|auto, copy_batch_size <n>|auto, \
     copy_rate_limit <MiB/s>, copy_stats, copy_failures, retry_failed, memory, commit_stats, \
     enable_background_copy, disable_background_copy \
     (or hydration_threshold <n>, hydration_batch_size <n>, enable_hydration, \
     disable_hydration)"
);

/// A message's first word.
#[derive(Clone, Copy)]
enum Verb {
    Threshold,
    BatchSize,
    BackgroundCopy(bool),
    RateLimit,
    CopyStats,
    CopyFailures,
    RetryFailed,
    Memory,
    CommitStats,
}

const MESSAGES: &[(&str, Verb)] = &[
    ("copy_threshold", Verb::Threshold),
    ("hydration_threshold", Verb::Threshold),
    ("copy_batch_size", Verb::BatchSize),
    ("hydration_batch_size", Verb::BatchSize),
    ("enable_background_copy", Verb::BackgroundCopy(true)),
    ("enable_hydration", Verb::BackgroundCopy(true)),
    ("disable_background_copy", Verb::BackgroundCopy(false)),
    ("disable_hydration", Verb::BackgroundCopy(false)),
    ("copy_rate_limit", Verb::RateLimit),
    ("copy_stats", Verb::CopyStats),
    ("copy_failures", Verb::CopyFailures),
    ("retry_failed", Verb::RetryFailed),
    ("memory", Verb::Memory),
    ("commit_stats", Verb::CommitStats),
];

impl Message {
    /// Parses a message's words.
    pub(crate) fn parse(mut args: Args<'_>) -> Result<Self, TargetError> {
        let usage = TargetError::invalid(MESSAGE_USAGE);
        let cap = |args: &mut Args<'_>| match args.next_keyword(&[("auto", ())]) {
            Some(()) => Ok(None),
            None => args.next_u32(0..=u32::MAX, MESSAGE_USAGE).map(Some),
        };
        let msg = match args.next_keyword(MESSAGES).ok_or(usage)? {
            Verb::Threshold => Self::Threshold(cap(&mut args)?),
            Verb::BatchSize => Self::BatchSize(cap(&mut args)?),
            Verb::BackgroundCopy(on) => Self::BackgroundCopy(on),
            Verb::RateLimit => Self::RateLimit(args.next_u32(0..=MAX_RATE_LIMIT, MESSAGE_USAGE)?),
            Verb::CopyStats => Self::CopyStats,
            Verb::CopyFailures => Self::CopyFailures,
            Verb::RetryFailed => Self::RetryFailed,
            Verb::Memory => Self::Memory,
            Verb::CommitStats => Self::CommitStats,
        };
        args.finish(MESSAGE_USAGE)?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    //! Every accepted form and every refusal, with its text (as device-mapper shows it).
    use super::*;

    /// Parses a table's options from its words.
    fn options(words: &[&'static CStr]) -> Result<Options, TargetError> {
        let mut args = Args::new(words);
        Options::parse(&mut args)
    }

    fn refusal(r: Result<impl Sized, TargetError>) -> &'static str {
        match r {
            Ok(_) => "accepted",
            // (A text that is not UTF-8 matches no expected text.)
            Err(e) => e.message().to_str().unwrap_or("<refusal text not UTF-8>"),
        }
    }

    fn message(words: &[&'static CStr]) -> Result<Message, TargetError> {
        Message::parse(Args::new(words))
    }

    #[test]
    fn region_sizes() -> Result<(), TargetError> {
        let o = options(&[c_str!("8")])?;
        assert_eq!(o.region_size, 8);
        assert!(o.background_copy && o.discard_passdown);
        assert_eq!((o.threshold, o.batch_size, o.rate_limit), (None, None, 0));
        assert_eq!(options(&[c_str!("2097152")])?.region_size, 1 << 21);
        let bad = "Invalid region size: must be 8 to 2097152 sectors";
        for w in [
            c_str!("4"),
            c_str!("4194304"),
            c_str!("x"),
            c_str!("-8"),
            c_str!(""),
        ] {
            assert_eq!(refusal(options(&[w])), bad);
        }
        assert_eq!(
            refusal(options(&[c_str!("24")])),
            "Region size is not a power of 2"
        );
        assert_eq!(refusal(options(&[])), bad);
        Ok(())
    }

    #[test]
    fn features() -> Result<(), TargetError> {
        let o = options(&[c_str!("8"), c_str!("1"), c_str!("no_hydration")])?;
        assert!(!o.background_copy && o.discard_passdown);
        let o = options(&[c_str!("8"), c_str!("1"), c_str!("No_Background_Copy")])?;
        assert!(!o.background_copy);
        let o = options(&[
            c_str!("8"),
            c_str!("2"),
            c_str!("NO_DISCARD_PASSDOWN"),
            c_str!("no_hydration"),
        ])?;
        assert!(!o.background_copy && !o.discard_passdown);
        assert!(options(&[c_str!("8"), c_str!("0")])?.background_copy);
        let count = "Invalid number of feature arguments";
        assert_eq!(refusal(options(&[c_str!("8"), c_str!("3")])), count);
        assert_eq!(refusal(options(&[c_str!("8"), c_str!("1")])), count);
        assert_eq!(refusal(options(&[c_str!("8"), c_str!("x")])), count);
        assert_eq!(
            refusal(options(&[c_str!("8"), c_str!("1"), c_str!("no_copy")])),
            "Invalid feature argument"
        );
        Ok(())
    }

    #[test]
    fn core_args() -> Result<(), TargetError> {
        let o = options(&[
            c_str!("8"),
            c_str!("0"),
            c_str!("6"),
            c_str!("copy_threshold"),
            c_str!("4"),
            c_str!("HYDRATION_BATCH_SIZE"),
            c_str!("16"),
            c_str!("copy_rate_limit"),
            c_str!("8"),
        ])?;
        assert_eq!(
            (o.threshold, o.batch_size, o.rate_limit),
            (Some(4), Some(16), 8)
        );
        let o = options(&[
            c_str!("8"),
            c_str!("0"),
            c_str!("4"),
            c_str!("hydration_threshold"),
            c_str!("0"),
            c_str!("copy_batch_size"),
            c_str!("4294967295"),
        ])?;
        assert_eq!((o.threshold, o.batch_size), (Some(0), Some(u32::MAX)));
        let t = |w: &[&'static CStr]| {
            let mut all = std::vec![c_str!("8"), c_str!("0")];
            all.extend_from_slice(w);
            refusal(options(&all))
        };
        assert_eq!(
            t(&[c_str!("1"), c_str!("copy_threshold")]),
            "Number of core arguments must be even"
        );
        assert_eq!(t(&[c_str!("8")]), "Invalid number of core arguments");
        assert_eq!(
            t(&[c_str!("2"), c_str!("bogus"), c_str!("1")]),
            "Invalid core argument"
        );
        assert_eq!(
            t(&[c_str!("2"), c_str!("copy_threshold"), c_str!("x")]),
            "Invalid value for argument `copy_threshold'"
        );
        assert_eq!(
            t(&[
                c_str!("2"),
                c_str!("hydration_threshold"),
                c_str!("4294967296")
            ]),
            "Invalid value for argument `hydration_threshold'"
        );
        assert_eq!(
            t(&[c_str!("2"), c_str!("copy_batch_size"), c_str!("-1")]),
            "Invalid value for argument `copy_batch_size'"
        );
        assert_eq!(
            t(&[c_str!("2"), c_str!("hydration_batch_size"), c_str!("")]),
            "Invalid value for argument `hydration_batch_size'"
        );
        assert_eq!(
            t(&[c_str!("2"), c_str!("copy_rate_limit"), c_str!("1048577")]),
            "Invalid value for argument `copy_rate_limit' (MiB/s, 0 to 1048576)"
        );
        assert_eq!(t(&[c_str!("0"), c_str!("extra")]), "Too many arguments");
        Ok(())
    }

    #[test]
    fn messages() {
        let usage = MESSAGE_USAGE
            .to_str()
            .unwrap_or("<MESSAGE_USAGE not UTF-8>");
        assert!(matches!(
            message(&[c_str!("copy_threshold"), c_str!("4")]),
            Ok(Message::Threshold(Some(4)))
        ));
        assert!(matches!(
            message(&[c_str!("HYDRATION_THRESHOLD"), c_str!("auto")]),
            Ok(Message::Threshold(None))
        ));
        assert!(matches!(
            message(&[c_str!("copy_batch_size"), c_str!("AUTO")]),
            Ok(Message::BatchSize(None))
        ));
        assert!(matches!(
            message(&[c_str!("hydration_batch_size"), c_str!("1")]),
            Ok(Message::BatchSize(Some(1)))
        ));
        for (w, on) in [
            (c_str!("enable_background_copy"), true),
            (c_str!("enable_hydration"), true),
            (c_str!("disable_background_copy"), false),
            (c_str!("Disable_Hydration"), false),
        ] {
            assert!(matches!(message(&[w]), Ok(Message::BackgroundCopy(b)) if b == on));
        }
        assert!(matches!(
            message(&[c_str!("copy_rate_limit"), c_str!("1048576")]),
            Ok(Message::RateLimit(1_048_576))
        ));
        assert!(matches!(
            message(&[c_str!("copy_stats")]),
            Ok(Message::CopyStats)
        ));
        assert!(matches!(
            message(&[c_str!("copy_failures")]),
            Ok(Message::CopyFailures)
        ));
        assert!(matches!(
            message(&[c_str!("retry_failed")]),
            Ok(Message::RetryFailed)
        ));
        assert!(matches!(message(&[c_str!("memory")]), Ok(Message::Memory)));
        assert!(matches!(
            message(&[c_str!("commit_stats")]),
            Ok(Message::CommitStats)
        ));
        for words in [
            &[][..],
            &[c_str!("bogus")],
            &[c_str!("copy_threshold")],
            &[c_str!("copy_threshold"), c_str!("x")],
            &[c_str!("copy_threshold"), c_str!("4"), c_str!("5")],
            &[c_str!("copy_batch_size"), c_str!("-1")],
            &[c_str!("copy_rate_limit"), c_str!("1048577")],
            &[c_str!("copy_rate_limit"), c_str!("auto")],
            &[c_str!("enable_hydration"), c_str!("now")],
            &[c_str!("memory"), c_str!("all")],
            &[c_str!("commit_stats"), c_str!("0")],
        ] {
            assert_eq!(refusal(message(words)), usage, "{words:?}");
        }
    }
}

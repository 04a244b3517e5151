// SPDX-License-Identifier: GPL-2.0

//! Arguments of a table line or a message.

use super::TargetError;
use crate::{error::code::EINVAL, str::CStr};
use core::ops::RangeInclusive;

/// The arguments of a target's table line (after `<start> <length> <target name>`) or of a
/// message, consumed front to back.
///
/// Each parsing helper takes the error text to report when the argument is missing or wrong;
/// it becomes the error device-mapper shows the user (`ti->error`), with `-EINVAL`.
///
/// # Examples
///
/// ```
/// use kernel::{c_str, device_mapper::Args};
///
/// let argv = [c_str!("/dev/sdb"), c_str!("2048"), c_str!("1"), c_str!("no_discard_passdown")];
/// let mut args = Args::new(&argv);
/// let dev = args.next_arg(c_str!("Missing device"))?;
/// let start = args.next_u64(0..=u64::MAX, c_str!("Invalid device sector"))?;
/// let mut features = args.group(0..=1, c_str!("Invalid number of feature arguments"))?;
/// assert_eq!(dev.to_bytes(), b"/dev/sdb");
/// assert_eq!(start, 2048);
/// assert_eq!(features.next_keyword(&[("no_discard_passdown", 1)]), Some(1));
/// features.finish(c_str!("Too many features"))?;
/// args.finish(c_str!("Too many arguments"))?;
///
/// // Out of range, not a number, missing: each gives its own text.
/// let argv = [c_str!("4"), c_str!("x")];
/// let mut args = Args::new(&argv);
/// let e = args.next_u32(8..=2097152, c_str!("Invalid region size")).unwrap_err();
/// assert_eq!(e.message().to_bytes(), b"Invalid region size");
/// assert_eq!(e.code(), EINVAL);
/// let e = args.next_u32(0..=10, c_str!("Not a number")).unwrap_err();
/// assert_eq!(e.message().to_bytes(), b"Not a number");
/// let e = args.next_arg(c_str!("Missing")).unwrap_err();
/// assert_eq!(e.message().to_bytes(), b"Missing");
/// # Ok::<(), kernel::device_mapper::TargetError>(())
/// ```
#[derive(Clone)]
pub struct Args<'a> {
    args: &'a [&'a CStr],
}

impl<'a> Args<'a> {
    /// Arguments from a slice.
    pub fn new(args: &'a [&'a CStr]) -> Self {
        Self { args }
    }

    /// How many arguments remain.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// Whether no arguments remain.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// The remaining arguments, not consumed.
    pub fn remaining(&self) -> &'a [&'a CStr] {
        self.args
    }

    /// Takes the next argument, which must be there.
    pub fn next_arg(&mut self, error: &'static CStr) -> Result<&'a CStr, TargetError> {
        self.next().ok_or(TargetError::new(EINVAL, error))
    }

    /// Takes the next argument as UTF-8 text.
    pub fn next_str(&mut self, error: &'static CStr) -> Result<&'a str, TargetError> {
        self.next_arg(error)?
            .to_str()
            .map_err(|_| TargetError::new(EINVAL, error))
    }

    /// Takes the next argument as a base-10 unsigned number within `range`.
    pub fn next_u64(
        &mut self,
        range: RangeInclusive<u64>,
        error: &'static CStr,
    ) -> Result<u64, TargetError> {
        let value = self
            .next_str(error)?
            .parse::<u64>()
            .map_err(|_| TargetError::new(EINVAL, error))?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(TargetError::new(EINVAL, error))
        }
    }

    /// Takes the next argument as a base-10 unsigned number within `range`.
    pub fn next_u32(
        &mut self,
        range: RangeInclusive<u32>,
        error: &'static CStr,
    ) -> Result<u32, TargetError> {
        let range = u64::from(*range.start())..=u64::from(*range.end());
        // The range keeps the value within `u32`.
        self.next_u64(range, error)
            .and_then(|v| u32::try_from(v).map_err(|_| TargetError::new(EINVAL, error)))
    }

    /// Takes the next argument if it is one of the keywords of `table` (compared ignoring
    /// ASCII case, as device-mapper targets do), returning the value the table gives it.
    /// Takes nothing otherwise.
    ///
    /// One table per kind of argument, with the caller's own values (an enum, say), so no
    /// caller matches on positions:
    ///
    /// ```
    /// use kernel::{c_str, device_mapper::Args};
    ///
    /// #[derive(Clone, Copy, PartialEq, Debug)]
    /// enum Feature { NoCopy, NoPassdown }
    /// const FEATURES: &[(&str, Feature)] = &[
    ///     ("no_background_copy", Feature::NoCopy),
    ///     ("no_hydration", Feature::NoCopy),
    ///     ("no_discard_passdown", Feature::NoPassdown),
    /// ];
    /// let argv = [c_str!("No_Hydration"), c_str!("other")];
    /// let mut args = Args::new(&argv);
    /// assert_eq!(args.next_keyword(FEATURES), Some(Feature::NoCopy));
    /// assert_eq!(args.next_keyword(FEATURES), None);
    /// assert_eq!(args.len(), 1);
    /// ```
    pub fn next_keyword<T: Copy>(&mut self, table: &[(&str, T)]) -> Option<T> {
        let arg = self.args.first()?.to_str().ok()?;
        let value = table
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(arg))
            .map(|&(_, v)| v)?;
        self.args = self.args.get(1..).unwrap_or_default();
        Some(value)
    }

    /// Takes a counted group, `<#args> <arg>...`, whose count is within `count`; returns the
    /// group's arguments. An absent group (no arguments left) is an empty group.
    pub fn group(
        &mut self,
        count: RangeInclusive<u32>,
        error: &'static CStr,
    ) -> Result<Args<'a>, TargetError> {
        if self.is_empty() && count.contains(&0) {
            return Ok(Args::new(&[]));
        }
        let n = self.next_u32(count, error)? as usize;
        if n > self.args.len() {
            return Err(TargetError::new(EINVAL, error));
        }
        let (group, rest) = self.args.split_at(n);
        self.args = rest;
        Ok(Args::new(group))
    }

    /// Checks that all arguments were consumed.
    pub fn finish(self, error: &'static CStr) -> Result<(), TargetError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(TargetError::new(EINVAL, error))
        }
    }
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a CStr;

    fn next(&mut self) -> Option<&'a CStr> {
        let (first, rest) = self.args.split_first()?;
        self.args = rest;
        Some(first)
    }
}

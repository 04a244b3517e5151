// SPDX-License-Identifier: GPL-2.0

//! Status and message output.

use crate::bindings;
use core::fmt;

/// What `dmsetup` asks a target to report (`status_type_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusType {
    /// `dmsetup status`: the target's state.
    Info,
    /// `dmsetup table`: the table line, which `dmsetup create` must accept back.
    Table,
    /// Measurement for the integrity measurement architecture: `key=value,...;`.
    Ima,
}

impl StatusType {
    pub(crate) fn from_raw(raw: bindings::status_type_t) -> Option<Self> {
        match raw {
            bindings::status_type_t_STATUSTYPE_INFO => Some(Self::Info),
            bindings::status_type_t_STATUSTYPE_TABLE => Some(Self::Table),
            bindings::status_type_t_STATUSTYPE_IMA => Some(Self::Ima),
            _ => None,
        }
    }
}

/// `DM_STATUS_NOFLUSH_FLAG` of `drivers/md/dm.h`, which is private to device-mapper core
/// (bindgen does not see it); its value is part of the target interface.
const DM_STATUS_NOFLUSH_FLAG: u32 = 1 << 0;

/// Flags of a status request.
#[derive(Clone, Copy, Debug)]
pub struct StatusFlags(u32);

impl StatusFlags {
    pub(crate) fn from_raw(raw: u32) -> Self {
        Self(raw)
    }

    /// The user asked not to flush anything (`dmsetup status --noflush`): report without
    /// writing to disk.
    pub fn noflush(self) -> bool {
        self.0 & DM_STATUS_NOFLUSH_FLAG != 0
    }
}

/// Writes a target's status or message output into device-mapper's result buffer.
///
/// It behaves like C's `DMEMIT`: output that does not fit is cut, the buffer always ends with a
/// NUL, and [`StatusWriter::overflowed`] tells that something was cut. Device-mapper then sees a
/// full buffer and user space asks again with a bigger one, so targets just write everything.
///
/// # Examples
///
/// ```
/// use core::fmt::Write;
/// use kernel::device_mapper::StatusWriter;
///
/// let mut buf = [0xffu8; 8];
/// let mut w = StatusWriter::new(&mut buf);
/// write!(w, "{} {}", 12, "ab")?;
/// assert!(!w.overflowed());
/// assert_eq!(w.len(), 5);
/// write!(w, " more")?;
/// assert!(w.overflowed());
/// assert_eq!(&buf, b"12 ab m\0");
///
/// let mut empty: [u8; 0] = [];
/// let mut w = StatusWriter::new(&mut empty);
/// write!(w, "x")?;
/// assert!(w.overflowed());
/// # Ok::<(), core::fmt::Error>(())
/// ```
pub struct StatusWriter<'a> {
    buf: &'a mut [u8],
    /// What has been written, cut or not: like `sz` in `DMEMIT`.
    len: usize,
}

impl<'a> StatusWriter<'a> {
    /// A writer into `buf`, which it fills from the start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        if let Some(first) = buf.first_mut() {
            *first = 0;
        }
        Self { buf, len: 0 }
    }

    /// A writer into `maxlen` bytes at `result`.
    ///
    /// # Safety
    ///
    /// `result` must be valid for writes of `maxlen` bytes for `'a`, and not otherwise accessed
    /// during `'a`.
    pub(crate) unsafe fn from_raw(result: *mut u8, maxlen: u32) -> Self {
        if result.is_null() || maxlen == 0 {
            return Self::new(&mut []);
        }
        // SAFETY: Guaranteed by the safety requirements.
        Self::new(unsafe { core::slice::from_raw_parts_mut(result, maxlen as usize) })
    }

    /// How many bytes were written, including any that were cut.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether output was cut because the buffer is full.
    pub fn overflowed(&self) -> bool {
        self.len >= self.buf.len()
    }
}

impl fmt::Write for StatusWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let start = self.len;
        self.len = self.len.saturating_add(s.len());
        // Room for the text before the final NUL.
        let room = self.buf.len().saturating_sub(1);
        if start >= room {
            return Ok(());
        }
        let n = s.len().min(room - start);
        let end = start + n;
        if let (Some(dst), Some(src)) = (self.buf.get_mut(start..end), s.as_bytes().get(..n)) {
            dst.copy_from_slice(src);
        }
        if let Some(nul) = self.buf.get_mut(end) {
            *nul = 0;
        }
        Ok(())
    }
}

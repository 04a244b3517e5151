// SPDX-License-Identifier: GPL-2.0

//! Little-endian fields of on-disk blocks (superblocks), read and written by byte offset.
//!
//! On-disk structures are packed and little endian; these helpers read and write their
//! fields in a block's bytes without unaligned pointer casts. A field that does not fit in the
//! block reads as 0 and is not written (a block is always larger than the structures here,
//! so that only happens for a wrong offset, which the tests of the structure catch).
//!
//! # Examples
//!
//! ```
//! use kernel::device_mapper::persistent_data::le;
//!
//! let mut block = [0u8; 16];
//! le::put(&mut block, 4, &0x0102_0304u32.to_le_bytes());
//! le::put(&mut block, 8, &7u64.to_le_bytes());
//! assert_eq!(block[4..8], [4, 3, 2, 1]);
//! assert_eq!(le::u32_at(&block, 4), 0x0102_0304);
//! assert_eq!(le::u64_at(&block, 8), 7);
//! assert_eq!(le::u64_at(&block, 12), 0); // Does not fit: 0.
//! assert_eq!(le::bytes_at::<3>(&block, 4), [4, 3, 2]);
//! le::put(&mut block, 14, &[9, 9, 9]); // Does not fit: not written.
//! assert_eq!(block[14..], [0, 0]);
//! ```

/// The `N` bytes at byte `at` of `data` (zeroes if they do not fit), e.g. a space map root.
pub fn bytes_at<const N: usize>(data: &[u8], at: usize) -> [u8; N] {
    at.checked_add(N)
        .and_then(|end| data.get(at..end))
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; N])
}

/// The little-endian `u32` at byte `at` of `data` (0 if it does not fit).
pub fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes_at(data, at))
}

/// The little-endian `u64` at byte `at` of `data` (0 if it does not fit).
pub fn u64_at(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes_at(data, at))
}

/// Writes `bytes` (e.g. `x.to_le_bytes()`) at byte `at` of `data`, if they fit.
pub fn put(data: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = at
        .checked_add(bytes.len())
        .and_then(|end| data.get_mut(at..end))
    {
        dst.copy_from_slice(bytes);
    }
}

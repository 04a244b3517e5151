// SPDX-License-Identifier: GPL-2.0
//! The on-disk format of the clone target's metadata (the C target's format,
//! which ours reads and writes unchanged): 4 KiB blocks, each starting with a
//! checksum the kernel's persistent-data library checks on every read.
//!
//! Owned here: the block size, the checksum of each kind of block, and where
//! the superblock keeps its fields. The metadata tools build on this; the
//! corrupted-metadata selftest uses it to damage a field and still give the
//! block a valid checksum, so that the field's own check is what is tested.

pub mod checksum;
pub mod cli;
pub mod read;
pub mod repair;
pub mod size;
pub mod superblock;
pub mod write;
pub mod xml;

/// Metadata block size: the C target and ours always use 4 KiB.
pub const BLOCK_SIZE: usize = 4096;

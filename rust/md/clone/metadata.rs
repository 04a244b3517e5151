// SPDX-License-Identifier: GPL-2.0

//! The on-disk metadata: the C target's format, version 1.
//!
//! Block 0 of the metadata device is the superblock; the rest is managed by persistent-data
//! (metadata space map, transaction manager) and holds one `dm_bitset` with a bit per region,
//! set when the region is copied. 4096-byte blocks. The superblock (little endian, packed):
//!
//! | offset | field                                                  |
//! |--------|--------------------------------------------------------|
//! | 0      | `csum`: CRC-32C of bytes 4..4096, XOR 257649492 (le32) |
//! | 4      | `flags` (le32, 0)                                      |
//! | 8      | `blocknr`: the superblock's own location (le64)        |
//! | 16     | `uuid` (16 bytes, zero)                                |
//! | 32     | `magic`: 0x8af27f64 (le64)                             |
//! | 40     | `version`: 1 (le32)                                    |
//! | 44     | metadata space map root (128 bytes)                    |
//! | 172    | `region_size` in sectors (le64)                        |
//! | 180    | `target_size` in sectors (le64)                        |
//! | 188    | `bitset_root` (le64)                                   |
//!
//! An all-zero superblock means "not formatted yet". Either module opens what the other wrote.
//!
//! # Locking
//!
//! [`Metadata`] is not shared: the target keeps it behind its metadata mutex, in process
//! context only (persistent-data does I/O and sleeps).

use crate::{geometry::Geometry, regions::Yielder};
use kernel::{
    c_str,
    device_mapper::{
        persistent_data::{
            bitset::DiskBitset,
            block_manager::{bad_checksum, checksum, BlockManager, BlockValidator, Validator},
            le,
            transaction_manager::{TransactionManager, METADATA_MAX_BLOCKS, SPACE_MAP_ROOT_SIZE},
        },
        Device, ResultExt, TargetError,
    },
    prelude::*,
    sync::Arc,
};

/// The metadata block size in bytes.
pub(crate) const BLOCK_SIZE: u32 = 4096;
/// The metadata block size in sectors, as the status shows it.
pub(crate) const BLOCK_SECTORS: u32 = BLOCK_SIZE >> 9;
/// Metadata beyond this many sectors is not used (as in C: the space map's limit).
pub(crate) const MAX_SECTORS: u64 = METADATA_MAX_BLOCKS * (BLOCK_SIZE as u64 >> 9);
/// Blocks the metadata always needs, however few the regions: the superblock, the space map's
/// index, bitmap and reference count blocks, and the bitset's root.
const MIN_BLOCKS: u64 = 8;
const SUPERBLOCK: u64 = 0;
const MAGIC: u64 = 0x8af2_7f64;
const CSUM_XOR: u32 = 257_649_492;
const VERSION: u32 = 1;
/// Blocks persistent-data may hold locked at once (as in C).
const MAX_CONCURRENT_LOCKS: u32 = 5;

const AT_CSUM: usize = 0;
const AT_FLAGS: usize = 4;
const AT_BLOCKNR: usize = 8;
const AT_MAGIC: usize = 32;
const AT_VERSION: usize = 40;
const AT_SM_ROOT: usize = 44;
const AT_REGION_SIZE: usize = 172;
const AT_TARGET_SIZE: usize = 180;
const AT_BITSET_ROOT: usize = 188;

fn superblock_csum(d: &[u8]) -> u32 {
    checksum(d.get(AT_FLAGS..).unwrap_or_default(), CSUM_XOR)
}

/// Checks and seals the superblock as persistent-data reads and writes it.
struct Superblock;

impl Validator for Superblock {
    fn prepare_for_write(data: &mut [u8], location: u64) {
        le::put(data, AT_BLOCKNR, &location.to_le_bytes());
        let csum = superblock_csum(data);
        le::put(data, AT_CSUM, &csum.to_le_bytes());
    }

    fn check(data: &[u8], location: u64) -> Result {
        if le::u64_at(data, AT_BLOCKNR) != location {
            pr_err!(
                "superblock check failed: blocknr {}, expected {}\n",
                le::u64_at(data, AT_BLOCKNR),
                location
            );
            return Err(ENOTBLK);
        }
        if le::u64_at(data, AT_MAGIC) != MAGIC {
            pr_err!(
                "superblock check failed: magic {:#x}, expected {:#x}\n",
                le::u64_at(data, AT_MAGIC),
                MAGIC
            );
            return Err(bad_checksum());
        }
        let csum = superblock_csum(data);
        if le::u32_at(data, AT_CSUM) != csum {
            pr_err!(
                "superblock check failed: checksum {:#x}, expected {:#x}\n",
                le::u32_at(data, AT_CSUM),
                csum
            );
            return Err(bad_checksum());
        }
        Ok(())
    }
}

static SUPERBLOCK_VALIDATOR: BlockValidator =
    BlockValidator::new::<Superblock>(c_str!("clone superblock"));

/// The open metadata: the transaction manager and the bitset of copied regions.
///
/// # Invariants
///
/// `geometry` is what the superblock and the bitset describe (the bitset has
/// `geometry.nr_regions()` bits); every commit writes it. `grow_to`, set only when opened
/// for a longer table and until [`Metadata::grow`], is that table's geometry: longer, with
/// the same region size.
pub(crate) struct Metadata {
    tm: TransactionManager,
    bitset: DiskBitset,
    geometry: Geometry,
    grow_to: Option<Geometry>,
}

/// Bits of the bitset one array block holds: 509 words of 64 bits (4096 bytes less a
/// 24-byte header, 8 bytes a word).
const BITS_PER_ARRAY_BLOCK: u64 = (BLOCK_SIZE as u64 - 24) / 8 * 64;
/// Entries of a full btree node with 8-byte values (the kernel's `calc_max_entries`).
const BTREE_NODE_ENTRIES: u64 = 252;
/// Blocks one bitmap block of the metadata space map covers: 2 bits each, in a 4096-byte
/// block less a 16-byte header.
const ENTRIES_PER_BITMAP: u64 = (BLOCK_SIZE as u64 - 16) * 4;

impl Metadata {
    /// Opens the metadata on `dev`, formatting it if its superblock is all zeroes (and
    /// `may_format`). Checks that it describes `geometry`.
    pub(crate) fn open(
        dev: &Arc<Device>,
        geometry: Geometry,
        may_format: bool,
    ) -> Result<Self, TargetError> {
        if dev.sectors() < MIN_BLOCKS * u64::from(BLOCK_SECTORS) {
            return Err(TargetError::invalid(c_str!("Metadata device too small")));
        }
        let bm = BlockManager::new(dev, BLOCK_SIZE, MAX_CONCURRENT_LOCKS)
            .ti_error(c_str!("Error creating the metadata block manager"))?;
        let blank = {
            let sb = bm
                .read_lock_unchecked(SUPERBLOCK)
                .ti_error(c_str!("Error reading the metadata superblock"))?;
            sb.data().iter().all(|&b| b == 0)
        };
        if blank && may_format {
            return Self::format(bm, geometry);
        }
        let (version, sm_root, region_size, target_size, root) = {
            let sb = bm.read_lock(SUPERBLOCK, &SUPERBLOCK_VALIDATOR).ti_error(c_str!(
                "Metadata superblock is not a clone's or is damaged (bad location, magic or checksum)"
            ))?;
            let d = sb.data();
            let sm_root: [u8; SPACE_MAP_ROOT_SIZE] = le::bytes_at(d, AT_SM_ROOT);
            (
                le::u32_at(d, AT_VERSION),
                sm_root,
                le::u64_at(d, AT_REGION_SIZE),
                le::u64_at(d, AT_TARGET_SIZE),
                le::u64_at(d, AT_BITSET_ROOT),
            )
        };
        if version != VERSION {
            pr_err!(
                "clone metadata version {} found, but only version {} is supported\n",
                version,
                VERSION
            );
            return Err(TargetError::invalid(c_str!("Unsupported metadata version")));
        }
        let same_regions = region_size == geometry.region_size();
        if !same_regions || target_size > geometry.target_size() {
            pr_err!(
                "metadata has region size {} and target size {}; the table says {} and {}{}\n",
                region_size,
                target_size,
                geometry.region_size(),
                geometry.target_size(),
                if same_regions {
                    " (a clone can grow, not shrink)"
                } else {
                    ""
                }
            );
            return Err(TargetError::invalid(if same_regions {
                c_str!("Target size smaller than the one in metadata: a clone cannot shrink")
            } else {
                c_str!("Region and/or target size don't match the ones in metadata")
            }));
        }
        // A longer table: the clone grows at its first resume (see `grow`).
        let grow_to = (target_size < geometry.target_size()).then_some(geometry);
        let geometry = Geometry::new(target_size, region_size)
            .map_err(|_| TargetError::invalid(c_str!("Invalid target size in metadata")))?;
        let tm = TransactionManager::open(bm, SUPERBLOCK, &sm_root)
            .ti_error(c_str!("Error opening the metadata space map"))?;
        let bitset = DiskBitset::open(&tm, root, geometry.nr_regions())?;
        let md = Self {
            tm,
            bitset,
            geometry,
            grow_to,
        };
        md.check_room_to_grow()?;
        Ok(md)
    }

    /// The geometry the metadata describes before a pending grow (`None`: no grow pending).
    pub(crate) fn grow_pending(&self) -> Option<Geometry> {
        self.grow_to.map(|_| self.geometry)
    }

    /// Refuses a grow that the metadata device has no room for: the new array blocks, the
    /// btree leaves that point at them, and a few blocks for the shadowed path (a bound, not
    /// an exact count; persistent-data would fail the grow's commit with `ENOSPC`).
    fn check_room_to_grow(&self) -> Result<(), TargetError> {
        let (Some(new), old) = (self.grow_to, self.geometry) else {
            return Ok(());
        };
        let blocks = |g: Geometry| u64::from(g.nr_regions()).div_ceil(BITS_PER_ARRAY_BLOCK);
        // At most 2^31 regions: a few tens of thousands of blocks, no overflow.
        let new_arrays = blocks(new).saturating_sub(blocks(old)) + 1;
        let need = new_arrays + blocks(new).div_ceil(BTREE_NODE_ENTRIES / 2) + 8;
        let free = self
            .tm
            .nr_free()
            .ti_error(c_str!("Error reading the metadata space map"))?;
        if free < need {
            pr_err!(
                "growing from {} to {} sectors needs about {} free metadata blocks, the metadata \
                 device has {}: restore the metadata onto a larger device (clone_dump, then \
                 clone_restore; clone_metadata_size gives the size)\n",
                old.target_size(),
                new.target_size(),
                need,
                free
            );
            return Err(TargetError::new(
                ENOSPC,
                c_str!("Metadata device too small for the new size"),
            ));
        }
        Ok(())
    }

    /// Grows the metadata to the table's geometry, if a grow is pending: the bitset gets the
    /// new regions (uncopied) and the superblock the new target size, in one commit, so a
    /// crash leaves the old size or the new one, never a mix. On failure the metadata is
    /// dropped (its bitset may be longer than the superblock says): open it again.
    pub(crate) fn grow(mut self) -> Result<Self> {
        let Some(new) = self.grow_to.take() else {
            return Ok(self);
        };
        self.bitset.flush(&mut self.tm)?;
        self.bitset.resize(&mut self.tm, new.nr_regions(), false)?;
        self.geometry = new;
        self.commit()?;
        Ok(self)
    }

    fn format(bm: BlockManager, geometry: Geometry) -> Result<Self, TargetError> {
        let too_small = |e: Error| {
            TargetError::new(
                e,
                if e == ENOSPC {
                    c_str!("Metadata device too small for this many regions")
                } else {
                    c_str!("Error formatting the metadata")
                },
            )
        };
        let mut tm = TransactionManager::create(bm, SUPERBLOCK).map_err(too_small)?;
        let bitset = DiskBitset::create(&mut tm, geometry.nr_regions()).map_err(too_small)?;
        let mut md = Self {
            tm,
            bitset,
            geometry,
            grow_to: None,
        };
        md.commit().map_err(too_small)?;
        Ok(md)
    }

    /// Calls `f(w, word)` for every word of the bitset of copied regions (bit `i` of word
    /// `w`: region `64 * w + i`), yielding the CPU now and then (up to 2^25 words).
    ///
    /// # Context
    ///
    /// Process context; sleeps.
    pub(crate) fn for_each_copied_word(&mut self, mut f: impl FnMut(u32, u64)) -> Result {
        let mut yielder = Yielder::default();
        self.bitset.for_each_word(&mut self.tm, |w, bits| {
            yielder.word();
            f(w, bits);
            Ok(())
        })
    }

    /// Whether the metadata records region `r` as copied (in the current transaction).
    pub(crate) fn is_copied(&mut self, r: u32) -> Result<bool> {
        self.bitset.test(&mut self.tm, r)
    }

    /// Word `w` of the bitset of copied regions (in the current transaction): bit `i` is
    /// region `64 * w + i`.
    pub(crate) fn copied_word(&mut self, w: u32) -> Result<u64> {
        self.bitset.word(&mut self.tm, w)
    }

    /// Records the regions of word `w` as copied in the current transaction: bit `i` of
    /// `bits` is region `64 * w + i`, and the word is written whole (it must hold every
    /// region recorded already, as the in-core map does).
    pub(crate) fn set_copied_word(&mut self, w: u32, bits: u64) -> Result {
        self.bitset.set_word(&mut self.tm, w, bits)
    }

    /// The regions the bitset has (the superblock's, or the pending grow's once grown).
    pub(crate) fn nr_regions(&self) -> u32 {
        self.geometry.nr_regions()
    }

    /// Rewrites the whole bitset of copied regions in the current transaction: word `w`
    /// becomes `word(w)`, which must hold every region recorded already (as the in-core map
    /// does). An array block (509 words) at a time ([`DiskBitset::rewrite`]) instead of an
    /// array update per word. On failure the transaction is in an unknown state: abort it.
    ///
    /// # Context
    ///
    /// Process context; sleeps.
    pub(crate) fn rewrite_copied(&mut self, word: impl Fn(u32) -> u64) -> Result {
        self.bitset.rewrite(&mut self.tm, word)
    }

    /// Whether the metadata device has room to rewrite the bitset in the current transaction
    /// ([`Metadata::rewrite_copied`]). A rewrite makes a second copy of every array block
    /// and btree node (the old ones stay allocated until the commit), where writing the
    /// changed words one by one copies only the blocks they fall in. A metadata device
    /// smaller than clone_metadata_size's worst case (the target takes one) may have room for
    /// the one and not the other: the committer then writes the words one by one (slower,
    /// the same result) rather than fail the commit with `ENOSPC` and go read-only. A bound,
    /// not an exact count, as [`Metadata::check_room_to_grow`]'s: the new array blocks, their
    /// btree (nodes at least half full) and the old btree's shadowed path, a bitmap block per
    /// [`ENTRIES_PER_BITMAP`] blocks of the device, and 16. `clone_metadata_size` suggests a
    /// device with that room (tools/clone-metadata/src/size.rs, `rewrite_free_blocks`, restates
    /// this rule: keep the two in step). False if the space map cannot be read (the word path
    /// then meets the error).
    ///
    /// # Context
    ///
    /// Process context (the metadata's owner).
    pub(crate) fn room_to_rewrite(&self) -> bool {
        let (Ok(total), Ok(free)) = (self.tm.nr_blocks(), self.tm.nr_free()) else {
            return false;
        };
        // At most 2^31 regions and 2^32 blocks: no overflow.
        let arrays = u64::from(self.geometry.nr_regions()).div_ceil(BITS_PER_ARRAY_BLOCK);
        let btree = arrays.div_ceil(BTREE_NODE_ENTRIES / 2) + 4;
        let need = arrays + 2 * btree + total.div_ceil(ENTRIES_PER_BITMAP) + 16;
        free >= need
    }

    /// Commits the current transaction: the bitset's cached word, every changed block, then
    /// the superblock.
    pub(crate) fn commit(&mut self) -> Result {
        self.bitset.flush(&mut self.tm)?;
        let g = self.geometry;
        let root = self.bitset.root();
        self.tm
            .commit(SUPERBLOCK, &SUPERBLOCK_VALIDATOR, |d, sm_root| {
                le::put(d, AT_MAGIC, &MAGIC.to_le_bytes());
                le::put(d, AT_VERSION, &VERSION.to_le_bytes());
                le::put(d, AT_SM_ROOT, sm_root);
                le::put(d, AT_REGION_SIZE, &g.region_size().to_le_bytes());
                le::put(d, AT_TARGET_SIZE, &g.target_size().to_le_bytes());
                le::put(d, AT_BITSET_ROOT, &root.to_le_bytes());
            })
    }

    /// Used and total metadata blocks.
    pub(crate) fn usage(&self) -> Result<(u64, u64)> {
        let total = self.tm.nr_blocks()?;
        let free = self.tm.nr_free()?;
        Ok((total.saturating_sub(free), total))
    }
}

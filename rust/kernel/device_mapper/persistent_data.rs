// SPDX-License-Identifier: GPL-2.0

//! persistent-data: transactional on-disk metadata for device-mapper targets.
//!
//! C headers: [`drivers/md/persistent-data/`](srctree/drivers/md/persistent-data/)
//!
//! The library's headers are private to `drivers/md/persistent-data/`; bindgen reaches them
//! through relative includes in `rust/bindings/bindings_helper.h`, and their static inline
//! functions through `rust/helpers/persistent_data.c`. The library must be built in
//! (`CONFIG_DM_PERSISTENT_DATA_RUST=y` selects it), as the kernel crate is.
//!
//! Layers, as in C: [`block_manager`] (blocks on a device, locks, validators, checksums) →
//! [`transaction_manager`] (copy-on-write transactions with the metadata space map) →
//! [`bitset`] (on-disk bitsets); [`le`] reads and writes the fields of superblocks.
//!
//! Corrupt metadata becomes an error, not an oops, where the abstractions can tell: validators
//! reject bad blocks, a space map root is bounds-checked before C trusts it, block sizes and
//! superblock locations are checked, indices are checked against the bitset's length. What they
//! cannot tell is a superblock that checks but records a wrong bitset length: dm-array's resize
//! then `BUG_ON`s, in C as here.

pub mod bitset;
pub mod block_manager;
pub mod le;
pub mod transaction_manager;

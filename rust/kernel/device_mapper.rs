// SPDX-License-Identifier: GPL-2.0

//! Device-mapper targets.
//!
//! C header: [`include/linux/device-mapper.h`](srctree/include/linux/device-mapper.h)
//!
//! A target implements [`TargetOperations`], and its module declares it with
//! [`module_dm_target!`](crate::module_dm_target), which keeps the target type's
//! [`Registration`] for as long as the module is loaded. Device-mapper core calls the
//! target's constructor for each table line that names it; the constructor parses its
//! [`Args`], opens its [`Device`]s and returns the
//! target's private data, which every other callback borrows and which is dropped by the
//! destructor. `map` runs on many CPUs at once, so it only ever gets shared access.
//!
//! A target that completes every bio at once (its module would declare it with
//! `module_dm_target!`):
//!
//! ```
//! use kernel::{
//!     block::bio::{Bio, Status},
//!     c_str,
//!     device_mapper::{Args, MapResult, Target, TargetError, TargetOperations},
//!     prelude::*,
//! };
//!
//! struct Zero;
//!
//! #[vtable]
//! impl TargetOperations for Zero {
//!     type Data = KBox<Zero>;
//!     type PerBio = ();
//!
//!     fn ctr(_target: &mut Target, args: Args<'_>) -> Result<KBox<Zero>, TargetError> {
//!         args.finish(c_str!("No arguments expected"))?;
//!         Ok(KBox::new(Zero, GFP_KERNEL)?)
//!     }
//!
//!     fn map(_this: &Zero, _target: &Target, bio: Bio) -> MapResult {
//!         bio.end(Status::OK);
//!         MapResult::Submitted
//!     }
//! }
//! ```

mod args;
mod device;
pub mod kcopyd;
pub(crate) mod per_bio;
#[cfg(CONFIG_DM_PERSISTENT_DATA = "y")]
pub mod persistent_data;
mod status;
mod target;

pub use args::Args;
pub use device::{Device, DeviceVisitor, Mode, Visited};
pub use status::{StatusFlags, StatusType, StatusWriter};
pub use target::{
    EndIoResult, EventHandle, ForeignBorrowed, MapResult, Registration, ResultExt, Target,
    TargetError, TargetOperations,
};

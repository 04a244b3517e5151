// SPDX-License-Identifier: GPL-2.0

//! `rlinear`: dm-linear in Rust, the smallest end-to-end user of the device-mapper
//! abstractions and the baseline for measuring their cost.
//!
//! Table: `<start> <length> rlinear <device> <offset>`: maps the target's sectors to `<device>`
//! from sector `<offset>` on. Status and table output are those of dm-linear.

use core::fmt::Write;
use kernel::{
    block::bio::Bio,
    c_str,
    device_mapper::{
        Args, Device, DeviceVisitor, MapResult, Mode, StatusFlags, StatusType, StatusWriter,
        Target, TargetError, TargetOperations, Visited,
    },
    module_dm_target,
    prelude::*,
};

module_dm_target! {
    type: RLinear,
    target: "rlinear",
    version: [1, 0, 0],
    name: "dm_rlinear",
    description: "device-mapper linear target in Rust",
    license: "GPL",
}

/// One rlinear target: where its sectors go.
struct RLinear {
    dev: Device,
    /// The device sector the target's first sector maps to.
    start: u64,
}

#[vtable]
impl TargetOperations for RLinear {
    type Data = KBox<RLinear>;
    type PerBio = ();

    fn ctr(target: &mut Target, mut args: Args<'_>) -> Result<KBox<RLinear>, TargetError> {
        if args.len() != 2 {
            return Err(TargetError::invalid(c_str!("Invalid argument count")));
        }
        let path = args.next_arg(c_str!("Invalid argument count"))?;
        let start = args.next_u64(0..=u64::MAX, c_str!("Invalid device sector"))?;
        let dev = target
            .get_device(path, Mode::Table)
            .map_err(|e| TargetError::new(e, c_str!("Device lookup failed")))?;
        let fits = start
            .checked_add(target.len())
            .is_some_and(|end| end <= dev.sectors());
        if !fits {
            return Err(TargetError::invalid(c_str!(
                "Device too small for the offset and length"
            )));
        }
        target.set_num_flush_bios(1);
        target.set_num_discard_bios(1);
        target.set_num_secure_erase_bios(1);
        target.set_num_write_zeroes_bios(1);
        Ok(KBox::new(RLinear { dev, start }, GFP_KERNEL)?)
    }

    fn map(this: &RLinear, target: &Target, mut bio: Bio) -> MapResult {
        this.dev.set_bio_device(&mut bio);
        // Empty flushes carry no sector.
        if bio.sectors() != 0 {
            // `ctr` checked that `start + len` fits the device, and the offset is below `len`.
            bio.set_sector(this.start.saturating_add(target.offset(&bio)));
        }
        MapResult::Remapped(bio)
    }

    fn status(
        this: &RLinear,
        _target: &Target,
        kind: StatusType,
        _flags: StatusFlags,
        out: &mut StatusWriter<'_>,
    ) {
        // The writer cuts what does not fit, and device-mapper then asks again with more room.
        let _ = match kind {
            StatusType::Info => Ok(()),
            StatusType::Table => write!(out, "{} {}", this.dev.name(), this.start),
            StatusType::Ima => write!(
                out,
                "target_name=rlinear,target_version=1.0.0,device_name={},start={};",
                this.dev.name(),
                this.start
            ),
        };
    }

    fn iterate_devices(
        this: &RLinear,
        target: &Target,
        visitor: &mut DeviceVisitor<'_>,
    ) -> Visited {
        visitor.visit(&this.dev, this.start, target.len())
    }
}

// SPDX-License-Identifier: GPL-2.0
//! `clonectl create`: check the devices, size the metadata, compose the table
//! and create the clone. Every refusal names the device and says what to do.

use crate::devices::{block_dev, BlockDev};
use crate::dm::{self, why, Dm};
use crate::error::{fail, Fail, Res};
use crate::table::{Options, Spec};
use devicemapper::{DevId, DmOptions};
use std::path::Path;

/// What the user asked `create` for.
pub struct Request<'a> {
    pub name: &'a str,
    pub source: &'a Path,
    pub dest: &'a Path,
    pub metadata: &'a Path,
    pub options: Options,
    /// Create even if the source is held by another device.
    pub force: bool,
    pub dry_run: bool,
}

/// Refuses devices in use: the destination and the metadata are overwritten by
/// the clone, and the source must not change while it is copied.
fn check_users(src: &BlockDev, dst: &BlockDev, md: &BlockDev, force: bool) -> Res<()> {
    for (d, role) in [(dst, "destination"), (md, "metadata device")] {
        if let Some(who) = d.users() {
            return fail(format!(
                "{role} {} is in use ({who}): the clone overwrites it; unmount it or remove what holds it first",
                d.path.display()
            ));
        }
    }
    if let Some(who) = src.users() {
        if who.contains("mounted") {
            return fail(format!(
                "source {} is in use ({who}): the kernel cannot open a mounted source for the clone, and its content must not change while it is copied; unmount it first",
                src.path.display()
            ));
        }
        if !force {
            return fail(format!(
                "source {} is in use ({who}): its content must not change while it is copied; stop what uses it, or give --force if that only reads it",
                src.path.display()
            ));
        }
        eprintln!(
            "clonectl: warning: source {} is in use ({who}); going on (--force)",
            src.path.display()
        );
    }
    Ok(())
}

/// Creates the clone `r.name` (or prints its table with `dry_run`).
pub fn create(r: &Request) -> Res<()> {
    if r.options.copy_rate_limit.is_some() {
        if let Some(why) = dm::loaded().refuses(
            "--copy-rate-limit is dm_clone_rs's",
            "has no rate limit (or leave --copy-rate-limit out)",
        ) {
            return fail(why);
        }
    }
    let src = block_dev(r.source, "source")?;
    let dst = block_dev(r.dest, "destination")?;
    let md = block_dev(r.metadata, "metadata device")?;
    for (a, b) in [(&src, &dst), (&src, &md), (&dst, &md)] {
        if a.devno == b.devno {
            return fail(format!(
                "{} and {} are the same device: the source, destination and metadata must differ",
                a.path.display(),
                b.path.display()
            ));
        }
    }
    let len = src.sectors;
    if dst.sectors < len {
        return fail(format!(
            "destination {} has {} sectors, fewer than the source {} ({len}): give a destination at least as large",
            dst.path.display(),
            dst.sectors,
            src.path.display()
        ));
    }
    let region = r.options.region_sectors;
    for d in [&src, &dst] {
        if (region * 512) % d.logical_block != 0 {
            return fail(format!(
                "the region size ({region} sectors) is not a multiple of {}'s logical block size ({} bytes)",
                d.path.display(),
                d.logical_block
            ));
        }
    }
    let sizes = clone_metadata::size::sizes(len, region)
        .map_err(|e| Fail(format!("{}: {e}", src.path.display())))?;
    let have = md.sectors * 512;
    if have < sizes.worst_blocks * 4096 {
        return fail(format!(
            "metadata device {} has {} KiB; a clone of {} in {}-sector regions needs at least {} KiB (suggested: {} KiB, see clone_metadata_size)",
            md.path.display(),
            have / 1024,
            src.path.display(),
            region,
            sizes.worst_blocks * 4,
            sizes.suggested_bytes.div_ceil(1024)
        ));
    }
    let params = Spec {
        metadata: &md.devno,
        dest: &dst.devno,
        source: &src.devno,
        options: &r.options,
    }
    .params();
    if r.dry_run {
        outln!("0 {len} clone {params}");
        return Ok(());
    }
    check_users(&src, &dst, &md, r.force)?;
    crate::signature::check_metadata(&md.path, r.force)?;
    crate::signature::check_destination(&dst.path, r.force)?;
    let dm = Dm::open()?;
    let name = r.name;
    let n = dm::name(name)?;
    let id = DevId::Name(n);
    dm.0.device_create(n, None, DmOptions::default())
        .map_err(|e| Fail(format!("cannot create {name}: {}", why(&e))))?;
    let loaded =
        dm.0.table_load(
            &id,
            &[(0, len, "clone".into(), params.clone())],
            DmOptions::default(),
        )
        .and_then(|_| dm.0.device_suspend(&id, DmOptions::default()));
    if let Err(e) = loaded {
        let _ = dm.0.device_remove(&id, DmOptions::default());
        return fail(format!(
            "the kernel refused the clone table for {name} ({}); its reason is in the kernel log (dmesg). Table: 0 {len} clone {params}",
            why(&e)
        ));
    }
    outln!(
        "{name}: created, {len} sectors in {} regions of {region} sectors",
        sizes.regions
    );
    Ok(())
}

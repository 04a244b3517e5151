// SPDX-License-Identifier: GPL-2.0
//! Device-mapper, as clonectl sees it: the control device, a clone's table and
//! status lines, the list of clones, messages. All through the `devicemapper`
//! crate's ioctls on /dev/mapper/control; never by running dmsetup.

use crate::error::{fail, Fail, Res};
use crate::status::{self, Status};
use devicemapper::{errors, DevId, DmError, DmFlags, DmName, DmOptions, DM};

/// A device-mapper error in a few words: the errno of a failed ioctl (the crate's
/// own text dumps both ioctl headers), else the crate's text.
pub fn why(e: &DmError) -> String {
    match e {
        DmError::Core(errors::Error::Ioctl(_, _, _, errno)) => errno.to_string(),
        e => e.to_string(),
    }
}

/// Whether `e` is a failed ioctl with this errno.
fn is_errno(e: &DmError, errno: i32) -> bool {
    matches!(e, DmError::Core(errors::Error::Ioctl(_, _, _, n)) if **n as i32 == errno)
}

/// An open /dev/mapper/control.
pub struct Dm(pub DM);

/// A clone as the kernel reports it.
pub struct CloneState {
    /// Its length in sectors.
    pub sectors: u64,
    /// Its table line's parameters (`<metadata> <destination> <source> <region> ...`).
    pub params: String,
    /// Its parsed status line.
    pub status: Status,
}

/// `name` as a device-mapper name, or why it cannot be one.
pub fn name(name: &str) -> Res<&DmName> {
    DmName::new(name).map_err(|e| Fail(format!("'{name}' is not a device-mapper name: {e}")))
}

impl Dm {
    /// Opens /dev/mapper/control.
    pub fn open() -> Res<Dm> {
        DM::new().map(Dm).map_err(|e| {
            Fail(format!(
                "cannot open /dev/mapper/control: {} (run as root, with the dm_mod module loaded)",
                why(&e)
            ))
        })
    }

    /// The clone `name`: its table and status. Fails if it is not a clone.
    pub fn state(&self, name: &str) -> Res<CloneState> {
        let id = DevId::Name(self::name(name)?);
        let (_, table) = self
            .0
            .table_status(
                &id,
                DmOptions::default().set_flags(DmFlags::DM_STATUS_TABLE),
            )
            .map_err(|e| {
                if is_errno(&e, libc::ENXIO) {
                    Fail(format!(
                        "no device-mapper device is named {name} (see clonectl list)"
                    ))
                } else {
                    Fail(format!("{name}: {}", why(&e)))
                }
            })?;
        let Some((_, sectors, _, params)) = table.into_iter().find(|t| t.2 == "clone") else {
            return fail(format!(
                "{name} is not a clone (its table has no clone target)"
            ));
        };
        let (_, st) = self
            .0
            .table_status(&id, DmOptions::default())
            .map_err(|e| Fail(format!("{name}: {}", why(&e))))?;
        let line = st
            .into_iter()
            .find(|t| t.2 == "clone")
            .map(|t| t.3)
            .unwrap_or_default();
        let status = status::parse(&line).map_err(|e| Fail(format!("{name}: {e}")))?;
        Ok(CloneState {
            sectors,
            params,
            status,
        })
    }

    /// The names of the device-mapper devices whose live table holds a clone.
    pub fn clone_names(&self) -> Res<Vec<String>> {
        let devs = self
            .0
            .list_devices()
            .map_err(|e| Fail(format!("cannot list device-mapper devices: {}", why(&e))))?;
        let mut out = Vec::new();
        for (n, _, _) in devs {
            let id = DevId::Name(&n);
            if let Ok((_, t)) = self.0.table_status(
                &id,
                DmOptions::default().set_flags(DmFlags::DM_STATUS_TABLE),
            ) {
                if t.iter().any(|t| t.2 == "clone") {
                    out.push(n.to_string());
                }
            }
        }
        Ok(out)
    }

    /// Sends `msg` to the clone `name` (checked to be a clone first).
    pub fn message(&self, name: &str, msg: &str) -> Res<()> {
        self.state(name)?;
        let id = DevId::Name(self::name(name)?);
        self.0
            .target_msg(&id, Some(0), msg)
            .map_err(|e| Fail(format!("{name}: the target refused '{msg}': {}", why(&e))))?;
        Ok(())
    }
}

/// Whether the loaded `clone` target is ours (which takes `auto` and our own options).
pub fn ours_loaded() -> bool {
    std::path::Path::new("/sys/module/dm_clone_rs").exists()
}

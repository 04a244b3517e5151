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

    /// The clone `name`: its table and status. Fails if it is not a clone, or its status
    /// line does not parse (`Fail`: its metadata failed).
    pub fn state(&self, name: &str) -> Res<CloneState> {
        let (sectors, params, line) = self.raw_state(name)?;
        let status = status::parse(&line).map_err(|e| Fail(format!("{name}: {e}")))?;
        Ok(CloneState {
            sectors,
            params,
            status,
        })
    }

    /// The clone `name`'s length, table parameters and status line, unparsed. Fails if
    /// it is not a clone.
    pub fn raw_state(&self, name: &str) -> Res<(u64, String, String)> {
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
        Ok((sectors, params, line))
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

/// Which module provides the `clone` target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// dm_clone_rs (which takes `auto`, copy_rate_limit, and grows clones).
    Ours,
    /// The C dm-clone.
    C,
    /// Neither is loaded.
    Neither,
}

impl Loaded {
    /// From whether each module is loaded (ours wins: it is the one clonectl is for).
    pub fn of(ours: bool, c: bool) -> Loaded {
        match (ours, c) {
            (true, _) => Loaded::Ours,
            (false, true) => Loaded::C,
            (false, false) => Loaded::Neither,
        }
    }

    /// Why `what` (e.g. "--copy-rate-limit is dm_clone_rs's") cannot be done with this
    /// module; `None` with ours. `lacks` says what the C target lacks ("has no rate limit").
    pub fn refuses(self, what: &str, lacks: &str) -> Option<String> {
        match self {
            Loaded::Ours => None,
            Loaded::C => Some(format!(
                "{what}: the loaded clone target is C's (dm_clone), which {lacks}; load dm_clone_rs"
            )),
            Loaded::Neither => Some(format!(
                "{what}: no clone target is loaded (neither dm_clone_rs nor dm_clone); load dm_clone_rs (modprobe dm_clone_rs)"
            )),
        }
    }
}

/// Which module provides the `clone` target now.
pub fn loaded() -> Loaded {
    let m = |n: &str| std::path::Path::new("/sys/module").join(n).exists();
    Loaded::of(m("dm_clone_rs"), m("dm_clone"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_loaded_module_or_none() {
        assert_eq!(Loaded::of(true, true), Loaded::Ours);
        assert_eq!(Loaded::of(false, true), Loaded::C);
        assert_eq!(Loaded::of(false, false), Loaded::Neither);
        assert_eq!(Loaded::Ours.refuses("grow", "cannot grow a clone"), None);
        assert_eq!(
            Loaded::C.refuses("grow", "cannot grow a clone").unwrap(),
            "grow: the loaded clone target is C's (dm_clone), which cannot grow a clone; load dm_clone_rs"
        );
        let none = Loaded::Neither
            .refuses("grow", "cannot grow a clone")
            .unwrap();
        assert!(
            none.contains("no clone target is loaded") && !none.contains("C's"),
            "{none}"
        );
    }
}

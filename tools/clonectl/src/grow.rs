// SPDX-License-Identifier: GPL-2.0
//! `clonectl grow`: reload a clone with a longer table once its source and
//! destination have grown (dm_clone_rs grows online; the C target cannot). The
//! devices are checked first; if the kernel refuses the grow, the old table is
//! put back and the clone goes on as it was.

use crate::devices::sysfs_num;
use crate::dm::{self, why, Dm};
use crate::error::{fail, Fail, Res};
use devicemapper::{DevId, DmFlags, DmOptions};

/// The size in sectors of the block device `devno` (`<major>:<minor>`).
fn sectors_of(devno: &str) -> Res<u64> {
    sysfs_num(devno, "size").ok_or_else(|| Fail(format!("cannot read the size of device {devno}")))
}

/// The length to grow to: `want`, or the source's size; checked against the clone's
/// length and both devices.
pub fn new_length(now: u64, want: Option<u64>, source: u64, dest: u64) -> Result<u64, String> {
    let len = want.unwrap_or(source);
    if len < now {
        return Err(format!(
            "{len} sectors is less than the clone's {now}: a clone cannot shrink"
        ));
    }
    if len == now {
        return Err(format!(
            "the clone already has {now} sectors{}",
            if want.is_none() {
                " (as many as its source: grow the source first, or give --size)"
            } else {
                ""
            }
        ));
    }
    for (what, have) in [("source", source), ("destination", dest)] {
        if have < len {
            return Err(format!(
                "the {what} has {have} sectors, fewer than {len}: grow it first"
            ));
        }
    }
    Ok(len)
}

/// Grows the clone `name` to `want` sectors (default: its source's size).
pub fn grow(name: &str, want: Option<u64>) -> Res<()> {
    if let Some(why) = dm::loaded().refuses("clonectl grow", "cannot grow a clone") {
        return fail(why);
    }
    let dm = Dm::open()?;
    let c = dm.state(name)?;
    let (_, dest, source) =
        crate::status::table_devices(&c.params).map_err(|e| Fail(format!("{name}: {e}")))?;
    let len = new_length(c.sectors, want, sectors_of(&source)?, sectors_of(&dest)?)
        .map_err(|e| Fail(format!("{name}: {e}")))?;
    let id = DevId::Name(dm::name(name)?);
    dm.0.device_suspend(&id, DmOptions::default().set_flags(DmFlags::DM_SUSPEND))
        .map_err(|e| Fail(format!("{name}: cannot suspend: {}", why(&e))))?;
    let load = |len: u64| {
        dm.0.table_load(
            &id,
            &[(0, len, "clone".into(), c.params.clone())],
            DmOptions::default(),
        )
    };
    let grown = load(len).and_then(|_| dm.0.device_suspend(&id, DmOptions::default()));
    if let Err(e) = grown {
        // The old table again (a refused load left it live; a failed resume did not).
        let back = load(c.sectors).and_then(|_| dm.0.device_suspend(&id, DmOptions::default()));
        return fail(format!(
            "{name}: the kernel refused to grow it to {len} sectors ({}; the reason is in the kernel log, dmesg){}",
            why(&e),
            match back {
                Ok(_) => "; the clone goes on at its old size".to_string(),
                Err(b) => format!(
                    "; putting back the old table failed too ({}): the device is suspended, reload it by hand",
                    why(&b)
                ),
            }
        ));
    }
    let s = dm.state(name)?.status;
    outln!(
        "{name}: grown from {} to {len} sectors: {}/{} regions copied",
        c.sectors,
        s.copied,
        s.regions
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_length_is_checked_against_the_clone_and_its_devices() {
        assert_eq!(new_length(100, None, 200, 300), Ok(200));
        assert_eq!(new_length(100, Some(150), 200, 300), Ok(150));
        assert!(new_length(100, Some(50), 200, 300)
            .unwrap_err()
            .contains("cannot shrink"));
        assert!(new_length(100, None, 100, 300)
            .unwrap_err()
            .contains("grow the source first"));
        assert!(new_length(100, Some(100), 200, 300)
            .unwrap_err()
            .contains("already has 100"));
        assert!(new_length(100, Some(250), 200, 300)
            .unwrap_err()
            .contains("the source has 200 sectors"));
        assert!(new_length(100, None, 200, 150)
            .unwrap_err()
            .contains("the destination has 150 sectors"));
    }
}

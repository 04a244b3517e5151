// SPDX-License-Identifier: GPL-2.0
//! `clonectl finish`: once every region is copied, the clone's table is
//! replaced by a linear mapping of its destination. The device stays (same
//! name and number); I/O sent meanwhile waits in the suspend and none fails.

use crate::dm::{self, why, Dm};
use crate::error::{fail, Fail, Res};
use crate::progress::{follow, Show};
use crate::status;
use devicemapper::{DevId, DmFlags, DmOptions};

/// Waits for the copy (showing `show`), then swaps in the linear table.
/// `Ok(false)`: the timeout passed first, nothing was changed.
pub fn finish(name: &str, timeout: Option<f64>, show: Show) -> Res<bool> {
    let dm = Dm::open()?;
    if !follow(&dm, name, timeout, show)?.copied(name) {
        return Ok(false);
    }
    let c = dm.state(name)?;
    let (_, dest, _) =
        status::table_devices(&c.params).map_err(|e| Fail(format!("{name}: {e}")))?;
    let id = DevId::Name(dm::name(name)?);
    // Suspend (in-flight I/O completes, the clone commits), check, swap, resume.
    dm.0.device_suspend(&id, DmOptions::default().set_flags(DmFlags::DM_SUSPEND))
        .map_err(|e| Fail(format!("{name}: cannot suspend: {}", why(&e))))?;
    let swapped = (|| {
        if !dm.state(name)?.status.done() {
            return fail(format!("{name}: not every region is copied after all"));
        }
        dm.0.table_load(
            &id,
            &[(0, c.sectors, "linear".into(), format!("{dest} 0"))],
            DmOptions::default(),
        )
        .map_err(|e| Fail(format!("{name}: cannot load the linear table: {}", why(&e))))?;
        Ok(())
    })();
    let resumed = dm.0.device_suspend(&id, DmOptions::default());
    swapped?;
    resumed.map_err(|e| Fail(format!("{name}: cannot resume: {}", why(&e))))?;
    outln!("{name}: finished: now a linear mapping of {dest}");
    Ok(true)
}

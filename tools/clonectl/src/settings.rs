// SPDX-License-Identifier: GPL-2.0
//! `clonectl set`: a setting as KEY=VALUE, checked and sent as the target's
//! message under its upstream name (ours takes those too).

use crate::dm::{loaded, Dm, Loaded};
use crate::error::{fail, Res};

/// The message for `setting` (KEY=VALUE), or why it is refused. `target`: the loaded
/// module (dm_clone_rs takes `auto` and copy_rate_limit).
pub fn message_for(setting: &str, target: Loaded) -> Res<String> {
    let ours = target == Loaded::Ours;
    let Some((key, value)) = setting.split_once('=') else {
        return fail(format!(
            "'{setting}' is not KEY=VALUE (copy_threshold=N, copy_batch_size=N, copy_rate_limit=N)"
        ));
    };
    let wire = match key {
        "copy_threshold" | "hydration_threshold" => "hydration_threshold",
        "copy_batch_size" | "hydration_batch_size" => "hydration_batch_size",
        "copy_rate_limit" if ours => "copy_rate_limit",
        "copy_rate_limit" => {
            return fail(
                target
                    .refuses("copy_rate_limit is dm_clone_rs's", "has none")
                    .unwrap_or_default(),
            )
        }
        _ => {
            return fail(format!(
                "unknown setting '{key}' (copy_threshold, copy_batch_size, copy_rate_limit)"
            ))
        }
    };
    if value == "auto" && (!ours || wire == "copy_rate_limit") {
        return fail(if ours {
            "copy_rate_limit takes a number of MiB/s (0: no limit), not auto".to_string()
        } else {
            target
                .refuses("'auto' is dm_clone_rs's", "needs a number")
                .unwrap_or_default()
        });
    }
    if value != "auto" && value.parse::<u32>().is_err() {
        return fail(format!("'{value}' is not a number (or auto)"));
    }
    Ok(format!("{wire} {value}"))
}

/// Sends `setting` to the clone `name`.
pub fn set(name: &str, setting: &str) -> Res<()> {
    let msg = message_for(setting, loaded())?;
    Dm::open()?.message(name, &msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(setting: &str, ours: bool) -> Result<String, String> {
        let target = if ours { Loaded::Ours } else { Loaded::C };
        message_for(setting, target).map_err(|e| e.0)
    }

    #[test]
    fn settings_become_upstream_messages() {
        assert_eq!(
            said("copy_threshold=8", false).unwrap(),
            "hydration_threshold 8"
        );
        assert_eq!(
            said("hydration_batch_size=4", true).unwrap(),
            "hydration_batch_size 4"
        );
        assert_eq!(
            said("copy_threshold=auto", true).unwrap(),
            "hydration_threshold auto"
        );
        assert_eq!(
            said("copy_rate_limit=5", true).unwrap(),
            "copy_rate_limit 5"
        );
        assert!(said("copy_rate_limit=5", false)
            .unwrap_err()
            .contains("the loaded clone target is C's (dm_clone), which has none"));
        let none = message_for("copy_rate_limit=5", Loaded::Neither).map_err(|e| e.0);
        assert!(none.unwrap_err().contains("no clone target is loaded"));
        assert!(said("copy_threshold=auto", false)
            .unwrap_err()
            .contains("which needs a number"));
        assert!(said("copy_rate_limit=auto", true)
            .unwrap_err()
            .contains("not auto"));
        assert!(said("copy_threshold", true)
            .unwrap_err()
            .contains("KEY=VALUE"));
        assert!(said("speed=3", true)
            .unwrap_err()
            .contains("unknown setting"));
        assert!(said("copy_threshold=-1", true)
            .unwrap_err()
            .contains("not a number"));
    }
}

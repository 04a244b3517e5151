// SPDX-License-Identifier: GPL-2.0
//! The block devices a clone is made of, as `create` checks them: their
//! numbers, sizes and logical block sizes (sysfs), and who else uses them
//! (an exclusive open, then /proc/self/mountinfo and sysfs holders say who).
//! clonectl opens the devices read-only and never writes any of them.

use crate::error::{fail, Fail, Res};
use std::fs::OpenOptions;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A block device: its `<major>:<minor>`, size in sectors, logical block size.
pub struct BlockDev {
    pub path: PathBuf,
    pub devno: String,
    pub sectors: u64,
    pub logical_block: u64,
}

/// A number from the sysfs file `file` of device `devno` (or of its whole disk).
pub fn sysfs_num(devno: &str, file: &str) -> Option<u64> {
    let base = PathBuf::from(format!("/sys/dev/block/{devno}"));
    [base.join(file), base.join("..").join(file)]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| s.trim().parse().ok())
}

/// The block device at `path`; `role` names it in errors ("source", ...).
pub fn block_dev(path: &Path, role: &str) -> Res<BlockDev> {
    let meta =
        std::fs::metadata(path).map_err(|e| Fail(format!("{role} {}: {e}", path.display())))?;
    if !meta.file_type().is_block_device() {
        return fail(format!("{role} {} is not a block device", path.display()));
    }
    let rdev = meta.rdev();
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    let devno = format!("{major}:{minor}");
    let sectors = sysfs_num(&devno, "size")
        .ok_or_else(|| Fail(format!("{role} {}: cannot read its size", path.display())))?;
    let logical_block = sysfs_num(&devno, "queue/logical_block_size").unwrap_or(512);
    Ok(BlockDev {
        path: path.to_path_buf(),
        devno,
        sectors,
        logical_block,
    })
}

/// The mounts of device `devno` in a mountinfo text: (mount point, read-write).
pub fn mounts_of(mountinfo: &str, devno: &str) -> Vec<(String, bool)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            // id parent major:minor root mount-point options ...
            (w.get(2) == Some(&devno)).then(|| {
                let rw = w.get(5).is_some_and(|o| o.split(',').any(|o| o == "rw"));
                (w.get(4).copied().unwrap_or("?").to_string(), rw)
            })
        })
        .collect()
}

impl BlockDev {
    /// Who else has this device open exclusively (a mount, another
    /// device-mapper or md device), in words; `None` when nobody does.
    /// The test is the kernel's own: an exclusive read-only open, which fails
    /// with EBUSY while anyone holds the device.
    pub fn users(&self) -> Option<String> {
        let busy = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_EXCL)
            .open(&self.path)
        {
            Ok(_) => false,
            Err(e) => e.raw_os_error() == Some(libc::EBUSY),
        };
        if !busy {
            return None;
        }
        let mut who: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .map(|m| mounts_of(&m, &self.devno))
            .unwrap_or_default()
            .into_iter()
            .map(|(at, rw)| format!("mounted at {at} ({})", if rw { "rw" } else { "ro" }))
            .collect();
        let holders = PathBuf::from(format!("/sys/dev/block/{}/holders", self.devno));
        if let Ok(dir) = std::fs::read_dir(holders) {
            for h in dir.flatten() {
                let k = h.file_name().to_string_lossy().to_string();
                match std::fs::read_to_string(format!("/sys/block/{k}/dm/name")) {
                    Ok(n) => who.push(format!("held by {k} ({})", n.trim())),
                    Err(_) => who.push(format!("held by {k}")),
                }
            }
        }
        if who.is_empty() {
            who.push("opened exclusively by another program".into());
        }
        Some(who.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_are_found_by_device_number_with_their_mode() {
        let m = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                 40 22 253:2 / /mnt/a ro,nosuid - ext4 /dev/mapper/a ro\n\
                 41 22 253:2 /sub /mnt/b rw - ext4 /dev/mapper/a rw\n\
                 42 22 253:20 / /mnt/c rw - xfs /dev/mapper/c rw\n";
        assert_eq!(
            mounts_of(m, "253:2"),
            [("/mnt/a".to_string(), false), ("/mnt/b".to_string(), true)]
        );
        assert_eq!(mounts_of(m, "8:1"), [("/".to_string(), true)]);
        assert!(mounts_of(m, "253:3").is_empty());
    }
}

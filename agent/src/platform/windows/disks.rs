//! Volumes sysinfo did not list, read with `GetDiskFreeSpaceExW`: the
//! mount points the config names, and every drive letter when sysinfo
//! lists none at all (as under Wine). The merge is
//! [`crate::platform::mounts::fill_in`], tested on every OS.

use std::path::Path;

use crate::host::DiskUsage;
use crate::platform::mounts::fill_in;

/// `listed` in canonical spelling, completed with `wanted` mount points.
pub fn complete(listed: Vec<DiskUsage>, wanted: &[String]) -> Vec<DiskUsage> {
    let letters = if listed.is_empty() {
        forewarn_winffi::logical_drives()
    } else {
        Vec::new()
    };
    fill_in(listed, wanted, &letters, |mount| {
        forewarn_winffi::volume_space(Path::new(mount))
            .ok()
            .map(|v| (v.total_bytes, v.available_bytes))
    })
}

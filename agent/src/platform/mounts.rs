//! How a mount point is written on each OS, so `[checks.disk]` accepts what
//! a user types and compares it with what the host lists.
//!
//! Unix: an absolute path (`/`, `/var`), taken as written.
//! Windows: a drive (`C:\`, `c:`, `C:/`) or a folder a volume is mounted on
//! (`D:\mnt\data`), or a volume GUID path (`\\?\Volume{…}\`). All are
//! brought to the spelling Windows and sysinfo use: upper-case letter,
//! backslashes, one trailing backslash (`C:\`, `D:\mnt\data\`).

use crate::host::DiskUsage;

/// Windows volumes as the agent reports them: what sysinfo `listed`, in
/// canonical spelling, plus each `wanted` mount point it did not list, read
/// with `read` (total and available bytes; `None` when there is no volume
/// there, which then shows as "not mounted"). When sysinfo lists nothing at
/// all (Wine; a system where its volume enumeration fails), every drive
/// letter in `letters` is wanted too.
pub fn fill_in(
    listed: Vec<DiskUsage>,
    wanted: &[String],
    letters: &[char],
    read: impl Fn(&str) -> Option<(u64, u64)>,
) -> Vec<DiskUsage> {
    let mut disks: Vec<DiskUsage> = listed
        .into_iter()
        .map(|mut d| {
            if let Some(m) = normalize_windows(&d.mount_point) {
                d.mount_point = m;
            }
            d
        })
        .collect();
    let mut wanted: Vec<String> = wanted.to_vec();
    if disks.is_empty() {
        wanted.extend(letters.iter().map(|l| format!("{l}:\\")));
    }
    for mount in wanted {
        if disks.iter().any(|d| d.mount_point == mount) {
            continue;
        }
        if let Some((total_bytes, available_bytes)) = read(&mount) {
            disks.push(DiskUsage {
                device: mount.clone(),
                mount_point: mount,
                fs_type: String::new(),
                device_id: None,
                total_bytes,
                available_bytes,
            });
        }
    }
    disks
}

/// What a valid mount point looks like, for error messages.
pub fn requirement(windows: bool) -> &'static str {
    if windows {
        r"must be a drive (C:\) or a folder a volume is mounted on (D:\mnt\data)"
    } else {
        "must be an absolute mount point"
    }
}

/// `mount` in its canonical spelling, or `None` when it is not a mount
/// point on that OS.
pub fn normalize(mount: &str, windows: bool) -> Option<String> {
    if windows {
        normalize_windows(mount)
    } else {
        mount.starts_with('/').then(|| mount.to_owned())
    }
}

/// [`normalize`] for this OS.
pub fn normalize_here(mount: &str) -> Option<String> {
    normalize(mount, cfg!(windows))
}

/// A Windows mount point in canonical spelling; `None` for a relative or
/// drive-relative path (`data`, `C:data`) or one with `.`/`..` in it.
pub fn normalize_windows(mount: &str) -> Option<String> {
    let mount = mount.trim().replace('/', "\\");
    if let Some(rest) = mount.strip_prefix(r"\\?\") {
        let volume = rest.trim_end_matches('\\');
        let guid = volume.strip_prefix("Volume{")?.strip_suffix('}')?;
        if guid.is_empty() || guid.contains(['\\', '{', '}']) {
            return None;
        }
        return Some(format!(r"\\?\{volume}\"));
    }
    let mut chars = mount.chars();
    let letter = chars.next().filter(char::is_ascii_alphabetic)?;
    if chars.next() != Some(':') {
        return None;
    }
    let rest = chars.as_str();
    if !(rest.is_empty() || rest.starts_with('\\')) {
        return None;
    }
    let parts: Vec<&str> = rest.split('\\').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return None;
    }
    let mut out = format!("{}:\\", letter.to_ascii_uppercase());
    for part in parts {
        out.push_str(part);
        out.push('\\');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_drives_and_folders_are_normalised() {
        for (given, canonical) in [
            (r"C:\", r"C:\"),
            ("C:", r"C:\"),
            ("c:", r"C:\"),
            ("D:/", r"D:\"),
            (r"d:\mnt\data", r"D:\mnt\data\"),
            (r"D:\mnt\\data\", r"D:\mnt\data\"),
            (
                r"\\?\Volume{1b3b1146-4076-11e1-84aa-806e6f6e6963}",
                r"\\?\Volume{1b3b1146-4076-11e1-84aa-806e6f6e6963}\",
            ),
        ] {
            assert_eq!(
                normalize_windows(given).as_deref(),
                Some(canonical),
                "{given}"
            );
        }
    }

    #[test]
    fn windows_rejects_what_is_not_a_mount_point() {
        for bad in [
            "",
            "data",
            "C:data",
            "/var",
            r"\\server\share",
            r"C:\..\x",
            r"\\?\Volume{}",
            "1:",
        ] {
            assert_eq!(normalize_windows(bad), None, "{bad:?}");
        }
    }

    fn disk(mount: &str) -> DiskUsage {
        DiskUsage {
            mount_point: mount.into(),
            fs_type: "NTFS".into(),
            device: "disk".into(),
            device_id: None,
            total_bytes: 100,
            available_bytes: 50,
        }
    }

    #[test]
    fn volumes_sysinfo_missed_are_read_directly() {
        let read = |m: &str| (m != r"E:\").then_some((1000, 10));
        // sysinfo lists C: (without the trailing backslash here); D:\data
        // is configured, E:\ has no volume.
        let all = fill_in(
            vec![disk("c:")],
            &[r"D:\data\".to_owned(), r"E:\".to_owned(), r"C:\".to_owned()],
            &['C', 'D'],
            read,
        );
        let mounts: Vec<_> = all.iter().map(|d| d.mount_point.as_str()).collect();
        assert_eq!(mounts, [r"C:\", r"D:\data\"]);
        assert_eq!(all[1].total_bytes, 1000);
        assert_eq!(all[0].total_bytes, 100, "sysinfo's reading is kept");
    }

    #[test]
    fn no_volume_listed_means_every_drive_letter_is_read() {
        let all = fill_in(Vec::new(), &[], &['C', 'Z'], |_| Some((1000, 900)));
        let mounts: Vec<_> = all.iter().map(|d| d.mount_point.as_str()).collect();
        assert_eq!(mounts, [r"C:\", r"Z:\"]);
        assert!(fill_in(Vec::new(), &[], &['C'], |_| None).is_empty());
    }

    #[test]
    fn unix_takes_absolute_paths_as_written() {
        assert_eq!(normalize("/var/", false).as_deref(), Some("/var/"));
        assert_eq!(normalize(r"C:\", false), None);
        assert!(requirement(false).contains("absolute"));
        assert!(requirement(true).contains(r"C:\"));
    }
}

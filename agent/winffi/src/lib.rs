//! The few Windows API calls the Forewarn agent makes directly, behind safe
//! functions: system CPU times (`GetSystemTimes`, because sysinfo's PDH
//! counters are missing on some systems and under Wine), volume sizes and
//! drive letters (`GetDiskFreeSpaceExW`, `GetLogicalDrives`, when sysinfo
//! lists no volume), and Event Log reports (`RegisterEventSourceW`,
//! `ReportEventW`), and the service entry point the SCM calls
//! (`windows-service`'s `define_windows_service!` expands to an unsafe
//! block, so it cannot live in the agent).
//!
//! This crate is the only place in the workspace where `unsafe` is allowed
//! (the agent itself forbids it). Each unsafe block is one Win32 call with
//! pointers to locals that live across the call, and says why it is sound.
//! The arithmetic on the results is plain Rust, unit-tested on every OS.

use std::io;

#[cfg(windows)]
mod dispatcher;
#[cfg(windows)]
mod sys;
#[cfg(windows)]
pub use dispatcher::run_service_dispatcher;
#[cfg(windows)]
pub use sys::{EventSource, logical_drives, system_times, volume_space};

/// Processor times of the whole machine since boot, summed over every
/// processor, in 100 ns units, as `GetSystemTimes` gives them. `kernel`
/// includes `idle`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemTimes {
    pub idle: u64,
    pub kernel: u64,
    pub user: u64,
}

impl SystemTimes {
    /// Busy share of all processors between `earlier` and `self`, 0 to
    /// 100; `None` when no processor time passed (or the counters went
    /// backwards).
    pub fn busy_percent_since(&self, earlier: &SystemTimes) -> Option<f64> {
        let idle = self.idle.checked_sub(earlier.idle)?;
        let kernel = self.kernel.checked_sub(earlier.kernel)?;
        let user = self.user.checked_sub(earlier.user)?;
        let total = kernel.checked_add(user)?;
        if total == 0 {
            return None;
        }
        let busy = total.saturating_sub(idle);
        // Processor ticks fit an f64 closely enough for a percentage.
        #[allow(clippy::cast_precision_loss)]
        let percent = busy as f64 / total as f64 * 100.0;
        Some(percent.clamp(0.0, 100.0))
    }
}

/// Size of one volume as `GetDiskFreeSpaceExW` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeSpace {
    pub total_bytes: u64,
    /// Free bytes the caller may use (quotas applied).
    pub available_bytes: u64,
}

/// Level of an Event Log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventLevel {
    Error,
    Warning,
    Information,
}

/// The drive letters set in a `GetLogicalDrives` bit mask (bit 0 = `A`).
pub fn drive_letters(mask: u32) -> Vec<char> {
    (b'A'..=b'Z')
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, letter)| char::from(letter))
        .collect()
}

/// `text` as a NUL-terminated UTF-16 string; interior NULs would cut it
/// short, so they are refused.
pub fn wide(text: &std::ffi::OsStr) -> io::Result<Vec<u16>> {
    #[cfg(windows)]
    let units: Vec<u16> = std::os::windows::ffi::OsStrExt::encode_wide(text).collect();
    #[cfg(not(windows))]
    let units: Vec<u16> = text.to_string_lossy().encode_utf16().collect();
    if units.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "text contains a NUL character",
        ));
    }
    Ok(units.into_iter().chain(std::iter::once(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_share_between_two_readings() {
        let a = SystemTimes {
            idle: 1_000,
            kernel: 1_500,
            user: 500,
        };
        // 1000 ticks passed: 750 idle (inside kernel), 250 busy.
        let b = SystemTimes {
            idle: 1_750,
            kernel: 2_300,
            user: 700,
        };
        assert_eq!(b.busy_percent_since(&a), Some(25.0));
        assert_eq!(a.busy_percent_since(&a), None, "no time passed");
        assert_eq!(a.busy_percent_since(&b), None, "counters went backwards");
    }

    #[test]
    fn drive_letters_from_the_mask() {
        assert_eq!(drive_letters(0b1101), ['A', 'C', 'D']);
        assert_eq!(drive_letters(1 << 25), ['Z']);
        assert!(drive_letters(0).is_empty());
    }

    #[test]
    fn wide_strings_end_in_nul_and_refuse_inner_nul() {
        assert_eq!(
            wide(std::ffi::OsStr::new("C:\\")).expect("plain"),
            [67, 58, 92, 0]
        );
        assert!(wide(std::ffi::OsStr::new("a\0b")).is_err());
    }
}

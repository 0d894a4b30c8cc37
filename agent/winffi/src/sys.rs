//! The Win32 calls themselves. Every `unsafe` block here is one call whose
//! pointer arguments point to locals (or to a NUL-terminated buffer) that
//! outlive the call; nothing the callee returns is kept as a pointer
//! except the Event Log handle, owned by [`EventSource`].
#![allow(unsafe_code)]

use std::ffi::OsStr;
use std::io;
use std::path::Path;

use windows_sys::Win32::Foundation::{FILETIME, HANDLE};
use windows_sys::Win32::Storage::FileSystem::{GetDiskFreeSpaceExW, GetLogicalDrives};
use windows_sys::Win32::System::EventLog::{
    DeregisterEventSource, EVENTLOG_ERROR_TYPE, EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE,
    RegisterEventSourceW, ReportEventW,
};
use windows_sys::Win32::System::Threading::GetSystemTimes;

use crate::{EventLevel, SystemTimes, VolumeSpace, drive_letters, wide};

fn ticks(t: FILETIME) -> u64 {
    (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime)
}

/// The machine's processor times now.
pub fn system_times() -> io::Result<SystemTimes> {
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut idle, mut kernel, mut user) = (zero, zero, zero);
    // SAFETY: three writable FILETIMEs on this stack frame; the call only
    // writes them.
    let ok = unsafe { GetSystemTimes(&mut idle, &mut kernel, &mut user) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(SystemTimes {
        idle: ticks(idle),
        kernel: ticks(kernel),
        user: ticks(user),
    })
}

/// The drive letters that exist now (`C`, `D`, …).
pub fn logical_drives() -> Vec<char> {
    // SAFETY: no arguments; returns a bit mask.
    let mask = unsafe { GetLogicalDrives() };
    drive_letters(mask)
}

/// Size and free space of the volume holding `path` (a root such as `C:\`
/// or a mounted folder).
pub fn volume_space(path: &Path) -> io::Result<VolumeSpace> {
    let name = wide(path.as_os_str())?;
    let (mut available, mut total, mut free) = (0u64, 0u64, 0u64);
    // SAFETY: `name` is NUL-terminated and lives across the call; the three
    // out-pointers are writable locals.
    let ok = unsafe { GetDiskFreeSpaceExW(name.as_ptr(), &mut available, &mut total, &mut free) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(VolumeSpace {
        total_bytes: total,
        available_bytes: available,
    })
}

/// A registered Event Log source, open for reports.
pub struct EventSource {
    handle: HANDLE,
}

// SAFETY: an event source handle is not tied to the thread that opened
// it; ReportEventW may be called from any thread, concurrently.
unsafe impl Send for EventSource {}
// SAFETY: as above; the handle is never mutated after opening.
unsafe impl Sync for EventSource {}

impl EventSource {
    /// Opens the source `name` on this machine. Windows accepts a name that
    /// was never registered (entries then show without a message file), so
    /// this fails only when the Event Log service is unreachable.
    pub fn open(name: &str) -> io::Result<Self> {
        let name = wide(OsStr::new(name))?;
        // SAFETY: a null server name means this machine; `name` is
        // NUL-terminated and lives across the call.
        let handle = unsafe { RegisterEventSourceW(std::ptr::null(), name.as_ptr()) };
        if handle.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { handle })
    }

    /// Writes one entry with `message` as its only insertion string.
    pub fn report(&self, level: EventLevel, event_id: u32, message: &str) -> io::Result<()> {
        let kind = match level {
            EventLevel::Error => EVENTLOG_ERROR_TYPE,
            EventLevel::Warning => EVENTLOG_WARNING_TYPE,
            EventLevel::Information => EVENTLOG_INFORMATION_TYPE,
        };
        // The Event Log refuses strings past 31,839 characters.
        let text: String = message.replace('\0', " ").chars().take(31_000).collect();
        let text = wide(OsStr::new(&text))?;
        let strings = [text.as_ptr()];
        // SAFETY: the handle is open (owned by self); `strings` holds one
        // pointer to a NUL-terminated buffer, both alive across the call;
        // no SID and no raw data.
        let ok = unsafe {
            ReportEventW(
                self.handle,
                kind,
                0,
                event_id,
                std::ptr::null_mut(),
                1,
                0,
                strings.as_ptr(),
                std::ptr::null(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for EventSource {
    fn drop(&mut self) {
        // SAFETY: the handle came from RegisterEventSourceW and is closed
        // once, here.
        unsafe {
            DeregisterEventSource(self.handle);
        }
    }
}

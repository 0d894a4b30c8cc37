//! Registry reads for the checks: the keys Windows sets while a reboot is
//! pending. Which key means what is decided in
//! [`crate::checks::reboot::WindowsSignals`].

use std::io;

use winreg::RegKey;
use winreg::enums::{HKEY_LOCAL_MACHINE, KEY_READ};

use crate::checks::reboot::WindowsSignals;

const CBS_REBOOT_PENDING: &str =
    r"SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending";
const WU_REBOOT_REQUIRED: &str =
    r"SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired";
const SESSION_MANAGER: &str = r"SYSTEM\CurrentControlSet\Control\Session Manager";

/// Whether `path` exists under HKLM (access denied is an error, not "no").
fn key_exists(path: &str) -> io::Result<bool> {
    match RegKey::predef(HKEY_LOCAL_MACHINE).open_subkey_with_flags(path, KEY_READ) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io::Error::new(e.kind(), format!("HKLM\\{path}: {e}"))),
    }
}

/// The three signals, read now. Blocking.
pub fn reboot_signals() -> io::Result<WindowsSignals> {
    let session = RegKey::predef(HKEY_LOCAL_MACHINE)
        .open_subkey_with_flags(SESSION_MANAGER, KEY_READ)
        .map_err(|e| io::Error::new(e.kind(), format!("HKLM\\{SESSION_MANAGER}: {e}")))?;
    let pending_file_renames =
        match session.get_value::<Vec<String>, _>("PendingFileRenameOperations") {
            Ok(list) => list,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("PendingFileRenameOperations: {e}"),
                ));
            }
        };
    Ok(WindowsSignals {
        cbs_reboot_pending: key_exists(CBS_REBOOT_PENDING)?,
        windows_update_reboot_required: key_exists(WU_REBOOT_REQUIRED)?,
        pending_file_renames,
    })
}

//! What differs per operating system and is not a check: default paths,
//! how mount points are written, and (in [`windows`]) the Windows service,
//! Event Log, ACLs and the Win32 host readings that replace sysinfo's where
//! those fail.
//!
//! The pure parts (paths, mount point spelling, `icacls` arguments) are
//! here and in [`acl`], compiled and unit-tested on every OS; only the
//! calls into Windows live under `windows/`.

pub mod acl;
pub mod logging;
pub mod mounts;
pub mod service;
#[cfg(windows)]
pub mod windows;

use std::ffi::OsString;
use std::path::PathBuf;

/// `%ProgramData%`, or `C:\ProgramData` when the variable is unset (as it
/// can be for a process started with a cleared environment).
pub fn program_data(var: Option<OsString>) -> PathBuf {
    var.filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(r"C:\ProgramData"), PathBuf::from)
}

/// `%ProgramData%\Forewarn`: the Windows state dir, also holding the config.
pub fn windows_home(var: Option<OsString>) -> PathBuf {
    program_data(var).join("Forewarn")
}

/// Where `--config` points when it is not given:
/// `/etc/forewarn/agent.toml`, or `%ProgramData%\Forewarn\agent.toml` on
/// Windows.
pub fn default_config_path() -> PathBuf {
    if cfg!(windows) {
        windows_home(std::env::var_os("ProgramData")).join("agent.toml")
    } else {
        PathBuf::from("/etc/forewarn/agent.toml")
    }
}

/// The default `state_dir`: `/var/lib/forewarn-agent`, or
/// `%ProgramData%\Forewarn` on Windows.
pub fn default_state_dir() -> PathBuf {
    if cfg!(windows) {
        windows_home(std::env::var_os("ProgramData"))
    } else {
        PathBuf::from("/var/lib/forewarn-agent")
    }
}

/// How a stop is asked for, for messages and `--help`.
pub const STOP_REQUEST: &str = if cfg!(windows) {
    "the service stops or Ctrl-C"
} else {
    "SIGTERM or SIGINT"
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_home_follows_program_data() {
        assert_eq!(
            windows_home(Some(r"D:\Data".into())),
            PathBuf::from(r"D:\Data").join("Forewarn")
        );
        assert_eq!(program_data(None), PathBuf::from(r"C:\ProgramData"));
        assert_eq!(
            program_data(Some("".into())),
            PathBuf::from(r"C:\ProgramData")
        );
    }

    #[test]
    fn unix_defaults() {
        if cfg!(unix) {
            assert_eq!(
                default_config_path(),
                PathBuf::from("/etc/forewarn/agent.toml")
            );
            assert_eq!(
                default_state_dir(),
                PathBuf::from("/var/lib/forewarn-agent")
            );
        }
    }
}

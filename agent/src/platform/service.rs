//! What the Windows service registration says, as plain data: names,
//! the command line the SCM starts, the recovery plan and the Event Log
//! source. Kept apart from the Win32 calls (`windows/install.rs`) so it is
//! unit-tested on every OS.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The service's key name (`sc query ForewarnAgent`).
pub const SERVICE_NAME: &str = "ForewarnAgent";
/// What the Services console shows.
pub const DISPLAY_NAME: &str = "Forewarn Agent";
/// The Services console's description.
pub const DESCRIPTION: &str = "Watches this machine's health (disks, CPU, memory, services, \
     processes, plugins) and reports to the Forewarn collector over mutual TLS.";
/// The Event Log source the agent writes warnings and errors under
/// (Windows Logs > Application).
pub const EVENT_SOURCE: &str = "Forewarn Agent";
/// Where the Event Log looks sources up.
pub const EVENT_SOURCE_KEY: &str =
    r"SYSTEM\CurrentControlSet\Services\EventLog\Application\Forewarn Agent";

/// After a crash or a non-zero exit the SCM restarts the agent after these
/// delays (first, second, third and later failures)…
pub const RESTART_DELAYS: [Duration; 3] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
];
/// …and forgets earlier failures after a day without one.
pub const FAILURE_RESET: Duration = Duration::from_secs(24 * 3600);
/// How long Windows waits for the agent's Goodbye at shutdown
/// (preshutdown; the default is 3 minutes, far more than it needs).
pub const PRESHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// The arguments the SCM starts the executable with: `service run`, and
/// the config file when one was given at install (made absolute, since a
/// service starts in `System32`).
pub fn launch_arguments(config: Option<&Path>, cwd: &Path) -> Vec<OsString> {
    let mut args = vec![OsString::from("service"), OsString::from("run")];
    if let Some(config) = config {
        let absolute: PathBuf = if config.is_absolute() {
            config.to_owned()
        } else {
            cwd.join(config)
        };
        args.push(OsString::from("--config"));
        args.push(absolute.into_os_string());
    }
    args
}

/// The message file registered for the Event Log source: .NET's
/// `EventLogMessages.dll`, present on every Windows since 8 / Server 2012,
/// which maps every event id to the text "%1", so entries show the agent's
/// message and not "the description for Event ID … cannot be found".
pub fn event_message_file(system_root: &Path) -> PathBuf {
    system_root
        .join("Microsoft.NET")
        .join("Framework64")
        .join("v4.0.30319")
        .join("EventLogMessages.dll")
}

/// Event ids, one per level, so a filter in Event Viewer can pick them.
pub mod event_id {
    pub const ERROR: u32 = 1;
    pub const WARNING: u32 = 2;
    pub const INFORMATION: u32 = 3;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_arguments_carry_an_absolute_config() {
        let cwd = Path::new("/work");
        assert_eq!(launch_arguments(None, cwd), ["service", "run"]);
        let args = launch_arguments(Some(Path::new("agent.toml")), cwd);
        assert_eq!(
            args,
            [
                OsString::from("service"),
                "run".into(),
                "--config".into(),
                Path::new("/work").join("agent.toml").into_os_string()
            ]
        );
        let args = launch_arguments(Some(Path::new("/etc/a.toml")), cwd);
        assert_eq!(args[3], OsString::from("/etc/a.toml"));
    }

    #[test]
    fn recovery_plan_restarts_ever_later() {
        assert!(RESTART_DELAYS.windows(2).all(|w| w[0] < w[1]));
        assert!(RESTART_DELAYS[0] >= Duration::from_secs(1));
        assert!(FAILURE_RESET > RESTART_DELAYS[2]);
    }

    #[test]
    fn event_source_key_names_the_source() {
        assert!(EVENT_SOURCE_KEY.ends_with(EVENT_SOURCE));
        assert!(event_message_file(Path::new("C:/Windows")).ends_with("EventLogMessages.dll"));
    }
}

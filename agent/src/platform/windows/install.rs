//! `forewarn-agent service install|uninstall|start|stop`: the service's
//! registration with the SCM (through `windows-service`) and the Event Log
//! source (a registry key, through `winreg`). Needs an elevated prompt.
//!
//! The service runs as LocalSystem: the pending-reboot keys, every
//! service's status, other services' log files and backup folders are only
//! readable by SYSTEM or Administrators, so a virtual account
//! (`NT SERVICE\ForewarnAgent`) would leave those checks UNKNOWN.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceErrorControl, ServiceFailureActions,
    ServiceFailureResetPeriod, ServiceInfo, ServiceStartType, ServiceState, ServiceStatus,
    ServiceType,
};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use winreg::RegKey;
use winreg::enums::HKEY_LOCAL_MACHINE;

use crate::platform::service::{
    DESCRIPTION, DISPLAY_NAME, EVENT_SOURCE_KEY, FAILURE_RESET, PRESHUTDOWN_TIMEOUT,
    RESTART_DELAYS, SERVICE_NAME, event_message_file, launch_arguments,
};

/// How long `start` and `stop` wait for the service to get there.
const STATE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often they look.
const STATE_POLL: Duration = Duration::from_millis(200);

fn manager(access: ServiceManagerAccess) -> Result<ServiceManager> {
    ServiceManager::local_computer(None::<&str>, access)
        .context("cannot open the service manager (run from an elevated prompt)")
}

/// Registers the service (automatic, delayed start; restart on failure)
/// and the Event Log source. `config`: the file the service should read.
pub fn install(config: Option<&Path>) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find this executable's path")?;
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let info = ServiceInfo {
        name: OsString::from(SERVICE_NAME),
        display_name: OsString::from(DISPLAY_NAME),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe,
        launch_arguments: launch_arguments(config, &cwd),
        dependencies: Vec::new(),
        // LocalSystem (see the module doc).
        account_name: None,
        account_password: None,
    };
    let manager = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    let service = manager
        .create_service(&info, ServiceAccess::CHANGE_CONFIG | ServiceAccess::START)
        .with_context(|| format!("cannot create the service {SERVICE_NAME}"))?;
    // The settings beyond create: a failure is reported, not fatal, so a
    // service manager that lacks one (Wine has no delayed start) still gets
    // a working service. On Windows each of these succeeds.
    let actions = RESTART_DELAYS
        .iter()
        .map(|&delay| ServiceAction {
            action_type: ServiceActionType::Restart,
            delay,
        })
        .collect();
    let settings: [(&str, windows_service::Result<()>); 5] = [
        ("the description", service.set_description(DESCRIPTION)),
        (
            "the delayed automatic start",
            service.set_delayed_auto_start(true),
        ),
        (
            "the preshutdown timeout",
            service.set_preshutdown_timeout(PRESHUTDOWN_TIMEOUT),
        ),
        (
            "the recovery actions",
            service.update_failure_actions(ServiceFailureActions {
                reset_period: ServiceFailureResetPeriod::After(FAILURE_RESET),
                reboot_msg: None,
                command: None,
                actions: Some(actions),
            }),
        ),
        (
            "the recovery actions for error exits",
            service.set_failure_actions_on_non_crash_failures(true),
        ),
    ];
    for (what, result) in settings {
        if let Err(e) = result {
            eprintln!(
                "forewarn-agent: warning: cannot set {what}: {}",
                crate::error::chain(&e)
            );
        }
    }
    register_event_source()?;
    Ok(())
}

/// Stops the service if it runs, deletes it and the Event Log source.
/// Config and state stay.
pub fn uninstall() -> Result<()> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = manager
        .open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
        )
        .with_context(|| format!("cannot open the service {SERVICE_NAME}"))?;
    let status = service.query_status().context("cannot query the service")?;
    if status.current_state != ServiceState::Stopped {
        service.stop().context("cannot stop the service")?;
        wait_for(|| service.query_status(), ServiceState::Stopped)?;
    }
    service.delete().context("cannot delete the service")?;
    unregister_event_source()
}

/// Starts the service and waits until it runs.
pub fn start() -> Result<()> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = manager
        .open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::START,
        )
        .with_context(|| format!("cannot open the service {SERVICE_NAME} (is it installed?)"))?;
    if service.query_status()?.current_state == ServiceState::Running {
        return Ok(());
    }
    service
        .start::<&str>(&[])
        .context("cannot start the service")?;
    wait_for(|| service.query_status(), ServiceState::Running)
}

/// Stops the service and waits until it has stopped.
pub fn stop() -> Result<()> {
    let manager = manager(ServiceManagerAccess::CONNECT)?;
    let service = manager
        .open_service(
            SERVICE_NAME,
            ServiceAccess::QUERY_STATUS | ServiceAccess::STOP,
        )
        .with_context(|| format!("cannot open the service {SERVICE_NAME} (is it installed?)"))?;
    if service.query_status()?.current_state == ServiceState::Stopped {
        return Ok(());
    }
    service.stop().context("cannot stop the service")?;
    wait_for(|| service.query_status(), ServiceState::Stopped)
}

/// Waits until the service is in `want`; a service that stops while it
/// should be starting fails at once, with its exit code.
fn wait_for(
    status: impl Fn() -> windows_service::Result<ServiceStatus>,
    want: ServiceState,
) -> Result<()> {
    let deadline = Instant::now() + STATE_TIMEOUT;
    loop {
        let status = status().context("cannot query the service")?;
        let now = status.current_state;
        if now == want {
            return Ok(());
        }
        if want == ServiceState::Running && now == ServiceState::Stopped {
            bail!(
                "the service stopped while starting (exit code {:?}); its reason is in \
                 <state_dir>\\logs\\ and the Event Log (source \"Forewarn Agent\")",
                status.exit_code
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "the service is {now:?}, not {want:?}, after {} s",
                STATE_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(STATE_POLL);
    }
}

fn register_event_source() -> Result<()> {
    let system_root =
        std::env::var_os("SystemRoot").map_or_else(|| PathBuf::from(r"C:\Windows"), PathBuf::from);
    let (key, _) = RegKey::predef(HKEY_LOCAL_MACHINE)
        .create_subkey(EVENT_SOURCE_KEY)
        .context("cannot register the Event Log source")?;
    let file = event_message_file(&system_root);
    key.set_value("EventMessageFile", &file.as_os_str())
        .context("cannot register the Event Log source's message file")?;
    // Error, warning and information entries.
    key.set_value("TypesSupported", &7u32)
        .context("cannot register the Event Log source's types")?;
    Ok(())
}

fn unregister_event_source() -> Result<()> {
    match RegKey::predef(HKEY_LOCAL_MACHINE).delete_subkey_all(EVENT_SOURCE_KEY) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).context("cannot remove the Event Log source"),
    }
}

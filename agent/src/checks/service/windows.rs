//! Service state from the Windows Service Control Manager, asked through
//! the service API (`windows-service`: `OpenServiceW`,
//! `QueryServiceStatus`, and `QueryServiceConfigW` for the start type when
//! `enabled` is expected). No process per query (as `sc.exe` would be), so
//! [`watch`] can afford to look every [`WATCH_POLL`] and wake the probe the
//! moment a state changes: a stopped service is reported within about half
//! a second.
//!
//! The SCM's numeric codes are mapped here by pure functions, tested on
//! every OS; the calls are Windows-only.

use super::{Running, ServiceStatus};

/// How often [`watch`] asks the SCM (one local RPC, well under a
/// millisecond).
#[cfg(windows)]
pub const WATCH_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// `SERVICE_*` state codes (winsvc.h) in neutral terms.
pub fn running_from_state(code: u32) -> Running {
    match code {
        // SERVICE_RUNNING
        4 => Running::Yes,
        // SERVICE_START_PENDING, SERVICE_CONTINUE_PENDING
        2 | 5 => Running::Starting,
        // STOPPED, STOP_PENDING, PAUSE_PENDING, PAUSED
        _ => Running::No,
    }
}

/// The SCM's name of a state code, for the message.
pub fn state_name(code: u32) -> &'static str {
    match code {
        1 => "STOPPED",
        2 => "START_PENDING",
        3 => "STOP_PENDING",
        4 => "RUNNING",
        5 => "CONTINUE_PENDING",
        6 => "PAUSE_PENDING",
        7 => "PAUSED",
        _ => "UNKNOWN_STATE",
    }
}

/// Enabled = starts at boot: BOOT (0), SYSTEM (1) or AUTO (2) start;
/// DEMAND (3, manual) and DISABLED (4) are not. With its name.
pub fn start_type(code: u32) -> (bool, &'static str) {
    match code {
        0 => (true, "BOOT_START"),
        1 => (true, "SYSTEM_START"),
        2 => (true, "AUTO_START"),
        3 => (false, "DEMAND_START"),
        _ => (false, "DISABLED"),
    }
}

/// The neutral status from the state code and, when asked, the start type.
pub fn status(state: u32, start: Option<u32>) -> ServiceStatus {
    let mut detail = state_name(state).to_owned();
    let enabled = start.map(|code| {
        let (enabled, name) = start_type(code);
        detail = format!("{detail}, {name}");
        enabled
    });
    ServiceStatus {
        found: true,
        running: running_from_state(state),
        enabled,
        detail,
    }
}

#[cfg(windows)]
mod scm {
    use windows_service::service::{ServiceAccess, ServiceStartType};
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

    use super::super::{QueryError, ServiceStatus};

    /// "The specified service does not exist as an installed service."
    const ERROR_SERVICE_DOES_NOT_EXIST: i32 = 1060;

    fn failed(what: &str, e: &windows_service::Error) -> QueryError {
        QueryError::Failed(format!("{what}: {e}"))
    }

    /// The SCM state code of `name` and, when `need_enabled`, its start
    /// type code; `None` when there is no such service. Blocking.
    pub fn codes(name: &str, need_enabled: bool) -> Result<Option<(u32, Option<u32>)>, QueryError> {
        let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
            .map_err(|e| {
            QueryError::Unavailable(format!("service manager not available: {e}"))
        })?;
        let mut access = ServiceAccess::QUERY_STATUS;
        if need_enabled {
            access |= ServiceAccess::QUERY_CONFIG;
        }
        let service = match manager.open_service(name, access) {
            Ok(service) => service,
            Err(windows_service::Error::Winapi(e))
                if e.raw_os_error() == Some(ERROR_SERVICE_DOES_NOT_EXIST) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(failed("OpenService", &e)),
        };
        let state = service
            .query_status()
            .map_err(|e| failed("QueryServiceStatus", &e))?
            .current_state as u32;
        let start = if need_enabled {
            let config = service
                .query_config()
                .map_err(|e| failed("QueryServiceConfig", &e))?;
            Some(match config.start_type {
                ServiceStartType::AutoStart => 2,
                ServiceStartType::OnDemand => 3,
                ServiceStartType::Disabled => 4,
                ServiceStartType::SystemStart => 1,
                ServiceStartType::BootStart => 0,
            })
        } else {
            None
        };
        Ok(Some((state, start)))
    }

    /// [`codes`] as a status.
    pub fn status(name: &str, need_enabled: bool) -> Result<ServiceStatus, QueryError> {
        Ok(match codes(name, need_enabled)? {
            None => ServiceStatus::not_found(),
            Some((state, start)) => super::status(state, start),
        })
    }
}

/// Asks the SCM about `name`.
#[cfg(windows)]
pub async fn query(name: &str, need_enabled: bool) -> Result<ServiceStatus, super::QueryError> {
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || scm::status(&name, need_enabled))
        .await
        .map_err(|e| super::QueryError::Failed(e.to_string()))?
}

/// Wakes the probe of `name` whenever the service's state code changes,
/// looking every [`WATCH_POLL`]; ends when the probe is gone.
#[cfg(windows)]
pub fn watch(name: &str) -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let name = name.to_owned();
    tokio::spawn(async move {
        // The last state code read (`None` inside: no such service).
        let mut last: Option<Option<u32>> = None;
        let mut tick = tokio::time::interval(WATCH_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if tx.is_closed() {
                return;
            }
            let n = name.clone();
            let Ok(reading) = tokio::task::spawn_blocking(move || {
                scm::codes(&n, false)
                    .ok()
                    .map(|c| c.map(|(state, _)| state))
            })
            .await
            else {
                return;
            };
            // A failed query is the probe's to report on its next run.
            let Some(now) = reading else { continue };
            if last.is_some_and(|l| l != now) {
                // Full: a wake is already pending, which is enough.
                let _ = tx.try_send(());
            }
            last = Some(now);
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_codes_map_to_running() {
        assert_eq!(running_from_state(4), Running::Yes);
        assert_eq!(running_from_state(2), Running::Starting);
        assert_eq!(running_from_state(1), Running::No);
        assert_eq!(running_from_state(7), Running::No, "paused is not running");
    }

    #[test]
    fn statuses_with_and_without_start_type() {
        let s = status(4, None);
        assert_eq!(
            (s.found, s.running, s.enabled, s.detail.as_str()),
            (true, Running::Yes, None, "RUNNING")
        );
        let s = status(1, Some(2));
        assert_eq!(s.enabled, Some(true));
        assert_eq!(s.detail, "STOPPED, AUTO_START");
        let s = status(4, Some(4));
        assert_eq!(s.enabled, Some(false));
        assert_eq!(s.detail, "RUNNING, DISABLED");
        assert_eq!(start_type(3), (false, "DEMAND_START"));
    }
}

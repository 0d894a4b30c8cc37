//! The `service` check (`[[checks.service]]`): whether a system service is
//! running and/or enabled, asked of the platform's service manager —
//! systemd (`systemctl show`), the Windows SCM (its service API) or
//! launchd (`launchctl print`). The item is the configured name.
//!
//! Each platform module turns the manager's answer into a neutral
//! [`ServiceStatus`]; [`evaluate`] decides the state from it, the same way
//! everywhere. A manager that is not there (systemd not PID 1, no system
//! bus) is UNKNOWN, never CRIT: the service may be fine, we cannot tell.
//!
//! On Linux the unit is read over D-Bus from systemd and followed through
//! its signals ([`dbus`]): a stop wakes the probe at once, and the
//! `interval_secs` run stays as a safety net. Where systemd is not on a
//! system bus (containers, WSL, minimal images — this build machine) the
//! probe polls `systemctl show` every `interval_secs` instead ([`systemd`]).

#[cfg(target_os = "linux")]
mod dbus;
#[cfg(any(target_os = "macos", test))]
mod launchd;
#[cfg(any(target_os = "linux", test))]
mod systemd;
#[cfg(any(windows, test))]
mod windows;

use std::time::Duration;

use super::{BoxFuture, CheckState, Evaluation, Metric, Probe};
use crate::config::{Expect, ServiceConfig};

/// How long one service-manager command may take (Windows asks the SCM's
/// API instead of running a command).
#[cfg_attr(not(any(target_os = "linux", target_os = "macos")), allow(dead_code))]
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// One probe per `[[checks.service]]` entry.
pub fn probes(list: &[ServiceConfig]) -> Vec<Box<dyn Probe>> {
    // One system bus connection for all of them, made at the first run.
    #[cfg(target_os = "linux")]
    let bus = dbus::Bus::new();
    list.iter()
        .map(|c| -> Box<dyn Probe> {
            Box::new(ServiceProbe {
                name: c.name.clone(),
                expect: c.expect,
                interval: Duration::from_secs(c.interval_secs),
                #[cfg(target_os = "linux")]
                follow: linux::Follow::new(std::sync::Arc::clone(&bus)),
            })
        })
        .collect()
}

// === impl ServiceStatus ===

/// Whether a service is up, in platform-neutral terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Running {
    Yes,
    /// On its way up (systemd `activating`, Windows `START_PENDING`).
    Starting,
    No,
}

/// What the service manager says about one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStatus {
    /// False when the manager does not know the service at all.
    pub found: bool,
    pub running: Running,
    /// Whether it starts at boot; `None` when not asked or not knowable.
    pub enabled: Option<bool>,
    /// The manager's own words, e.g. `active (running), enabled`.
    pub detail: String,
}

impl ServiceStatus {
    /// A service the manager does not know.
    pub fn not_found() -> Self {
        Self {
            found: false,
            running: Running::No,
            enabled: Some(false),
            detail: "not found".to_owned(),
        }
    }
}

/// Why the service manager could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// No service manager to ask (systemd not running, tool missing).
    #[error("{0}")]
    Unavailable(String),
    /// The manager was there but the question failed.
    #[error("cannot query the service manager: {0}")]
    Failed(String),
    #[cfg_attr(
        any(target_os = "linux", target_os = "macos", windows),
        allow(dead_code)
    )]
    #[error("service checks are not supported on this platform")]
    Unsupported,
}

/// The state of `name` given what the manager said: CRIT when it is not
/// found, not running or not enabled as expected; WARN while it is still
/// starting; UNKNOWN when the manager could not be asked.
pub fn evaluate(
    name: &str,
    expect: Expect,
    status: Result<ServiceStatus, QueryError>,
) -> Evaluation {
    let status = match status {
        Ok(status) => status,
        Err(error) => {
            return Evaluation {
                item: name.to_owned(),
                state: CheckState::Unknown,
                message: format!("{name}: {error}"),
                metrics: Vec::new(),
            };
        }
    };
    let mut state = CheckState::Ok;
    if !status.found {
        state = CheckState::Crit;
    }
    if expect.running() {
        state = state.worst(match status.running {
            Running::Yes => CheckState::Ok,
            Running::Starting => CheckState::Warn,
            Running::No => CheckState::Crit,
        });
    }
    if expect.enabled() {
        state = state.worst(match status.enabled {
            Some(true) => CheckState::Ok,
            Some(false) => CheckState::Crit,
            None => CheckState::Unknown,
        });
    }
    let message = if state == CheckState::Ok {
        format!("{name}: {}", status.detail)
    } else {
        format!("{name}: {}, expected {expect}", status.detail)
    };
    let mut metrics = Vec::new();
    if status.found {
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        metrics.push(Metric::new(
            "running",
            flag(status.running == Running::Yes),
            "",
        ));
        if let Some(enabled) = status.enabled {
            metrics.push(Metric::new("enabled", flag(enabled), ""));
        }
    }
    Evaluation {
        item: name.to_owned(),
        state,
        message,
        metrics,
    }
}

// === impl ServiceProbe ===

/// One `[[checks.service]]` entry: followed through systemd's signals where
/// it can be (Linux), and run every `interval_secs`.
pub struct ServiceProbe {
    name: String,
    expect: Expect,
    interval: Duration,
    #[cfg(target_os = "linux")]
    follow: linux::Follow,
}

impl Probe for ServiceProbe {
    fn kind(&self) -> &'static str {
        "service"
    }

    fn item(&self) -> String {
        self.name.clone()
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    /// Windows: a fast SCM poll wakes the probe as soon as the state
    /// changes (`windows::watch`).
    #[cfg(windows)]
    fn wake(&mut self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        Some(windows::watch(&self.name))
    }

    /// Woken by systemd's signals for the unit (Linux, with a system bus).
    #[cfg(target_os = "linux")]
    fn wake(&mut self) -> Option<tokio::sync::mpsc::Receiver<()>> {
        Some(self.follow.wake())
    }

    fn run(&mut self) -> BoxFuture<'_, Vec<Evaluation>> {
        Box::pin(async move {
            #[cfg(target_os = "linux")]
            let status = self.follow.query(&self.name).await;
            #[cfg(not(target_os = "linux"))]
            let status = query(&self.name, self.expect.enabled()).await;
            vec![evaluate(&self.name, self.expect, status)]
        })
    }
}

#[cfg(target_os = "linux")]
mod linux {
    //! The Linux side of a service probe: systemd over D-Bus when it is on
    //! the system bus (read, then follow its signals), else `systemctl`.

    use std::sync::Arc;

    use tokio::sync::mpsc;
    use tokio::task::JoinHandle;
    use tracing::debug;

    use super::{QueryError, ServiceStatus, dbus, systemd};

    /// The bus, and this probe's signal subscription on it.
    pub struct Follow {
        bus: Arc<dbus::Bus>,
        /// Set by [`Follow::wake`] (the scheduler's probes; not `check --once`).
        wake: Option<mpsc::Sender<()>>,
        /// The forwarding task and the connection it listens on.
        task: Option<(zbus::Connection, JoinHandle<()>)>,
    }

    impl Follow {
        pub fn new(bus: Arc<dbus::Bus>) -> Self {
            Self {
                bus,
                wake: None,
                task: None,
            }
        }

        pub fn wake(&mut self) -> mpsc::Receiver<()> {
            let (tx, rx) = mpsc::channel(1);
            self.wake = Some(tx);
            rx
        }

        fn following(&self, conn: &zbus::Connection) -> bool {
            self.task.as_ref().is_some_and(|(c, task)| {
                c.unique_name() == conn.unique_name() && !task.is_finished()
            })
        }

        /// The unit's status: over D-Bus when systemd is there (following
        /// its signals from the first run on), else from `systemctl`.
        pub async fn query(&mut self, name: &str) -> Result<ServiceStatus, QueryError> {
            let Some(conn) = self.bus.connection().await else {
                debug!(service = name, "service polled with systemctl");
                return systemd::query(name).await;
            };
            match self.read(&conn, name).await {
                Ok(status) => status,
                Err(error) => {
                    debug!(%error, service = name, "system bus read failed, asking systemctl");
                    self.bus.lost(&conn).await;
                    if let Some((_, task)) = self.task.take() {
                        task.abort();
                    }
                    systemd::query(name).await
                }
            }
        }

        /// Loads the unit, subscribes to its signals when not yet (before
        /// reading, so that no change falls between the read and the
        /// subscription), then reads its state.
        async fn read(
            &mut self,
            conn: &zbus::Connection,
            name: &str,
        ) -> Result<Result<ServiceStatus, QueryError>, dbus::BusError> {
            let unit = dbus::unit_name(name);
            let path = dbus::load(conn, &unit).await?;
            if let Some(wake) = self.wake.clone()
                && !self.following(conn)
            {
                let task = dbus::follow(conn, &unit, &path, wake).await?;
                if let Some((_, old)) = self.task.replace((conn.clone(), task)) {
                    old.abort();
                }
            }
            let properties = dbus::properties(conn, &path).await?;
            if properties.load_state.is_empty() {
                return Ok(Err(QueryError::Failed(format!(
                    "systemd sent no unit state for {unit}"
                ))));
            }
            Ok(Ok(systemd::status(&properties)))
        }
    }

    impl Drop for Follow {
        fn drop(&mut self) {
            if let Some((_, task)) = self.task.take() {
                task.abort();
            }
        }
    }
}

#[cfg(windows)]
async fn query(name: &str, need_enabled: bool) -> Result<ServiceStatus, QueryError> {
    windows::query(name, need_enabled).await
}

#[cfg(target_os = "macos")]
async fn query(name: &str, need_enabled: bool) -> Result<ServiceStatus, QueryError> {
    launchd::query(name, need_enabled).await
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
async fn query(_name: &str, _need_enabled: bool) -> Result<ServiceStatus, QueryError> {
    Err(QueryError::Unsupported)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(running: Running, enabled: Option<bool>) -> ServiceStatus {
        ServiceStatus {
            found: true,
            running,
            enabled,
            detail: "detail".to_owned(),
        }
    }

    #[test]
    fn expectations_decide_the_state() {
        use CheckState::*;
        let cases = [
            (Expect::Running, status(Running::Yes, Some(false)), Ok),
            (Expect::Running, status(Running::No, Some(true)), Crit),
            (Expect::Running, status(Running::Starting, None), Warn),
            (Expect::Enabled, status(Running::No, Some(true)), Ok),
            (Expect::Enabled, status(Running::Yes, Some(false)), Crit),
            (Expect::Enabled, status(Running::Yes, None), Unknown),
            (
                Expect::RunningAndEnabled,
                status(Running::Yes, Some(true)),
                Ok,
            ),
            (
                Expect::RunningAndEnabled,
                status(Running::Yes, Some(false)),
                Crit,
            ),
            (
                Expect::RunningAndEnabled,
                status(Running::No, Some(true)),
                Crit,
            ),
            (Expect::Running, ServiceStatus::not_found(), Crit),
            (Expect::Enabled, ServiceStatus::not_found(), Crit),
        ];
        for (expect, s, want) in cases {
            let e = evaluate("nginx", expect, Result::Ok(s.clone()));
            assert_eq!(e.state, want, "{expect} with {s:?}");
            assert_eq!(e.item, "nginx");
        }
    }

    #[test]
    fn messages_and_metrics() {
        let ok = evaluate(
            "nginx",
            Expect::Running,
            Ok(ServiceStatus {
                detail: "active (running), enabled".into(),
                ..status(Running::Yes, Some(true))
            }),
        );
        assert_eq!(ok.message, "nginx: active (running), enabled");
        assert_eq!(
            ok.metrics,
            [
                Metric::new("running", 1.0, ""),
                Metric::new("enabled", 1.0, "")
            ]
        );
        let missing = evaluate("nginx", Expect::Running, Ok(ServiceStatus::not_found()));
        assert_eq!(missing.message, "nginx: not found, expected running");
        assert!(missing.metrics.is_empty());
    }

    #[test]
    fn a_missing_manager_is_unknown_not_crit() {
        let e = evaluate(
            "ssh.service",
            Expect::RunningAndEnabled,
            Err(QueryError::Unavailable(
                "systemd not available: System has not been booted with systemd".into(),
            )),
        );
        assert_eq!(e.state, CheckState::Unknown);
        assert_eq!(
            e.message,
            "ssh.service: systemd not available: System has not been booted with systemd"
        );
        let e = evaluate("x", Expect::Running, Err(QueryError::Unsupported));
        assert_eq!(e.state, CheckState::Unknown);
        assert!(e.message.contains("not supported on this platform"));
    }

    #[test]
    fn one_probe_per_entry() {
        let list: Vec<ServiceConfig> = ["name = \"nginx\"", "name = \"sshd\"\ninterval_secs = 30"]
            .iter()
            .map(|t| toml::from_str(t).expect("parses"))
            .collect();
        let probes = probes(&list);
        assert_eq!(probes[1].item(), "sshd");
        assert_eq!(probes[1].kind(), "service");
        assert_eq!(probes[1].interval(), Duration::from_secs(30));
    }
}

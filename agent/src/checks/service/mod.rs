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
//! Why polling and not systemd's D-Bus signals: on many hosts the agent
//! runs where there is no system bus or systemd is not PID 1 (containers,
//! WSL, minimal images — this build machine), and a D-Bus client would be a
//! second code path and a sizeable dependency for the same answer. One
//! `systemctl show` is one short-lived process (a few milliseconds), so a
//! 5 s poll costs far less than keeping a bus connection and its
//! subscriptions alive, and it works the same on every init system state.

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
    list.iter()
        .map(|c| -> Box<dyn Probe> {
            Box::new(ServiceProbe {
                name: c.name.clone(),
                expect: c.expect,
                interval: Duration::from_secs(c.interval_secs),
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

/// One `[[checks.service]]` entry, polled every `interval_secs`.
pub struct ServiceProbe {
    name: String,
    expect: Expect,
    interval: Duration,
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

    fn run(&mut self) -> BoxFuture<'_, Vec<Evaluation>> {
        Box::pin(async move {
            let status = query(&self.name, self.expect.enabled()).await;
            vec![evaluate(&self.name, self.expect, status)]
        })
    }
}

#[cfg(target_os = "linux")]
async fn query(name: &str, _need_enabled: bool) -> Result<ServiceStatus, QueryError> {
    systemd::query(name).await
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

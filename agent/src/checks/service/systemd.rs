//! Service state from systemd: `systemctl show --property=… <unit>` (no
//! shell, one short process per run), its `Key=Value` lines parsed by
//! [`parse_show`] and mapped to a [`ServiceStatus`] by [`status`]. When
//! systemd is not running (not PID 1, no bus) systemctl says so on stderr;
//! that is [`QueryError::Unavailable`], not a stopped service.

use super::{COMMAND_TIMEOUT, QueryError, Running, ServiceStatus};
use crate::checks::command::{self, CommandError, first_line};

const PROPERTIES: &str = "--property=ActiveState,SubState,UnitFileState,LoadState";

/// The unit properties we ask for; empty when systemctl did not print one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitProperties {
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    pub unit_file_state: String,
}

/// Parses `systemctl show` output: one `Key=Value` per line, in systemd's
/// order (not the requested one); other keys and lines are ignored.
pub fn parse_show(text: &str) -> UnitProperties {
    let mut p = UnitProperties::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().to_owned();
        match key.trim() {
            "LoadState" => p.load_state = value,
            "ActiveState" => p.active_state = value,
            "SubState" => p.sub_state = value,
            "UnitFileState" => p.unit_file_state = value,
            _ => {}
        }
    }
    p
}

/// What the properties mean. Running: `active`, `reloading`, `refreshing`;
/// starting: `activating` except `auto-restart` (a crash loop waiting for
/// its next try is down). Enabled: any unit-file state that starts the unit
/// at boot or when something needs it (`enabled`, `static`, `indirect`,
/// `generated`, …); `disabled`, `masked`, `linked` are not.
pub fn status(p: &UnitProperties) -> ServiceStatus {
    if p.load_state == "not-found" {
        return ServiceStatus::not_found();
    }
    let running = match p.active_state.as_str() {
        "active" | "reloading" | "refreshing" => Running::Yes,
        "activating" if p.sub_state != "auto-restart" => Running::Starting,
        _ => Running::No,
    };
    let enabled = match p.unit_file_state.as_str() {
        "enabled" | "enabled-runtime" | "static" | "indirect" | "generated" | "alias"
        | "transient" => Some(true),
        "disabled" | "masked" | "masked-runtime" | "linked" | "linked-runtime" | "bad" => {
            Some(false)
        }
        _ => None,
    };
    let mut detail = if p.sub_state.is_empty() {
        p.active_state.clone()
    } else {
        format!("{} ({})", p.active_state, p.sub_state)
    };
    if !p.unit_file_state.is_empty() {
        detail.push_str(", ");
        detail.push_str(&p.unit_file_state);
    }
    if !matches!(p.load_state.as_str(), "loaded" | "masked" | "") {
        detail.push_str(&format!(", load state {}", p.load_state));
    }
    ServiceStatus {
        found: true,
        running,
        enabled,
        detail,
    }
}

/// Why systemctl failed: systemd missing (not booted with it, no bus) is
/// [`QueryError::Unavailable`]; anything else is [`QueryError::Failed`].
pub fn failure(code: Option<i32>, stderr: &str) -> QueryError {
    let systemd_missing = [
        "not been booted with systemd",
        "Failed to connect to bus",
        "System has not been booted",
    ]
    .iter()
    .any(|m| stderr.contains(m));
    let reason = first_line(stderr);
    if systemd_missing {
        QueryError::Unavailable(format!("systemd not available ({reason})"))
    } else if reason.is_empty() {
        QueryError::Failed(match code {
            Some(code) => format!("systemctl exited with code {code}"),
            None => "systemctl was killed by a signal".to_owned(),
        })
    } else {
        QueryError::Failed(format!("systemctl: {reason}"))
    }
}

/// Asks systemd about `unit`.
pub async fn query(unit: &str) -> Result<ServiceStatus, QueryError> {
    let out = command::run(
        "systemctl",
        &["show", PROPERTIES, "--", unit],
        COMMAND_TIMEOUT,
    )
    .await
    .map_err(|e| match e {
        CommandError::NotFound { .. } => {
            QueryError::Unavailable("systemd not available (systemctl not found)".to_owned())
        }
        other => QueryError::Failed(other.to_string()),
    })?;
    if out.code != Some(0) {
        return Err(failure(out.code, &out.stderr));
    }
    let properties = parse_show(&out.stdout);
    if properties.load_state.is_empty() {
        return Err(QueryError::Failed(format!(
            "systemctl printed no unit state for {unit}"
        )));
    }
    Ok(status(&properties))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(text: &str) -> ServiceStatus {
        status(&parse_show(text))
    }

    #[test]
    fn recorded_outputs_map_to_statuses() {
        let s = fixture(include_str!("fixtures/systemctl-show-running-enabled.txt"));
        assert_eq!((s.running, s.enabled), (Running::Yes, Some(true)));
        assert_eq!(s.detail, "active (running), enabled");

        let s = fixture(include_str!("fixtures/systemctl-show-running-disabled.txt"));
        assert_eq!((s.running, s.enabled), (Running::Yes, Some(false)));

        let s = fixture(include_str!("fixtures/systemctl-show-failed.txt"));
        assert_eq!((s.found, s.running), (true, Running::No));
        assert_eq!(s.detail, "failed (failed), static");

        let s = fixture(include_str!("fixtures/systemctl-show-stopped-enabled.txt"));
        assert_eq!((s.running, s.enabled), (Running::No, Some(true)));
        assert_eq!(s.detail, "inactive (dead), enabled");

        let s = fixture(include_str!("fixtures/systemctl-show-auto-restart.txt"));
        assert_eq!(s.running, Running::No, "a crash loop is down");
        assert_eq!(s.detail, "activating (auto-restart), static");

        let s = fixture(include_str!("fixtures/systemctl-show-masked.txt"));
        assert_eq!((s.running, s.enabled), (Running::No, Some(false)));
        assert_eq!(s.detail, "inactive (dead), masked");

        let s = fixture(include_str!("fixtures/systemctl-show-not-found.txt"));
        assert_eq!(s, ServiceStatus::not_found());
    }

    #[test]
    fn parser_takes_keys_in_any_order_and_ignores_the_rest() {
        let p = parse_show(
            "UnitFileState=enabled\nnoise\nId=x.service\nLoadState=bad-setting\nActiveState=activating\nSubState=start\n",
        );
        assert_eq!(p.load_state, "bad-setting");
        let s = status(&p);
        assert_eq!(s.running, Running::Starting);
        assert_eq!(
            s.detail,
            "activating (start), enabled, load state bad-setting"
        );
    }

    #[test]
    fn systemd_offline_is_unavailable() {
        for stderr in [
            include_str!("fixtures/systemctl-show-offline.stderr.txt"),
            include_str!("fixtures/systemctl-show-bus-refused.stderr.txt"),
        ] {
            let e = failure(Some(1), stderr);
            assert!(
                matches!(&e, QueryError::Unavailable(m) if m.starts_with("systemd not available (")),
                "{e:?}"
            );
        }
        assert_eq!(
            failure(
                Some(1),
                include_str!("fixtures/systemctl-show-offline.stderr.txt")
            )
            .to_string(),
            "systemd not available (System has not been booted with systemd as init system (PID 1). Can't operate.)"
        );
        assert_eq!(
            failure(Some(1), "Access denied\n"),
            QueryError::Failed("systemctl: Access denied".into())
        );
        assert_eq!(
            failure(Some(4), ""),
            QueryError::Failed("systemctl exited with code 4".into())
        );
    }

    /// On this kind of machine systemd is not PID 1: the real command must
    /// say "not available", whatever the unit. Where systemd runs, the
    /// answer is a status instead, and that is fine too.
    #[tokio::test(flavor = "current_thread")]
    async fn real_systemctl_answers_or_is_unavailable() {
        match query("forewarn-test-nonexistent.service").await {
            Ok(s) => assert_eq!(s, ServiceStatus::not_found()),
            Err(QueryError::Unavailable(m)) => assert!(m.contains("systemd not available"), "{m}"),
            Err(e) => panic!("unexpected: {e}"),
        }
    }
}

//! Service state from launchd: `launchctl print system/<label>` for the run
//! state (its top-level `state = …` line) and, when `enabled` is expected,
//! `launchctl print-disabled system` (a label listed as disabled will not
//! load at boot; anything else in the system domain will).

#[cfg(target_os = "macos")]
use super::QueryError;
use super::{Running, ServiceStatus};
#[cfg(target_os = "macos")]
use crate::checks::command::{self, CommandError, first_line};

/// The run state from `launchctl print` output; `None` without a
/// top-level `state` line. Nested blocks (sockets, endpoints) have their
/// own `state` lines, deeper indented, which are skipped.
pub fn parse_print(text: &str) -> Option<ServiceStatus> {
    let state = text.lines().find_map(|line| {
        let rest = line.strip_prefix('\t')?;
        if rest.starts_with(char::is_whitespace) {
            return None;
        }
        rest.strip_prefix("state = ").map(str::trim)
    })?;
    let running = match state {
        "running" => Running::Yes,
        // Throttled (re)start: on its way up, or crash-looping.
        "spawn scheduled" => Running::Starting,
        _ => Running::No,
    };
    Some(ServiceStatus {
        found: true,
        running,
        enabled: None,
        detail: state.to_owned(),
    })
}

/// Whether `launchctl print` output says launchd does not know the label.
pub fn not_found(text: &str) -> bool {
    text.contains("Could not find service")
}

/// Whether `label` is disabled per `launchctl print-disabled` output
/// (`"label" => disabled`, or `=> true` on older macOS).
pub fn is_disabled(text: &str, label: &str) -> bool {
    let quoted = format!("\"{label}\"");
    text.lines().any(|line| {
        line.trim()
            .strip_prefix(&quoted)
            .and_then(|rest| rest.trim().strip_prefix("=>"))
            .is_some_and(|v| matches!(v.trim(), "disabled" | "true"))
    })
}

/// Merges the disabled list into a status from [`parse_print`].
pub fn with_disabled(mut status: ServiceStatus, disabled: bool) -> ServiceStatus {
    if status.found {
        status.enabled = Some(!disabled);
        status.detail = format!(
            "{}, {}",
            status.detail,
            if disabled { "disabled" } else { "enabled" }
        );
    }
    status
}

/// Asks launchd about `label` in the system domain.
#[cfg(target_os = "macos")]
pub async fn query(label: &str, need_enabled: bool) -> Result<ServiceStatus, QueryError> {
    let launchctl = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        command::run("launchctl", &args, super::COMMAND_TIMEOUT)
            .await
            .map_err(|e| match e {
                CommandError::NotFound { .. } => QueryError::Unavailable(
                    "launchd not available (launchctl not found)".to_owned(),
                ),
                other => QueryError::Failed(other.to_string()),
            })
    };
    let out = launchctl(vec!["print".into(), format!("system/{label}")]).await?;
    let text = format!("{}{}", out.stdout, out.stderr);
    if not_found(&text) {
        return Ok(ServiceStatus::not_found());
    }
    let status = parse_print(&out.stdout)
        .ok_or_else(|| QueryError::Failed(format!("launchctl print: {}", first_line(&text))))?;
    if !need_enabled {
        return Ok(status);
    }
    let disabled = launchctl(vec!["print-disabled".into(), "system".into()]).await?;
    Ok(with_disabled(status, is_disabled(&disabled.stdout, label)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_outputs_map_to_statuses() {
        let s = parse_print(include_str!("fixtures/launchctl-print-running.txt")).expect("state");
        assert_eq!((s.running, s.detail.as_str()), (Running::Yes, "running"));
        let s =
            parse_print(include_str!("fixtures/launchctl-print-not-running.txt")).expect("state");
        assert_eq!(
            (s.running, s.detail.as_str()),
            (Running::No, "not running"),
            "the socket's nested `state = active` is not the service's"
        );
        let missing = include_str!("fixtures/launchctl-print-not-found.txt");
        assert_eq!(parse_print(missing), None);
        assert!(not_found(missing));
    }

    #[test]
    fn disabled_lists_old_and_new() {
        for text in [
            include_str!("fixtures/launchctl-print-disabled.txt"),
            include_str!("fixtures/launchctl-print-disabled-legacy.txt"),
        ] {
            assert!(is_disabled(text, "com.apple.ftpd"));
            assert!(!is_disabled(text, "com.openssh.sshd"));
            assert!(!is_disabled(text, "com.example.unlisted"));
        }
        let s = with_disabled(
            parse_print(include_str!("fixtures/launchctl-print-running.txt")).expect("state"),
            false,
        );
        assert_eq!(s.enabled, Some(true));
        assert_eq!(s.detail, "running, enabled");
    }
}

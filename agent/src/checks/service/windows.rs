//! Service state from the Windows Service Control Manager through `sc.exe`:
//! `sc query <name>` for the run state, `sc qc <name>` for the start type
//! (only when `enabled` is expected). Chosen over a Windows-service crate to
//! keep the agent small: two short processes per run, and the fields we
//! read (`STATE : 4  RUNNING`, `START_TYPE : 2   AUTO_START`) are numeric
//! codes that do not change with the system language.

#[cfg(windows)]
use super::QueryError;
use super::{Running, ServiceStatus};
#[cfg(windows)]
use crate::checks::command::{self, CommandError, Output};

/// `sc` reports a service that does not exist with this Win32 error.
const ERROR_SERVICE_DOES_NOT_EXIST: &str = "1060";

/// The numeric code and its name from a line `KEY : <code>  <NAME> …`.
fn field<'a>(text: &'a str, key: &str) -> Option<(u32, &'a str)> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        let mut words = v.split_whitespace();
        let code = words.next()?.parse().ok()?;
        Some((code, words.next().unwrap_or_default()))
    })
}

fn not_found(text: &str) -> bool {
    text.contains(&format!("FAILED {ERROR_SERVICE_DOES_NOT_EXIST}"))
}

/// The run state from `sc query` output; `None` when it has no STATE line.
pub fn parse_query(text: &str) -> Option<ServiceStatus> {
    if not_found(text) {
        return Some(ServiceStatus::not_found());
    }
    let (code, name) = field(text, "STATE")?;
    let running = match code {
        4 => Running::Yes,
        // START_PENDING, CONTINUE_PENDING
        2 | 5 => Running::Starting,
        // STOPPED, STOP_PENDING, PAUSE_PENDING, PAUSED
        _ => Running::No,
    };
    Some(ServiceStatus {
        found: true,
        running,
        enabled: None,
        detail: name.to_owned(),
    })
}

/// The start type from `sc qc` output: enabled = starts at boot (BOOT,
/// SYSTEM or AUTO, delayed or not); DEMAND (manual) and DISABLED are not.
pub fn parse_start_type(text: &str) -> Option<(bool, String)> {
    let (code, name) = field(text, "START_TYPE")?;
    let delayed = text
        .lines()
        .any(|l| l.contains("START_TYPE") && l.contains("(DELAYED)"));
    let name = if delayed {
        format!("{name} (DELAYED)")
    } else {
        name.to_owned()
    };
    Some((code <= 2, name))
}

/// Merges the start type into a status from [`parse_query`].
pub fn with_start_type(mut status: ServiceStatus, start: Option<(bool, String)>) -> ServiceStatus {
    if let Some((enabled, name)) = start
        && status.found
    {
        status.enabled = Some(enabled);
        status.detail = format!("{}, {name}", status.detail);
    }
    status
}

#[cfg(windows)]
async fn sc(args: &[&str]) -> Result<Output, QueryError> {
    command::run("sc", args, super::COMMAND_TIMEOUT)
        .await
        .map_err(|e| match e {
            CommandError::NotFound { .. } => {
                QueryError::Unavailable("service manager not available (sc not found)".to_owned())
            }
            other => QueryError::Failed(other.to_string()),
        })
}

/// Asks the SCM about `name`.
#[cfg(windows)]
pub async fn query(name: &str, need_enabled: bool) -> Result<ServiceStatus, QueryError> {
    let out = sc(&["query", name]).await?;
    let status = parse_query(&out.stdout).ok_or_else(|| {
        QueryError::Failed(format!(
            "sc query: {}",
            command::first_line(&format!("{}{}", out.stdout, out.stderr))
        ))
    })?;
    if !need_enabled || !status.found {
        return Ok(status);
    }
    let qc = sc(&["qc", name]).await?;
    Ok(with_start_type(status, parse_start_type(&qc.stdout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sc_outputs_map_to_statuses() {
        let s = parse_query(include_str!("fixtures/sc-query-running.txt")).expect("state");
        assert_eq!(
            (s.found, s.running, s.detail.as_str()),
            (true, Running::Yes, "RUNNING")
        );
        let s = parse_query(include_str!("fixtures/sc-query-stopped.txt")).expect("state");
        assert_eq!(s.running, Running::No);
        let s = parse_query(include_str!("fixtures/sc-query-not-found.txt")).expect("state");
        assert_eq!(s, ServiceStatus::not_found());
        assert_eq!(parse_query("garbage"), None);
    }

    #[test]
    fn start_types() {
        let auto = parse_start_type(include_str!("fixtures/sc-qc-auto-delayed.txt"));
        assert_eq!(auto, Some((true, "AUTO_START (DELAYED)".to_owned())));
        let disabled = parse_start_type(include_str!("fixtures/sc-qc-disabled.txt"));
        assert_eq!(disabled, Some((false, "DISABLED".to_owned())));
        let s = with_start_type(
            parse_query(include_str!("fixtures/sc-query-stopped.txt")).expect("state"),
            auto,
        );
        assert_eq!(s.enabled, Some(true));
        assert_eq!(s.detail, "STOPPED, AUTO_START (DELAYED)");
    }
}

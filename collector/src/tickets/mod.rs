//! Ticket engine, first version: one open ticket per problem fingerprint.
//!
//! A problem is `tenant + agent + check + item`. A non-OK result opens a
//! ticket, or updates the open one when severity or text changed; an OK
//! result resolves it; a failure after resolution opens a new episode (a new
//! ticket). The decision is pure ([`plan`]); the store applies it inside the
//! same transaction that records the report, and its unique index guarantees
//! at most one open ticket per fingerprint even under concurrent writers.
//!
//! Confirmation, flapping, escalation and maintenance come with the ticket
//! engine issue; they hook in here.

pub mod engine;

use crate::domain::{CheckResult, CheckState};

/// Problem key within a tenant: `<agent_id>/<check>/<item>`.
pub fn fingerprint(agent_id: &str, check: &str, item: &str) -> String {
    format!("{agent_id}/{check}/{item}")
}

/// The open ticket for a fingerprint, as far as planning needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenTicket {
    pub id: i64,
    pub severity: CheckState,
    pub summary: String,
}

/// What to do with the ticket of one fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Nothing,
    Open {
        severity: CheckState,
        summary: String,
    },
    Update {
        id: i64,
        severity: CheckState,
        summary: String,
        detail: String,
    },
    Resolve {
        id: i64,
        detail: String,
    },
}

/// The one-line ticket summary for a result on `host`.
pub fn summary(host: &str, r: &CheckResult) -> String {
    let what = if r.item.is_empty() {
        r.check.clone()
    } else {
        format!("{} {}", r.check, r.item)
    };
    format!(
        "{} {what} on {host}: {}",
        r.state.as_str().to_uppercase(),
        r.message
    )
}

/// Decides what `result` means for the fingerprint's open ticket, if any.
pub fn plan(host: &str, result: &CheckResult, open: Option<&OpenTicket>) -> Action {
    match (result.state, open) {
        (CheckState::Ok, None) => Action::Nothing,
        (CheckState::Ok, Some(t)) => Action::Resolve {
            id: t.id,
            detail: format!("recovered: {}", result.message),
        },
        (state, None) => Action::Open {
            severity: state,
            summary: summary(host, result),
        },
        (state, Some(t)) => {
            let summary = summary(host, result);
            if t.severity == state && t.summary == summary {
                Action::Nothing
            } else {
                let detail = if t.severity == state {
                    result.message.clone()
                } else {
                    format!(
                        "severity {} -> {}: {}",
                        t.severity.as_str(),
                        state.as_str(),
                        result.message
                    )
                };
                Action::Update {
                    id: t.id,
                    severity: state,
                    summary,
                    detail,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(state: CheckState, message: &str) -> CheckResult {
        CheckResult {
            check: "disk".into(),
            item: "/var".into(),
            state,
            message: message.into(),
            metrics: vec![],
            since: 0,
        }
    }

    #[test]
    fn failure_opens_and_ok_resolves() {
        let crit = result(CheckState::Crit, "/var 97% used");
        let Action::Open { severity, summary } = plan("web1", &crit, None) else {
            panic!("expected open");
        };
        assert_eq!(severity, CheckState::Crit);
        assert_eq!(summary, "CRIT disk /var on web1: /var 97% used");
        let open = OpenTicket {
            id: 7,
            severity,
            summary,
        };
        assert_eq!(plan("web1", &crit, Some(&open)), Action::Nothing);
        let ok = result(CheckState::Ok, "/var 40% used");
        assert!(matches!(
            plan("web1", &ok, Some(&open)),
            Action::Resolve { id: 7, .. }
        ));
        assert_eq!(plan("web1", &ok, None), Action::Nothing);
    }

    #[test]
    fn severity_change_updates_same_ticket() {
        let open = OpenTicket {
            id: 3,
            severity: CheckState::Warn,
            summary: "x".into(),
        };
        let crit = result(CheckState::Crit, "/var 97% used");
        match plan("h", &crit, Some(&open)) {
            Action::Update {
                id: 3,
                severity: CheckState::Crit,
                detail,
                ..
            } => assert!(detail.starts_with("severity warn -> crit"), "{detail}"),
            other => panic!("expected update, got {other:?}"),
        }
    }

    #[test]
    fn unknown_opens_a_ticket() {
        let u = result(CheckState::Unknown, "statvfs failed");
        assert!(matches!(
            plan("h", &u, None),
            Action::Open {
                severity: CheckState::Unknown,
                ..
            }
        ));
    }
}

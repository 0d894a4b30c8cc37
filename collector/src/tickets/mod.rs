//! The ticket engine: a problem (`tenant + agent + check + item`) becomes at
//! most one open ticket.
//!
//! [`engine`] is the pure per-problem state machine (confirmation, recovery,
//! relapse grace, flapping, holds); [`policy`] holds rules, priorities, SLA
//! and liveness settings; [`tenant`] the per-tenant overrides of them. The
//! store runs the engine inside the transaction that records a report (or
//! in its once-a-second sweep) and its unique index guarantees one open
//! ticket per fingerprint even under concurrent writers.

pub mod engine;
pub mod policy;
pub mod tenant;

/// Problem key within a tenant: `<agent_id>/<check>/<item>`.
pub fn fingerprint(agent_id: &str, check: &str, item: &str) -> String {
    format!("{agent_id}/{check}/{item}")
}

//! The collector's decisions: a problem (`tenant + agent + check + item`)
//! becomes at most one open ticket, and everything around it.
//!
//! [`engine`] is the pure per-problem state machine (confirmation, recovery,
//! relapse grace, flapping, holds); [`policy`] holds rules, priorities, SLA
//! and liveness settings; [`tenant`] the per-tenant overrides of them.
//! [`Service`] runs them over any storage backend: [`report`] applies an
//! agent's reports and sessions, [`sweep`] is the once-a-second clock
//! (overdue agents, waiting problems, escalation), [`sites`] and [`groups`]
//! group outages, [`retire`] forgets checks no longer reported, [`actions`]
//! are operators' changes, [`kpis`] the figures. A ticket opens and
//! resolves in exactly one place each ([`lifecycle`]).

pub mod actions;
pub mod agents;
pub mod engine;
pub mod groups;
pub mod kpis;
pub mod lifecycle;
pub mod policy;
pub mod problems;
pub mod remote;
pub mod report;
pub mod retire;
pub mod service;
pub mod sites;
pub mod sweep;
pub mod tenant;
pub mod writer;

pub use service::Service;

/// Problem key within a tenant: `<agent_id>/<check>/<item>`.
pub fn fingerprint(agent_id: &str, check: &str, item: &str) -> String {
    format!("{agent_id}/{check}/{item}")
}

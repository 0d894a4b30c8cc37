//! `[limits]`: how much an agent may make the collector store, and how far
//! its clock may be off before it is flagged.
//!
//! **Series caps.** Every distinct `(check, item)` an agent reports is a
//! series: a row of latest state, and possibly a problem and a ticket. A
//! hostile or misconfigured agent could invent them without end, so new
//! series are capped per agent (`max_series_per_agent`) and per tenant
//! (`max_series_per_tenant`), with overrides per tenant
//! (`[limits.tenants.<tenant name>]`). The rules:
//!
//! - a result for a series that already exists is always applied, whatever
//!   the counts (lowering a cap never silences what is already watched);
//! - a result that would create a new series beyond a cap is dropped: not
//!   stored, no problem, no ticket;
//! - the report is still committed and acknowledged. Refusing it would make
//!   the agent resend it from its spool forever and block everything queued
//!   behind it;
//! - each drop is counted (`forewarn_rejected_total{reason="series_cap"}`),
//!   logged at warn at most once a minute per agent and audited
//!   (`agent.series_cap`) at most once an hour per agent.
//!
//! The count is `agents.series_count`, kept by triggers on `check_states` in
//! the report's own transaction; a tenant's is the sum over its agents, read
//! once per report that brings a new series (a per-tenant counter row would
//! be written by every agent of the tenant and serialize them on
//! PostgreSQL). A retired check's rows are deleted and uncounted.
//!
//! **Clock skew.** At session start the collector compares the hello's
//! `sent_at` (the agent's clock) with its own receive time; the offset is
//! stored on the agent and an agent off by more than
//! `clock_skew_tolerance_secs` is flagged (`clock_skewed` in the API) and
//! logged. Ticket decisions never use the agent's clock as such: its
//! timestamps are shifted into collector time (`tickets/report.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tracing::warn;

use crate::domain::Millis;
use crate::metrics::{METRICS, ReasonLabel};
use crate::store::{Audit, Storage};

/// The `[limits]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Distinct `(check, item)` series one agent may have; 0 = no limit.
    pub max_series_per_agent: u32,
    /// Distinct series all agents of one tenant may have; 0 = no limit.
    pub max_series_per_tenant: u32,
    /// An agent whose clock is off by more than this is flagged.
    pub clock_skew_tolerance_secs: u32,
    /// Per-tenant caps, `[limits.tenants.<tenant name>]`.
    pub tenants: BTreeMap<String, TenantLimits>,
}

/// A tenant's own series caps; an unset key keeps the global value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantLimits {
    pub max_series_per_agent: Option<u32>,
    pub max_series_per_tenant: Option<u32>,
}

/// The series caps in force for one tenant; `None` = no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesCaps {
    pub per_agent: Option<u32>,
    pub per_tenant: Option<u32>,
}

fn cap(n: u32) -> Option<u32> {
    (n > 0).then_some(n)
}

// === impl Limits ===

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_series_per_agent: 2000,
            max_series_per_tenant: 200_000,
            clock_skew_tolerance_secs: 30,
            tenants: BTreeMap::new(),
        }
    }
}

impl Limits {
    /// The caps of the tenant named `tenant`.
    pub fn series_caps(&self, tenant: &str) -> SeriesCaps {
        let o = self.tenants.get(tenant).cloned().unwrap_or_default();
        SeriesCaps {
            per_agent: cap(o.max_series_per_agent.unwrap_or(self.max_series_per_agent)),
            per_tenant: cap(o
                .max_series_per_tenant
                .unwrap_or(self.max_series_per_tenant)),
        }
    }

    /// Whether a clock `offset_ms` off (collector − agent) is beyond the
    /// tolerance; an unknown offset (an older agent) is not flagged.
    pub fn clock_skewed(&self, offset_ms: Option<i64>) -> bool {
        offset_ms
            .is_some_and(|o| o.unsigned_abs() > u64::from(self.clock_skew_tolerance_secs) * 1000)
    }

    /// Problems of the section, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1..=86_400).contains(&self.clock_skew_tolerance_secs) {
            problems.push(format!(
                "limits.clock_skew_tolerance_secs ({}) must be between 1 and 86400",
                self.clock_skew_tolerance_secs
            ));
        }
        for name in self.tenants.keys() {
            if name.trim().is_empty() {
                problems.push("limits.tenants: a tenant name must not be empty".to_string());
            }
        }
        problems
    }
}

// === dropped series: tell operators without flooding them ===

/// Warn about one agent's drops at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// Audit one agent's drops at most this often.
const AUDIT_EVERY: Duration = Duration::from_secs(3600);

/// Per agent: when it was last logged and audited, and drops since the log.
struct Notice {
    warned: Instant,
    audited: Instant,
    unlogged: u64,
}

static NOTICES: LazyLock<Mutex<HashMap<String, Notice>>> = LazyLock::new(Mutex::default);

/// What to say about `dropped` new drops of `agent_id` now: the count to
/// log (if a warn is due) and whether an audit entry is due.
fn due(agent_id: &str, dropped: u32, at: Instant) -> (Option<u64>, bool) {
    let Ok(mut notices) = NOTICES.lock() else {
        return (Some(u64::from(dropped)), false);
    };
    // Agents quiet for an audit period start afresh: the map stays as small
    // as the set of agents over their cap right now.
    notices.retain(|_, n| at.duration_since(n.audited) < AUDIT_EVERY);
    match notices.get_mut(agent_id) {
        None => {
            notices.insert(
                agent_id.to_string(),
                Notice {
                    warned: at,
                    audited: at,
                    unlogged: 0,
                },
            );
            (Some(u64::from(dropped)), true)
        }
        Some(n) => {
            n.unlogged += u64::from(dropped);
            let warn = (at.duration_since(n.warned) >= WARN_EVERY).then(|| {
                n.warned = at;
                std::mem::take(&mut n.unlogged)
            });
            (warn, false)
        }
    }
}

/// Reports that a committed report of `agent_id` had `dropped` results
/// for new series over a cap: counted every time, logged at most once a
/// minute and audited at most once an hour per agent.
pub async fn series_dropped(
    store: &dyn Storage,
    tenant_id: &str,
    agent_id: &str,
    dropped: u32,
    now: Millis,
) {
    if dropped == 0 {
        return;
    }
    // One count per dropped result (a report can drop several).
    METRICS
        .rejected
        .get_or_create(&ReasonLabel {
            reason: "series_cap",
        })
        .inc_by(u64::from(dropped));
    let (log, audit) = due(agent_id, dropped, Instant::now());
    if let Some(dropped) = log {
        warn!(
            agent_id,
            dropped, "agent over its series cap: results for new (check, item) pairs dropped"
        );
    }
    if audit
        && let Err(error) = store
            .record_audit(Audit {
                tenant_id: Some(tenant_id),
                at: now,
                actor: "collector",
                source: "",
                action: "agent.series_cap",
                target: &format!("agent/{agent_id}"),
                detail: &format!(
                    "{dropped} result(s) for new series dropped: the agent or its tenant \
                     is at its series cap (limits.max_series_per_agent / max_series_per_tenant)"
                ),
            })
            .await
    {
        warn!(%error, agent_id, "could not audit dropped series");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Limits {
        toml::from_str(text).expect("limits parse")
    }

    #[test]
    fn defaults_and_tenant_overrides() {
        let l = parse("");
        assert_eq!(l, Limits::default());
        assert!(l.problems().is_empty());
        let l = parse(
            "max_series_per_agent = 10\n[tenants.acme]\nmax_series_per_tenant = 0\n[tenants.big]\nmax_series_per_agent = 50\n",
        );
        assert_eq!(
            l.series_caps("other"),
            SeriesCaps {
                per_agent: Some(10),
                per_tenant: Some(200_000)
            }
        );
        assert_eq!(
            l.series_caps("acme"),
            SeriesCaps {
                per_agent: Some(10),
                per_tenant: None
            }
        );
        assert_eq!(l.series_caps("big").per_agent, Some(50));
    }

    #[test]
    fn bad_keys_are_named() {
        let err = toml::from_str::<Limits>("[tenants.acme]\nmax_series = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_series"), "{err}");
        let p = parse("clock_skew_tolerance_secs = 0\n").problems();
        assert!(p[0].contains("limits.clock_skew_tolerance_secs"), "{p:?}");
    }

    #[test]
    fn skew_beyond_the_tolerance_is_flagged() {
        let l = Limits::default();
        assert!(!l.clock_skewed(None));
        assert!(!l.clock_skewed(Some(30_000)));
        assert!(!l.clock_skewed(Some(-30_000)));
        assert!(l.clock_skewed(Some(30_001)));
        assert!(l.clock_skewed(Some(-600_000)));
        assert!(l.clock_skewed(Some(i64::MIN)));
    }

    #[test]
    fn notices_are_rate_limited_per_agent() {
        let t0 = Instant::now();
        let agent = "notice-test-agent";
        assert_eq!(due(agent, 3, t0), (Some(3), true));
        assert_eq!(due(agent, 2, t0 + Duration::from_secs(1)), (None, false));
        assert_eq!(due(agent, 4, t0 + Duration::from_secs(30)), (None, false));
        // A minute on: the drops since the last warn, in one line.
        assert_eq!(due(agent, 1, t0 + WARN_EVERY), (Some(7), false));
        assert_eq!(
            due("notice-test-other", 1, t0 + WARN_EVERY),
            (Some(1), true)
        );
        // An hour on: forgotten, so warned and audited again.
        assert_eq!(due(agent, 1, t0 + AUDIT_EVERY), (Some(1), true));
    }
}

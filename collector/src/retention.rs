//! Retention: what the collector forgets, and when (`[retention]`).
//!
//! Runs in the background, once a minute, on the leader only (the holder
//! of the sweeper lease, `tickets::sweep::SWEEPER_LEASE`). Every batch is a
//! short transaction that first takes the retention lock
//! ([`WriteTx::try_retention_lease`], an advisory lock of its own on
//! PostgreSQL, so pruning never makes the sweep skip a tick), which keeps
//! an old and a new leader from pruning at once while the lease changes
//! hands. The deletions are idempotent, so both save doubled work and lock
//! waits, not correctness.
//!
//! The cutoffs are computed here; the store only deletes rows older than
//! the cutoff it is given, at most a batch at a time.

use std::time::Duration;

use serde::Deserialize;
use tracing::{info, warn};

use crate::Result;
use crate::domain::{Millis, now_millis};
use crate::store::{Storage, WriteTx};

const DAY_MS: i64 = 24 * 3600 * 1000;
/// Rows deleted per transaction.
pub const BATCH: i64 = 1000;
/// How often a round runs.
const EVERY: Duration = Duration::from_secs(60);

/// `[retention]`: how long each kind of record is kept, in days.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Delivery records of agent reports: the window in which a resent
    /// report is recognised as a duplicate. Longer than an agent can be
    /// offline with a full spool.
    #[serde(default = "default_delivered_reports_days")]
    pub delivered_reports_days: u32,
    /// Delivered or failed notifications of resolved tickets.
    #[serde(default = "default_outbox_days")]
    pub outbox_days: u32,
    /// Resolved tickets, with their timelines and notifications.
    #[serde(default = "default_resolved_tickets_days")]
    pub resolved_tickets_days: u32,
    /// Operator actions and enrollments (kept longest).
    #[serde(default = "default_audit_days")]
    pub audit_days: u32,
    /// One-off maintenance windows and silences, after they end.
    #[serde(default = "default_maintenance_days")]
    pub maintenance_days: u32,
    /// Metric samples (the Host page's charts).
    #[serde(default = "default_metrics_days")]
    pub metrics_days: u32,
    /// At most one metric sample per agent per this many seconds (aligned
    /// windows: with the default 60, the first heartbeat of each minute).
    #[serde(default = "default_metric_sample_secs")]
    pub metric_sample_secs: u32,
}

fn default_delivered_reports_days() -> u32 {
    7
}
fn default_outbox_days() -> u32 {
    7
}
fn default_resolved_tickets_days() -> u32 {
    90
}
fn default_audit_days() -> u32 {
    365
}
fn default_maintenance_days() -> u32 {
    7
}
fn default_metrics_days() -> u32 {
    7
}
fn default_metric_sample_secs() -> u32 {
    60
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            delivered_reports_days: default_delivered_reports_days(),
            outbox_days: default_outbox_days(),
            resolved_tickets_days: default_resolved_tickets_days(),
            audit_days: default_audit_days(),
            maintenance_days: default_maintenance_days(),
            metrics_days: default_metrics_days(),
            metric_sample_secs: default_metric_sample_secs(),
        }
    }
}

// === impl RetentionConfig ===

impl RetentionConfig {
    /// Every bad value, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let keys = [
            ("delivered_reports_days", self.delivered_reports_days),
            ("outbox_days", self.outbox_days),
            ("resolved_tickets_days", self.resolved_tickets_days),
            ("audit_days", self.audit_days),
            ("maintenance_days", self.maintenance_days),
            ("metrics_days", self.metrics_days),
        ];
        let mut problems: Vec<String> = keys
            .iter()
            .filter(|(_, days)| !(1..=36_500).contains(days))
            .map(|(key, days)| format!("retention.{key} ({days}) must be between 1 and 36500"))
            .collect();
        if !(1..=86_400).contains(&self.metric_sample_secs) {
            problems.push(format!(
                "retention.metric_sample_secs ({}) must be between 1 and 86400",
                self.metric_sample_secs
            ));
        }
        problems
    }

    /// The metric sampling period, in milliseconds.
    pub fn metric_sample_ms(&self) -> Millis {
        i64::from(self.metric_sample_secs) * 1000
    }

    /// The cutoffs of a round at `now`: rows older than these go.
    pub fn cutoffs(&self, now: Millis) -> Cutoffs {
        let before = |days: u32| now - i64::from(days) * DAY_MS;
        Cutoffs {
            delivered_reports: before(self.delivered_reports_days),
            outbox: before(self.outbox_days),
            resolved_tickets: before(self.resolved_tickets_days),
            audit: before(self.audit_days),
            maintenance: before(self.maintenance_days),
            metrics: before(self.metrics_days),
        }
    }
}

/// Where one round cuts, per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    pub delivered_reports: Millis,
    pub outbox: Millis,
    pub resolved_tickets: Millis,
    pub audit: Millis,
    pub maintenance: Millis,
    pub metrics: Millis,
}

/// What one round deleted; `None` from [`run_once`] when another replica
/// holds the lease.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub delivered_reports: u64,
    pub outbox: u64,
    pub resolved_tickets: u64,
    pub audit: u64,
    pub maintenance: u64,
    pub metrics: u64,
}

impl Pruned {
    fn total(&self) -> u64 {
        self.delivered_reports
            + self.outbox
            + self.resolved_tickets
            + self.audit
            + self.maintenance
            + self.metrics
    }
}

/// The kinds, in the order a round prunes them: notifications of old
/// tickets before the tickets (which take the rest of theirs along).
#[derive(Debug, Clone, Copy)]
enum Kind {
    DeliveredReports,
    Outbox,
    ResolvedTickets,
    Audit,
    Maintenance,
    Metrics,
}

const KINDS: [Kind; 6] = [
    Kind::DeliveredReports,
    Kind::Outbox,
    Kind::ResolvedTickets,
    Kind::Audit,
    Kind::Maintenance,
    Kind::Metrics,
];

/// One round at the given cutoffs, `batch` rows per transaction; `None` if
/// another replica holds the retention lease.
pub async fn run_once(store: &dyn Storage, cut: &Cutoffs, batch: i64) -> Result<Option<Pruned>> {
    let mut pruned = Pruned::default();
    for kind in KINDS {
        loop {
            let mut tx = store.begin().await?;
            if !tx.try_retention_lease().await? {
                return Ok(None);
            }
            let n = prune(tx.as_mut(), kind, cut, batch).await?;
            tx.commit().await?;
            let slot = match kind {
                Kind::DeliveredReports => &mut pruned.delivered_reports,
                Kind::Outbox => &mut pruned.outbox,
                Kind::ResolvedTickets => &mut pruned.resolved_tickets,
                Kind::Audit => &mut pruned.audit,
                Kind::Maintenance => &mut pruned.maintenance,
                Kind::Metrics => &mut pruned.metrics,
            };
            *slot += n;
            if n < u64::try_from(batch).unwrap_or(0) {
                break;
            }
        }
    }
    Ok(Some(pruned))
}

async fn prune(tx: &mut dyn WriteTx, kind: Kind, cut: &Cutoffs, batch: i64) -> Result<u64> {
    match kind {
        Kind::DeliveredReports => tx.prune_delivered(cut.delivered_reports, batch).await,
        Kind::Outbox => tx.prune_outbox(cut.outbox, batch).await,
        Kind::ResolvedTickets => tx.prune_resolved_tickets(cut.resolved_tickets, batch).await,
        Kind::Audit => tx.prune_audit(cut.audit, batch).await,
        Kind::Maintenance => tx.prune_ended_windows(cut.maintenance, batch).await,
        Kind::Metrics => tx.prune_metric_samples(cut.metrics, batch).await,
    }
}

/// Prunes once a minute until the task is aborted.
pub async fn run(store: std::sync::Arc<dyn Storage>, cfg: RetentionConfig, replica: String) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Only the leader (the sweeper lease's holder) prunes.
        let leader = crate::tickets::sweep::SWEEPER_LEASE;
        match store.lease_holder(leader, now_millis()).await {
            Ok(Some(holder)) if holder == replica => {}
            Ok(_) => continue,
            Err(error) => {
                warn!(%error, "retention: reading the sweeper lease failed");
                continue;
            }
        }
        match run_once(store.as_ref(), &cfg.cutoffs(now_millis()), BATCH).await {
            Ok(Some(p)) if p.total() > 0 => info!(
                delivered_reports = p.delivered_reports,
                outbox = p.outbox,
                resolved_tickets = p.resolved_tickets,
                audit = p.audit,
                maintenance = p.maintenance,
                metrics = p.metrics,
                "retention pruned old records"
            ),
            Ok(_) => {}
            Err(error) => warn!(%error, "retention round failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_are_days_before_now() {
        let c = RetentionConfig::default().cutoffs(1000 * DAY_MS);
        assert_eq!(c.delivered_reports, 993 * DAY_MS);
        assert_eq!(c.outbox, 993 * DAY_MS);
        assert_eq!(c.resolved_tickets, 910 * DAY_MS);
        assert_eq!(c.audit, 635 * DAY_MS);
        assert_eq!(c.maintenance, 993 * DAY_MS);
        assert_eq!(c.metrics, 993 * DAY_MS);
    }

    #[test]
    fn bad_ages_name_their_key() {
        let cfg = RetentionConfig {
            audit_days: 0,
            outbox_days: 40_000,
            ..RetentionConfig::default()
        };
        let p = cfg.problems();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("retention.outbox_days"), "{p:?}");
        assert!(p[1].contains("retention.audit_days (0)"), "{p:?}");
        assert!(RetentionConfig::default().problems().is_empty());
    }

    #[test]
    fn bad_metric_keys_name_their_key() {
        for secs in [0, 86_401] {
            let cfg = RetentionConfig {
                metric_sample_secs: secs,
                metrics_days: 0,
                ..RetentionConfig::default()
            };
            let p = cfg.problems();
            assert_eq!(p.len(), 2, "{p:?}");
            assert!(p[0].contains("retention.metrics_days (0)"), "{p:?}");
            assert!(
                p[1].contains(&format!("retention.metric_sample_secs ({secs})")),
                "{p:?}"
            );
        }
    }
}

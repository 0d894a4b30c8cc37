//! Process metrics in the Prometheus text format, served at `/metrics`.
//!
//! One process-wide registry (`prometheus-client`): ingest, sessions and the
//! ticket engine's clock count into it without threading a handle through
//! every constructor. Counts only — no tenant, host or ticket data — so the
//! endpoint needs no API key; bind the HTTP listener accordingly.
//!
//! Label values are a fixed set of `&'static str` chosen in the code, never
//! strings from an agent or a request, so the number of series stays small
//! whatever the input.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChangeLabel {
    pub change: &'static str,
}

/// A ticket sink's delivery attempts by outcome. Sink names come from the
/// config, never from input, so the series stay few.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabel {
    pub sink: String,
    pub kind: &'static str,
    /// `delivered`, `retry`, `parked` or `gave_up`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabel {
    pub sink: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

/// Reasons input is refused (or held back) at the edge, for
/// `forewarn_rejected_total{reason}`; all of them are exported from the
/// start (at 0), so a rate over them works before the first refusal.
///
/// - `unauthenticated`: no or unusable client certificate
/// - `permission_denied`: unknown agent, tenant or identity mismatch
///   (certificate vs. store, hello vs. certificate)
/// - `revoked`: a revoked agent (refused, or its open session closed)
/// - `invalid_argument`: a message failing validation (`convert.rs`) or the
///   protocol (no hello, hello twice, empty message)
/// - `undecodable`: bytes that are no valid protobuf (e.g. nested past the
///   decoder's recursion limit)
/// - `oversized`: a message over `[grpc] max_message_bytes`
/// - `session_limit`: more concurrent sessions than one agent may hold
/// - `session_rate`: session opens over `[grpc] session_rate_*`
/// - `renew_rate`: renewals over `[grpc] renew_rate_*`
/// - `report_throttled`: a report held back by `[grpc] report_rate_*`
///   (delayed, not dropped: it is applied and acknowledged after the wait)
/// - `series_cap`: one result dropped because it would create a new
///   `(check, item)` series beyond its agent's or tenant's cap (`[limits]`);
///   the rest of its report is applied and acknowledged
/// - `enroll_refused`: an enrollment refused (bad, expired, used-up or
///   revoked token, bad CSR)
/// - `enroll_rate`: an enrollment refused up front because its address had
///   too many failures (`[grpc] enroll_max_failures`)
pub const REJECT_REASONS: &[&str] = &[
    "unauthenticated",
    "permission_denied",
    "revoked",
    "invalid_argument",
    "undecodable",
    "oversized",
    "session_limit",
    "session_rate",
    "renew_rate",
    "report_throttled",
    "series_cap",
    "enroll_refused",
    "enroll_rate",
];

/// Every metric of the collector.
pub struct Metrics {
    registry: Registry,
    /// Agent reports: committed, duplicate (already committed), rejected.
    pub reports: Family<ResultLabel, Counter>,
    /// Ticket changes made by the engine: opened, updated, resolved, escalated.
    pub ticket_changes: Family<ChangeLabel, Counter>,
    /// Agent sessions open right now.
    pub sessions_open: Gauge,
    /// 1 while the store's most recent write succeeded, 0 after a failed one
    /// (e.g. a full disk); see `health`.
    pub store_writable: Gauge,
    /// 1 while this collector's latest sweep held the sweeper lease (the
    /// replica that ran the engine's clock), 0 when another one held it or
    /// the sweep failed.
    pub sweeper_leader: Gauge,
    /// Sessions refused: unauthenticated, revoked, too many per agent.
    pub sessions_refused: Family<ResultLabel, Counter>,
    /// Input refused or held back at the edge, by reason ([`REJECT_REASONS`]).
    pub rejected: Family<ReasonLabel, Counter>,
    /// Ingest writes (hellos, reports, session ends) per group commit.
    pub write_batch: Histogram,
    /// Sink delivery attempts made by this collector, by sink and outcome.
    pub sink_deliveries: Family<DeliveryLabel, Counter>,
    /// Outbox rows waiting per sink (the whole store: every replica
    /// reports the same), set at each scrape.
    pub outbox_pending: Family<SinkLabel, Gauge>,
    /// Age of each sink's oldest waiting row, seconds (0 = none waiting).
    pub outbox_oldest_pending_seconds: Family<SinkLabel, Gauge>,
    /// Deliveries parked or given up per sink, waiting for an operator.
    pub outbox_failed: Family<SinkLabel, Gauge>,
}

/// The process-wide metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("forewarn");
    let reports = Family::<ResultLabel, Counter>::default();
    registry.register("reports", "Agent reports by result", reports.clone());
    let ticket_changes = Family::<ChangeLabel, Counter>::default();
    registry.register(
        "ticket_changes",
        "Ticket changes made by the engine",
        ticket_changes.clone(),
    );
    let store_writable = Gauge::default();
    store_writable.set(1);
    registry.register(
        "store_writable",
        "1 while the store's most recent write succeeded, 0 after a failed one",
        store_writable.clone(),
    );
    let sessions_open = Gauge::default();
    registry.register(
        "sessions_open",
        "Agent sessions open now",
        sessions_open.clone(),
    );
    let sweeper_leader = Gauge::default();
    registry.register(
        "sweeper_leader",
        "1 while this collector's latest sweep held the sweeper lease",
        sweeper_leader.clone(),
    );
    let sessions_refused = Family::<ResultLabel, Counter>::default();
    registry.register(
        "sessions_refused",
        "Agent sessions refused, by reason",
        sessions_refused.clone(),
    );
    let rejected = Family::<ReasonLabel, Counter>::default();
    registry.register(
        "rejected",
        "Agent input refused or held back at the edge, by reason (report_throttled: delayed, not dropped)",
        rejected.clone(),
    );
    for &reason in REJECT_REASONS {
        let _ = rejected.get_or_create(&ReasonLabel { reason });
    }
    let write_batch = Histogram::new(exponential_buckets(1.0, 2.0, 9));
    registry.register(
        "write_batch",
        "Ingest writes (hellos, reports, session ends) committed per transaction",
        write_batch.clone(),
    );
    let sink_deliveries = Family::<DeliveryLabel, Counter>::default();
    registry.register(
        "sink_deliveries",
        "Ticket sink delivery attempts by this collector, by sink and outcome (delivered, retry, parked, gave_up)",
        sink_deliveries.clone(),
    );
    let outbox_pending = Family::<SinkLabel, Gauge>::default();
    registry.register(
        "outbox_pending",
        "Outbox rows not yet delivered, per sink",
        outbox_pending.clone(),
    );
    let outbox_oldest_pending_seconds = Family::<SinkLabel, Gauge>::default();
    registry.register(
        "outbox_oldest_pending_seconds",
        "Age of the oldest outbox row not yet delivered, per sink (0: none)",
        outbox_oldest_pending_seconds.clone(),
    );
    let outbox_failed = Family::<SinkLabel, Gauge>::default();
    registry.register(
        "outbox_failed",
        "Outbox rows parked (refused) or given up, per sink, waiting for an operator",
        outbox_failed.clone(),
    );
    Metrics {
        registry,
        sink_deliveries,
        outbox_pending,
        outbox_oldest_pending_seconds,
        outbox_failed,
        reports,
        ticket_changes,
        sessions_open,
        store_writable,
        sweeper_leader,
        sessions_refused,
        rejected,
        write_batch,
    }
});

impl Metrics {
    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    pub fn write_batch(&self, writes: usize) {
        self.write_batch.observe(writes as f64);
    }

    /// Counts one delivery attempt of sink `sink` (of kind `kind`).
    pub fn sink_delivery(&self, sink: &str, kind: &'static str, record: &crate::store::Attempt) {
        let outcome = match record {
            crate::store::Attempt::Delivered => "delivered",
            crate::store::Attempt::Retry { .. } => "retry",
            crate::store::Attempt::Failed { error }
                if error.starts_with(crate::sinks::outbox::GAVE_UP) =>
            {
                "gave_up"
            }
            crate::store::Attempt::Failed { .. } => "parked",
        };
        self.sink_deliveries
            .get_or_create(&DeliveryLabel {
                sink: sink.to_string(),
                kind,
                outcome,
            })
            .inc();
    }

    /// Sets the outbox gauges from the store's `depth` at `now`; `sinks`
    /// (the configured ones) read 0 when nothing waits for them.
    pub fn outbox(
        &self,
        sinks: &[String],
        depth: &[crate::store::OutboxDepth],
        now: crate::domain::Millis,
    ) {
        self.outbox_pending.clear();
        self.outbox_oldest_pending_seconds.clear();
        self.outbox_failed.clear();
        for sink in sinks {
            let l = SinkLabel { sink: sink.clone() };
            self.outbox_pending.get_or_create(&l).set(0);
            self.outbox_oldest_pending_seconds.get_or_create(&l).set(0);
            self.outbox_failed.get_or_create(&l).set(0);
        }
        for d in depth {
            let l = SinkLabel {
                sink: d.sink.clone(),
            };
            self.outbox_pending.get_or_create(&l).set(d.pending);
            let age = d.oldest_pending_at.map_or(0, |at| (now - at).max(0) / 1000);
            self.outbox_oldest_pending_seconds
                .get_or_create(&l)
                .set(age);
            self.outbox_failed.get_or_create(&l).set(d.failed);
        }
    }

    pub fn report(&self, result: &'static str) {
        self.reports.get_or_create(&ResultLabel { result }).inc();
    }

    pub fn ticket_change(&self, change: &'static str, n: u32) {
        if n > 0 {
            self.ticket_changes
                .get_or_create(&ChangeLabel { change })
                .inc_by(u64::from(n));
        }
    }

    pub fn session_refused(&self, result: &'static str) {
        self.sessions_refused
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Counts one input refused (or held back) at the edge. `reason` should
    /// be one of [`REJECT_REASONS`] (add a new one there, so it is exported
    /// from the start and documented); never a string from the input.
    pub fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&ReasonLabel { reason }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_up_in_the_text_format() {
        METRICS.report("committed");
        METRICS.ticket_change("opened", 2);
        let text = METRICS.encode();
        assert!(
            text.contains("forewarn_reports_total{result=\"committed\"}"),
            "{text}"
        );
        assert!(
            text.contains("forewarn_ticket_changes_total{change=\"opened\"}"),
            "{text}"
        );
        assert!(text.contains("# EOF"), "{text}");
    }

    #[test]
    fn every_reject_reason_is_exported_from_the_start() {
        let text = METRICS.encode();
        for reason in REJECT_REASONS {
            assert!(
                text.contains(&format!("forewarn_rejected_total{{reason=\"{reason}\"}}")),
                "{reason}: {text}"
            );
        }
        METRICS.rejected("session_rate");
        let text = METRICS.encode();
        let line = text
            .lines()
            .find(|l| l.starts_with("forewarn_rejected_total{reason=\"session_rate\"}"))
            .expect("session_rate line");
        let n: u64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .expect("count");
        assert!(n >= 1, "{line}");
    }
}

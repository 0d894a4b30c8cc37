//! Process metrics in the Prometheus text format, served at `/metrics`.
//!
//! One process-wide registry (`prometheus-client`): ingest, sessions and the
//! ticket engine's clock count into it without threading a handle through
//! every constructor. Counts only — no tenant, host or ticket data — so the
//! endpoint needs no API key; bind the HTTP listener accordingly.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChangeLabel {
    pub change: &'static str,
}

/// Every metric of the collector.
pub struct Metrics {
    registry: Registry,
    /// Agent reports: committed, duplicate (already committed), rejected.
    pub reports: Family<ResultLabel, Counter>,
    /// Ticket changes made by the engine: opened, updated, resolved, escalated.
    pub ticket_changes: Family<ChangeLabel, Counter>,
    /// Agent sessions open right now.
    pub sessions_open: Gauge,
    /// Sessions refused: unauthenticated, revoked, too many per agent.
    pub sessions_refused: Family<ResultLabel, Counter>,
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
    let sessions_open = Gauge::default();
    registry.register(
        "sessions_open",
        "Agent sessions open now",
        sessions_open.clone(),
    );
    let sessions_refused = Family::<ResultLabel, Counter>::default();
    registry.register(
        "sessions_refused",
        "Agent sessions refused, by reason",
        sessions_refused.clone(),
    );
    Metrics {
        registry,
        reports,
        ticket_changes,
        sessions_open,
        sessions_refused,
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
}

//! What a sink is told: one ticket event, frozen in the outbox row.

use serde::{Deserialize, Serialize};

use crate::domain::{CheckState, Millis, Ticket, TicketState};

/// What a notification tells a receiver about its ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Opened, reopened, severity changed or escalated: needs someone.
    Firing,
    /// Someone is on it.
    Acknowledged,
    /// Gone (by itself or by hand).
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Acknowledged => "acknowledged",
            Status::Resolved => "resolved",
        }
    }

    /// Which ticket timeline events notify, and as what. Flapping marks,
    /// SLA breaches (an escalation follows them), assignments and notes stay
    /// in the timeline: a receiver gets what changes who must act.
    pub fn for_event(kind: &str) -> Option<Self> {
        match kind {
            "opened" | "reopened" | "updated" | "escalated" => Some(Status::Firing),
            // The re-notification of a ticket nobody acknowledged, and a
            // problem still failing after the PSA ticket was closed there
            // (a PSA sink opens a new one).
            "reminder" | "still_failing" => Some(Status::Firing),
            "acknowledged" => Some(Status::Acknowledged),
            "resolved" => Some(Status::Resolved),
            _ => None,
        }
    }
}

/// One ticket event for the sinks, as it was when the event happened.
/// Stored as JSON in the outbox, so retries send the same facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub status: Status,
    /// The timeline event: `opened`, `reopened`, `updated`, `escalated`,
    /// `acknowledged`, `resolved`.
    pub event: String,
    /// The timeline event's id: increases with every event.
    pub event_id: i64,
    pub detail: String,
    /// `engine` or the operator who acted.
    pub actor: String,
    /// When the event happened.
    pub at: Millis,
    pub ticket_id: i64,
    pub tenant_id: String,
    pub tenant_name: String,
    pub site: String,
    pub host: String,
    pub agent_id: String,
    pub check: String,
    pub item: String,
    pub severity: CheckState,
    pub priority: String,
    pub tier: u8,
    pub flapping: bool,
    pub state: TicketState,
    pub summary: String,
    pub opened_at: Millis,
    pub acknowledged_at: Option<Millis>,
    pub acknowledged_by: Option<String>,
    pub assignee: Option<String>,
    pub resolved_at: Option<Millis>,
    pub resolved_by: Option<String>,
}

/// The timeline event a notification is made of.
#[derive(Debug, Clone, Copy)]
pub struct EventFacts<'a> {
    pub id: i64,
    pub kind: &'a str,
    pub detail: &'a str,
    pub actor: &'a str,
    pub at: Millis,
}

impl Notification {
    /// The notification of `event` on `ticket` (already changed by it).
    pub fn new(status: Status, ticket: &Ticket, tenant_name: &str, event: EventFacts<'_>) -> Self {
        Self {
            status,
            event: event.kind.to_string(),
            event_id: event.id,
            detail: event.detail.to_string(),
            actor: event.actor.to_string(),
            at: event.at,
            ticket_id: ticket.id,
            tenant_id: ticket.tenant_id.clone(),
            tenant_name: tenant_name.to_string(),
            site: ticket.site.clone(),
            host: ticket.host.clone(),
            agent_id: ticket.agent_id.clone(),
            check: ticket.check.clone(),
            item: ticket.item.clone(),
            severity: ticket.severity,
            priority: ticket.priority.clone(),
            tier: ticket.tier,
            flapping: ticket.flapping,
            state: ticket.state,
            summary: ticket.summary.clone(),
            opened_at: ticket.opened_at,
            acknowledged_at: ticket.acknowledged_at,
            acknowledged_by: ticket.acknowledged_by.clone(),
            assignee: ticket.assignee.clone(),
            resolved_at: ticket.resolved_at,
            resolved_by: ticket.resolved_by.clone(),
        }
    }

    /// Stable for a ticket episode: a relapse within the grace period
    /// reopens the same ticket, so it keeps the key; a later failure is a
    /// new ticket with a new key. Receivers dedupe/correlate on it.
    pub fn episode_key(&self) -> String {
        format!("forewarn-{}", self.ticket_id)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A notification as the tests of every sink kind use it: ticket 42,
    /// `CRIT disk /data on db1` of tenant acme, just opened.
    pub fn sample() -> Notification {
        Notification {
            status: Status::Firing,
            event: "opened".into(),
            event_id: 7,
            detail: "opened (P1, L1): /data 97% used".into(),
            actor: "engine".into(),
            at: 1_800_000_000_000,
            ticket_id: 42,
            tenant_id: "t-1".into(),
            tenant_name: "acme".into(),
            site: "hq".into(),
            host: "db1".into(),
            agent_id: "a-1".into(),
            check: "disk".into(),
            item: "/data".into(),
            severity: CheckState::Crit,
            priority: "P1".into(),
            tier: 1,
            flapping: false,
            state: TicketState::Open,
            summary: "CRIT disk /data on db1: /data 97% used".into(),
            opened_at: 1_800_000_000_000,
            acknowledged_at: None,
            acknowledged_by: None,
            assignee: None,
            resolved_at: None,
            resolved_by: None,
        }
    }
}

//! Rows the storage traits read and write: plain data, no behaviour. The
//! layers above turn them into decisions (`tickets`, `maintenance`,
//! `sinks`); storage only maps them to and from SQL.

use serde::Serialize;

use crate::domain::{Millis, rfc3339};

/// The agent facts ticket decisions need, read (and on PostgreSQL locked)
/// inside a write transaction.
#[derive(Debug, Clone)]
pub struct AgentRow {
    pub tenant_id: String,
    /// The tenant's name: policy overrides are keyed by it.
    pub tenant: String,
    pub agent_id: String,
    pub site: String,
    pub host: String,
    pub role: String,
    pub overdue: bool,
    pub revoked: bool,
    pub interval_secs: i64,
    pub connected_at: Option<Millis>,
    /// Collector time minus the agent's clock at its last session start.
    pub clock_offset_ms: Option<i64>,
    /// When its latest metric sample was taken (`crate::history`).
    pub last_sample_at: Option<Millis>,
}

/// One metric sample of an agent, as stored (`crate::history` makes and
/// reads them): integers only, like every column, so CPU is in hundredths
/// of a percent and load averages in thousandths; swap is `None` on a host
/// without swap; `disks` is the per-mount JSON `crate::history` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricSample {
    pub tenant_id: String,
    pub agent_id: String,
    pub at: Millis,
    pub cpu_centipercent: i64,
    pub memory_used_bytes: i64,
    pub memory_total_bytes: i64,
    pub swap_used_bytes: Option<i64>,
    pub swap_total_bytes: Option<i64>,
    pub load1_milli: i64,
    pub load5_milli: i64,
    pub load15_milli: i64,
    pub disks: String,
}

/// What a new session records about the agent.
#[derive(Debug, Clone)]
pub struct SessionRow<'a> {
    pub facts: &'a crate::domain::HostFacts,
    pub boot_id: &'a str,
    pub interval_secs: i64,
    pub clock_offset_ms: Option<i64>,
}

/// A stored problem: the engine's state as JSON and the latest text.
#[derive(Debug, Clone)]
pub struct StoredProblem {
    pub engine: String,
    pub message: String,
    /// When the row was last written.
    pub updated_at: Millis,
}

/// A problem to save (insert or update by fingerprint).
#[derive(Debug, Clone)]
pub struct SaveProblem<'a> {
    pub tenant_id: &'a str,
    pub fingerprint: &'a str,
    pub agent_id: &'a str,
    pub check: &'a str,
    pub item: &'a str,
    pub engine: &'a str,
    pub message: &'a str,
    pub waiting: bool,
    pub now: Millis,
}

/// A problem waiting for time to pass (the sweep's work list).
#[derive(Debug, Clone)]
pub struct WaitingProblem {
    pub tenant_id: String,
    pub agent_id: String,
    pub check: String,
    pub item: String,
    pub stored: StoredProblem,
}

/// One check's latest result, to store.
#[derive(Debug, Clone)]
pub struct CheckStateWrite<'a> {
    pub tenant_id: &'a str,
    pub agent_id: &'a str,
    pub check: &'a str,
    pub item: &'a str,
    pub state: &'a str,
    pub message: &'a str,
    pub metrics: &'a str,
    pub since: Millis,
    pub observed_at: Millis,
    pub now: Millis,
}

/// A stored check state, as a report is compared with it.
#[derive(Debug, Clone)]
pub struct StoredCheck {
    pub check: String,
    pub item: String,
    pub state: String,
    /// The agent's time of the stored result.
    pub observed_at: Millis,
    /// When the collector last wrote it.
    pub updated_at: Millis,
}

/// What makes an agent an overdue candidate (see
/// [`super::AgentTx::overdue_candidates`]).
#[derive(Debug, Clone, Copy)]
pub struct OverdueCutoffs {
    pub intervals: i64,
    pub now: Millis,
    pub disconnected_before: Millis,
    pub seen_since: Millis,
}

/// An agent silent past its overdue time.
#[derive(Debug, Clone)]
pub struct OverdueAgent {
    pub agent_id: String,
    pub tenant_id: String,
    pub interval_secs: i64,
    pub last_seen_at: Millis,
    /// Its session ended without a goodbye (else it just went silent).
    pub disconnected: bool,
}

/// A ticket to insert; every column is decided above storage.
#[derive(Debug, Clone)]
pub struct NewTicket<'a> {
    pub tenant_id: &'a str,
    pub kind: &'a str,
    pub site: &'a str,
    pub agent_id: &'a str,
    pub host: &'a str,
    pub check: &'a str,
    pub item: &'a str,
    pub fingerprint: &'a str,
    pub severity: &'a str,
    pub summary: &'a str,
    pub priority: &'a str,
    pub tier: i64,
    pub flapping: bool,
    pub detected_at: Millis,
    pub ack_due_at: Millis,
    pub resolve_due_at: Millis,
    pub now: Millis,
}

/// An open, unacknowledged ticket whose acknowledgement is due.
#[derive(Debug, Clone)]
pub struct DueEscalation {
    pub id: i64,
    pub tenant_id: String,
    pub site: String,
    pub agent_id: String,
    pub check: String,
    pub priority: String,
    pub tier: i64,
    pub ack_breached: bool,
}

/// An open ticket past its resolve time, breach not yet recorded.
#[derive(Debug, Clone)]
pub struct LateTicket {
    pub id: i64,
    pub tenant_id: String,
    pub priority: String,
}

/// A site with overdue hosts or an open site ticket.
#[derive(Debug, Clone)]
pub struct SiteCount {
    pub tenant_id: String,
    pub site: String,
    pub down: i64,
    pub hosts: i64,
    /// The open site ticket, if any.
    pub ticket: Option<i64>,
}

/// An open check ticket that belongs to no open group.
#[derive(Debug, Clone)]
pub struct GroupMember {
    pub id: i64,
    pub host: String,
    pub site: String,
    pub severity: String,
    pub priority: String,
    pub detected_at: Option<Millis>,
}

/// A stored window or silence, as its columns hold it.
#[derive(Debug, Clone)]
pub struct WindowRow {
    pub id: i64,
    pub tenant_id: String,
    pub kind: String,
    pub site: Option<String>,
    pub agent_id: Option<String>,
    pub check: Option<String>,
    pub start_at: Option<Millis>,
    pub end_at: Option<Millis>,
    pub weekdays: Option<i64>,
    pub start_minute: Option<i64>,
    pub duration_secs: Option<i64>,
    /// Kind `rrule`: the rule text and its anchor date (`YYYY-MM-DD`).
    pub rrule: Option<String>,
    pub dtstart: Option<String>,
    pub reason: String,
    pub created_by: String,
    pub created_at: Millis,
    /// The tenant's time zone.
    pub time_zone: String,
}

/// A window or silence to insert (validated above storage).
#[derive(Debug, Clone)]
pub struct NewWindowRow<'a> {
    pub tenant_id: &'a str,
    pub kind: &'a str,
    pub site: Option<&'a str>,
    pub agent_id: Option<&'a str>,
    pub check: Option<&'a str>,
    pub start_at: Option<Millis>,
    pub end_at: Option<Millis>,
    pub weekdays: Option<i64>,
    pub start_minute: Option<i64>,
    pub duration_secs: Option<i64>,
    pub rrule: Option<&'a str>,
    pub dtstart: Option<&'a str>,
    pub reason: &'a str,
    pub created_by: &'a str,
    pub created_at: Millis,
}

/// An enrollment token as stored (its secret only as a hash).
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub tenant_id: String,
    pub tenant_name: String,
    pub site: String,
    pub role: String,
    pub expires_at: Millis,
    pub uses: i64,
    pub max_uses: i64,
    pub revoked_at: Option<Millis>,
}

/// One ticket's times and outcome, for KPIs.
#[derive(Debug, Clone)]
pub struct KpiRow {
    pub tenant_id: String,
    pub tenant_name: String,
    pub opened_at: Millis,
    pub detected_at: Option<Millis>,
    pub acknowledged_at: Option<Millis>,
    pub resolved_at: Option<Millis>,
    pub resolved_by: Option<String>,
    pub escalations: i64,
    pub ack_breached: bool,
    pub resolve_breached: bool,
}

/// An audit entry to append.
#[derive(Debug, Clone, Copy)]
pub struct Audit<'a> {
    pub tenant_id: Option<&'a str>,
    pub at: Millis,
    pub actor: &'a str,
    /// The caller's address, `cli`, or empty for the collector itself.
    pub source: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: &'a str,
}

/// A timeline event to append to a ticket.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    pub tenant_id: &'a str,
    pub ticket_id: i64,
    pub at: Millis,
    pub kind: &'a str,
    pub detail: &'a str,
    pub actor: &'a str,
}

/// An outbox row to insert: one delivery of one event to one sink.
#[derive(Debug, Clone, Copy)]
pub struct NewOutboxRow<'a> {
    pub key: &'a str,
    pub tenant_id: &'a str,
    pub sink: &'a str,
    pub ticket_id: i64,
    pub event_id: i64,
    pub event: &'a str,
    pub status: &'a str,
    pub payload: &'a str,
    pub at: Millis,
}

/// Where an outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutboxState {
    Pending,
    Delivered,
    Failed,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Delivered => "delivered",
            OutboxState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(OutboxState::Pending),
            "delivered" => Some(OutboxState::Delivered),
            "failed" => Some(OutboxState::Failed),
            _ => None,
        }
    }
}

/// A due delivery, as the loop gets it from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    /// Idempotency key: the same for every attempt.
    pub key: String,
    pub sink: String,
    pub tenant_id: String,
    pub ticket_id: i64,
    pub attempts: u32,
    pub created_at: Millis,
    /// The frozen notification, JSON.
    pub payload: String,
}

/// What became of one attempt, as the store records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    Retry {
        error: String,
        next_attempt_at: Millis,
    },
    Failed {
        error: String,
    },
}

/// One outbox row, for the API (`GET /api/v1/outbox`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutboxEntry {
    pub id: i64,
    pub key: String,
    pub sink: String,
    pub tenant_id: String,
    pub ticket_id: i64,
    pub event_id: i64,
    pub event: String,
    pub status: String,
    pub state: OutboxState,
    pub attempts: u32,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub created_at: Millis,
    /// Set while pending.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "rfc3339::option")]
    pub next_attempt_at: Option<Millis>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "rfc3339::option")]
    pub last_attempt_at: Option<Millis>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "rfc3339::option")]
    pub delivered_at: Option<Millis>,
    pub last_error: Option<String>,
}

/// The shared CA as stored: its certificate and its key sealed with the
/// key-encryption key (see `pki::kek`); the store never sees the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCa {
    pub cert_pem: String,
    /// `v1:` + base64 of nonce || AES-256-GCM ciphertext.
    pub key_sealed: String,
    /// `generated` or `imported` (from a collector's `pki/` files).
    pub origin: String,
    pub created_at: Millis,
}

/// An API key as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ApiKeyRow {
    pub id: String,
    pub tenant_id: Option<String>,
    pub tenant_name: Option<String>,
    pub name: String,
    pub role: String,
    #[serde(with = "crate::domain::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Millis,
    #[serde(with = "crate::domain::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub disabled_at: Option<Millis>,
    #[serde(with = "crate::domain::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Millis>,
    #[serde(with = "crate::domain::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Millis>,
}

/// A new operator.
#[derive(Debug, Clone, Copy)]
pub struct NewOperator<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub role: &'a str,
    pub created_at: Millis,
    pub created_by: &'a str,
}

/// An operator as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRow {
    pub id: String,
    pub username: String,
    pub password_hash: Option<String>,
    pub totp_secret: Option<String>,
    pub role: String,
    pub created_at: Millis,
    pub created_by: String,
    pub disabled_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    pub last_login_at: Option<Millis>,
    /// Granted tenant ids, sorted.
    pub tenant_ids: Vec<String>,
}

/// A one-time setup link (only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupLinkRow {
    pub token_hash: String,
    pub operator_id: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// A browser session (only the hash of its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSession {
    pub id_hash: String,
    pub operator_id: String,
    pub csrf_token: String,
    pub created_at: Millis,
    pub last_seen_at: Millis,
    pub source: String,
}

/// Which audit entries a dashboard list shows; `None` matches any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub tenant_id: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
}

/// How many tickets one host had in a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostTicketCount {
    pub agent_id: String,
    pub host: String,
    pub tickets: u64,
    /// Of those, opened CRIT.
    pub crit: u64,
}

/// One check's current state on one host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostCheckRow {
    pub agent_id: String,
    pub host: String,
    pub check: crate::domain::CheckStateRow,
}

/// A sink's own record of a ticket (a PSA ticket), kept beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SinkLink {
    pub sink: String,
    pub tenant_id: String,
    pub ticket_id: i64,
    /// The receiver's id for it (the PSA ticket number).
    pub external_id: String,
    /// Where to open it in the receiver's own UI, if it says.
    pub url: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub created_at: Millis,
    /// Set once the receiver's side closed it.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "rfc3339::option")]
    pub closed_at: Option<Millis>,
    /// Who closed it there (a PSA member), as the receiver names them.
    pub closed_by: Option<String>,
}

/// A link a delivery just made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSinkLink<'a> {
    pub sink: &'a str,
    pub tenant_id: &'a str,
    pub ticket_id: i64,
    pub external_id: &'a str,
    pub url: Option<&'a str>,
    pub created_at: Millis,
}

/// One sink's outbox backlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxDepth {
    pub sink: String,
    pub pending: i64,
    pub oldest_pending_at: Option<Millis>,
    /// Parked or given up.
    pub failed: i64,
}

/// An unacknowledged ticket and when it last notified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderCandidate {
    pub id: i64,
    pub tenant_id: String,
    pub tier: u8,
    pub last_notified_at: Millis,
}

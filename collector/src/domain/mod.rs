//! Domain types shared by ingest, store, ticket engine and API.
//!
//! Timestamps are Unix milliseconds (`i64`) inside the collector and RFC 3339
//! strings on the HTTP API.

use serde::{Deserialize, Serialize};

/// Unix milliseconds.
pub type Millis = i64;

/// Now, in Unix milliseconds.
pub fn now_millis() -> Millis {
    jiff::Timestamp::now().as_millisecond()
}

/// Which tenants a caller may see. Every store read takes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// An MSP-wide operator: every tenant.
    All,
    /// One tenant only.
    Tenant(String),
    /// The tenants granted to a technician or viewer (none: sees nothing).
    Tenants(Vec<String>),
}

impl Scope {
    /// Whether rows of `tenant_id` are visible in this scope.
    pub fn allows(&self, tenant_id: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Tenant(t) => t == tenant_id,
            Scope::Tenants(ts) => ts.iter().any(|t| t == tenant_id),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub created_at: Millis,
    /// IANA time zone recurring maintenance windows are read in.
    pub time_zone: String,
}

/// Check state, ordered by badness for OK < WARN < UNKNOWN < CRIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckState {
    Ok,
    Warn,
    Crit,
    Unknown,
}

impl CheckState {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckState::Ok => "ok",
            CheckState::Warn => "warn",
            CheckState::Crit => "crit",
            CheckState::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ok" => CheckState::Ok,
            "warn" => CheckState::Warn,
            "crit" => CheckState::Crit,
            "unknown" => CheckState::Unknown,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    pub unit: String,
    /// A plugin's thresholds and limits from its performance data (absent
    /// for the agent's own metrics and from older agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<Threshold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit: Option<Threshold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// One check's outcome as evaluated on the agent.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub check: String,
    pub item: String,
    pub state: CheckState,
    pub message: String,
    pub metrics: Vec<Metric>,
    pub since: Millis,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostFacts {
    pub hostname: String,
    pub os_name: String,
    pub os_version: String,
    pub kernel_version: String,
    pub arch: String,
    pub agent_version: String,
    pub cpu_count: u32,
    pub memory_total_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HostSnapshot {
    pub uptime_secs: u64,
    pub cpu_percent: f64,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    pub swap_used_bytes: u64,
    pub swap_total_bytes: u64,
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    pub disks: Vec<DiskUsage>,
    /// The agent's spool as its heartbeat reported it (absent from older
    /// agents): what it lost since it started, and whether it runs in
    /// memory because its disk failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spool: Option<SpoolStatus>,
}

/// Counts since the agent process started; they only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SpoolStatus {
    pub dropped_heartbeats: u64,
    pub dropped_state_changes: u64,
    pub damaged: u64,
    pub unreadable: u64,
    pub memory_only: bool,
    pub queued: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DiskUsage {
    pub mount_point: String,
    pub fs_type: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
}

/// A validated report from an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub boot_id: String,
    pub seq: u64,
    pub observed_at: Millis,
    pub payload: ReportPayload,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReportPayload {
    /// Checks whose state changed.
    StateChanges(Vec<CheckResult>),
    /// Liveness, a metrics snapshot and every check's current state.
    Heartbeat {
        snapshot: HostSnapshot,
        checks: Vec<CheckResult>,
    },
}

impl ReportPayload {
    pub fn results(&self) -> &[CheckResult] {
        match self {
            ReportPayload::StateChanges(r) => r,
            ReportPayload::Heartbeat { checks, .. } => checks,
        }
    }
}

/// An enrolled agent as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Agent {
    pub id: String,
    pub tenant_id: String,
    pub site: String,
    pub hostname: String,
    pub os_name: String,
    pub os_version: String,
    pub kernel_version: String,
    pub arch: String,
    pub agent_version: String,
    /// `server` or `workstation`: drives ticket priority.
    pub role: String,
    /// `enrolled` (never connected), `online`, `disconnected` (stream lost,
    /// not yet overdue) or `offline` (said goodbye).
    pub status: String,
    /// No report within the overdue time while expected online.
    pub overdue: bool,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub enrolled_at: Millis,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "rfc3339::option")]
    pub last_seen_at: Option<Millis>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub cert_not_after: Millis,
    pub revoked: bool,
    pub snapshot: Option<HostSnapshot>,
    /// Collector time minus the agent's clock at its last session start
    /// (ms; negative = the agent is ahead); `None` for agents that do not
    /// say (older versions) or have not connected.
    pub clock_offset_ms: Option<i64>,
    /// The offset is beyond `[limits] clock_skew_tolerance_secs`.
    pub clock_skewed: bool,
    /// Host facts from the latest hello (0: not reported).
    pub cpu_count: i64,
    pub memory_total_bytes: i64,
}

/// An agent with its checks' latest states.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AgentDetail {
    #[serde(flatten)]
    pub agent: Agent,
    pub checks: Vec<CheckStateRow>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CheckStateRow {
    pub check: String,
    pub item: String,
    pub state: CheckState,
    pub message: String,
    pub metrics: Vec<Metric>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub since: Millis,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub updated_at: Millis,
}

/// What the identity checks at session start need to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAuth {
    pub tenant_id: String,
    pub revoked: bool,
}

/// A new agent, created by enrollment.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub id: String,
    pub tenant_id: String,
    pub site: String,
    pub role: String,
    pub facts: HostFacts,
    pub cert_not_after: Millis,
}

/// A new enrollment token; only its hash is stored.
#[derive(Debug, Clone)]
pub struct NewEnrollmentToken {
    pub id: String,
    pub tenant_id: String,
    pub site: String,
    pub token_hash: String,
    pub expires_at: Millis,
    pub max_uses: u32,
    /// Role of the agents it enrolls.
    pub role: String,
}

/// What a valid enrollment token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub tenant_id: String,
    pub tenant_name: String,
    pub site: String,
    pub role: String,
}

/// An enrollment token as operators see it (never the secret or its hash).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct EnrollmentToken {
    pub id: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub site: String,
    pub role: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub created_at: Millis,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub expires_at: Millis,
    pub uses: u32,
    pub max_uses: u32,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "rfc3339::option::serialize")]
    pub revoked_at: Option<Millis>,
}

/// Ticket state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TicketState {
    Open,
    Resolved,
}

impl TicketState {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketState::Open => "open",
            TicketState::Resolved => "resolved",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(TicketState::Open),
            "resolved" => Some(TicketState::Resolved),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Ticket {
    pub id: i64,
    /// `check` (a check's problem), `agent` (liveness), `site` (outage) or
    /// `group` (the same check failing on many hosts of a tenant).
    pub kind: String,
    pub tenant_id: String,
    pub site: String,
    pub agent_id: String,
    pub host: String,
    pub check: String,
    pub item: String,
    /// tenant-independent problem key: `<agent_id>/<check>/<item>`.
    pub fingerprint: String,
    pub severity: CheckState,
    /// `P1` (most urgent) … `P4`.
    pub priority: String,
    /// Support tier: 1 = L1, 2 = L2, 3 = L3.
    pub tier: u8,
    pub flapping: bool,
    pub summary: String,
    pub state: TicketState,
    /// When the failure was first seen on the agent.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "rfc3339::option")]
    pub detected_at: Option<Millis>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub opened_at: Millis,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "rfc3339::option")]
    pub acknowledged_at: Option<Millis>,
    pub acknowledged_by: Option<String>,
    pub assignee: Option<String>,
    /// Not acknowledged by then: escalation to the next tier.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "rfc3339::option")]
    pub ack_due_at: Option<Millis>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "rfc3339::option")]
    pub resolve_due_at: Option<Millis>,
    pub escalations: u32,
    pub ack_breached: bool,
    pub resolve_breached: bool,
    /// `engine` (auto-resolved) or the operator who resolved it.
    pub resolved_by: Option<String>,
    /// The site outage or check group ticket this host's ticket belongs to.
    pub parent_id: Option<i64>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub updated_at: Millis,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "rfc3339::option")]
    pub resolved_at: Option<Millis>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TicketEvent {
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub at: Millis,
    /// `opened`, `updated`, `reopened`, `resolved`, `flapping`, `escalated`,
    /// `sla_breach`, `acknowledged`, `assigned`, `note`.
    pub kind: String,
    pub detail: String,
    /// `engine` or the operator (API key name).
    pub actor: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TicketDetail {
    #[serde(flatten)]
    pub ticket: Ticket,
    pub events: Vec<TicketEvent>,
}

/// What applying one report did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Already committed earlier (same agent, boot_id, seq): nothing changed.
    pub duplicate: bool,
    pub opened: u32,
    pub updated: u32,
    pub resolved: u32,
    /// Results dropped because they would have created a new series beyond
    /// a cap (`[limits]`); the rest of the report was applied.
    pub series_dropped: u32,
}

impl ApplyOutcome {
    pub(crate) fn count(&mut self, steps: &[crate::tickets::engine::Step]) {
        use crate::tickets::engine::Step;
        for s in steps {
            match s {
                Step::Open { .. } | Step::Reopen { .. } => self.opened += 1,
                Step::Update { .. } | Step::Flapping { .. } => self.updated += 1,
                Step::Resolve { .. } => self.resolved += 1,
            }
        }
    }
}

/// A new API key; only its hash is stored.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: String,
    /// `None`: MSP-wide key (all tenants).
    pub tenant_id: Option<String>,
    pub name: String,
    pub key_hash: String,
    pub role: Role,
}

/// What an operator or API key may do. Where: msp-admins see every
/// tenant; technicians and viewers see the tenants granted to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads only: usually a client's own IT contact for one tenant.
    Viewer,
    /// Works tickets, maintenance windows and silences of their tenants.
    Technician,
    /// Everything: tenants, tokens, policies, sinks, operators and keys.
    MspAdmin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::MspAdmin, Role::Technician, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::MspAdmin => "msp-admin",
            Role::Technician => "technician",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a role name; `admin` is the name keys had before roles were
    /// named for the MSP (still read from old rows).
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "msp-admin" | "admin" => Some(Role::MspAdmin),
            "technician" => Some(Role::Technician),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is calling: an operator (browser session), an API key or the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCaller {
    pub scope: Scope,
    /// How the caller appears in timelines and the audit log
    /// (`alice`, `key:ci-bot`, `cli:root`).
    pub name: String,
    pub role: Role,
    /// Where the call came from (a peer address, or `cli`), for the audit log.
    pub source: String,
}

impl ApiCaller {
    /// Viewers read; technicians and admins also change tickets.
    pub fn can_write(&self) -> bool {
        self.role >= Role::Technician
    }

    /// `PermissionDenied` naming the caller when it is read-only.
    pub fn require_write(&self) -> crate::Result<()> {
        if self.can_write() {
            Ok(())
        } else {
            Err(crate::Error::PermissionDenied(format!(
                "{:?} is read-only (role viewer); a technician or msp-admin may do this",
                self.name
            )))
        }
    }
}

/// An operator action on a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketAction {
    Acknowledge,
    Assign(String),
    Escalate,
    Note(String),
    Resolve,
}

/// The ticket after an action, and whether its problem is still there.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ActionOutcome {
    pub ticket: TicketDetail,
    /// Set when a resolved ticket's problem is still failing: the engine
    /// will reopen it.
    pub still_failing: Option<String>,
}

/// What one engine sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepOutcome {
    /// This collector held the sweeper lease for this sweep (with several
    /// collectors on one database, the others' sweeps at the same moment
    /// do nothing).
    pub leader: bool,
    pub opened: u32,
    pub resolved: u32,
    pub escalated: u32,
    pub overdue: u32,
    /// Unacknowledged tickets re-notified.
    pub reminded: u32,
}

/// One audit log entry.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AuditEntry {
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub at: Millis,
    pub tenant_id: Option<String>,
    pub actor: String,
    /// Where the change came from: the caller's address, `cli`, or empty
    /// for the collector's own changes.
    pub source: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

pub mod list;
pub mod perfdata;
pub mod rfc3339;

pub use list::{AgentFilter, Page, TicketFilter, TicketSort};
pub use perfdata::Threshold;

/// Mean and median of a duration, in seconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DurationStats {
    pub count: u64,
    pub mean_secs: f64,
    pub median_secs: f64,
}

/// KPIs of one tenant over `[from, to)` (tickets opened in that period).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TenantKpis {
    pub tenant_id: String,
    pub tenant_name: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub from: Millis,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub to: Millis,
    pub opened: u64,
    /// Resolved by the engine (the problem cleared).
    pub auto_resolved: u64,
    pub resolved_by_hand: u64,
    /// Escalated at least once.
    pub escalated: u64,
    /// Acknowledge and resolve breaches.
    pub sla_breaches: u64,
    /// Failure seen on the agent → ticket open.
    pub time_to_detect: Option<DurationStats>,
    /// Ticket open → acknowledged.
    pub time_to_acknowledge: Option<DurationStats>,
    /// Ticket open → resolved.
    pub time_to_resolve: Option<DurationStats>,
}

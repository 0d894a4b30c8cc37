//! The store: every piece of collector state, tenant-scoped.
//!
//! [`Store`] is the only way the rest of the collector touches data. Reads
//! take a [`Scope`], writes take the tenant they belong to, and every table
//! carries a tenant column. [`sqlite::SqliteStore`] is the embedded default;
//! a PostgreSQL backend implements the same trait and must pass the same
//! conformance suite (`store/conformance.rs`).

pub mod sqlite;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod conformance_limits;
#[cfg(test)]
mod conformance_maintenance;
#[cfg(test)]
mod conformance_outbox;
#[cfg(test)]
mod conformance_renewal;
#[cfg(test)]
mod conformance_tenants;
#[cfg(test)]
mod conformance_tokens;

use async_trait::async_trait;

use crate::Result;
use crate::domain::{
    ActionOutcome, Agent, AgentAuth, AgentDetail, ApiCaller, ApplyOutcome, AuditEntry, HostFacts,
    Millis, NewAgent, NewApiKey, NewEnrollmentToken, Report, Scope, SweepOutcome, Tenant,
    TenantKpis, Ticket, TicketAction, TicketDetail, TicketState, TokenGrant,
};

/// Every operation on collector state.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // --- tenants ---
    /// Creates a tenant; a duplicate name is `Error::Conflict`.
    async fn create_tenant(&self, name: &str) -> Result<Tenant>;
    async fn list_tenants(&self, scope: &Scope) -> Result<Vec<Tenant>>;
    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>>;

    // --- enrollment ---
    async fn create_enrollment_token(&self, token: &NewEnrollmentToken) -> Result<()>;
    /// Whether a token may enroll right now: `Unauthenticated` when unknown
    /// or expired, `PermissionDenied` when used up. Consumes nothing.
    async fn check_enrollment_token(&self, token_hash: &str, now: Millis) -> Result<TokenGrant>;
    /// Consumes one use of the token and creates the agent, atomically; the
    /// same refusals as [`Store::check_enrollment_token`] leave nothing behind.
    async fn enroll_agent(&self, token_hash: &str, now: Millis, agent: &NewAgent) -> Result<()>;
    /// Enrollment tokens (never their secrets), newest first, scoped.
    async fn list_enrollment_tokens(
        &self,
        scope: &Scope,
    ) -> Result<Vec<crate::domain::EnrollmentToken>>;
    /// Revokes a token (refused from now on) and audits it; viewers are
    /// refused, another tenant's token is `NotFound`, a second revoke is
    /// `Conflict`.
    async fn revoke_enrollment_token(
        &self,
        caller: &ApiCaller,
        id: &str,
        now: Millis,
    ) -> Result<crate::domain::EnrollmentToken>;
    /// Writes an enrollment outcome to the audit log; the tenant is the
    /// token's when `token_hash` names a known token, else none.
    async fn audit_enrollment(
        &self,
        token_hash: &str,
        now: Millis,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<()>;

    // --- agents ---
    /// Identity facts for the session handshake (not tenant-scoped: the
    /// caller compares the tenant with the one in the peer certificate).
    async fn agent_auth(&self, agent_id: &str) -> Result<Option<AgentAuth>>;
    /// Records a renewed client certificate: the agent's `cert_not_after`
    /// and an `agent.renewed` audit entry, together. A revoked or unknown
    /// agent is `PermissionDenied` and nothing is written.
    async fn renew_agent_cert(
        &self,
        tenant_id: &str,
        agent_id: &str,
        cert_not_after: Millis,
        now: Millis,
        actor: &str,
    ) -> Result<()>;
    /// Records a new session (hello): facts, boot id, heartbeat interval,
    /// online; resolves the agent's liveness ticket if it had one.
    /// `clock_offset_ms` is `now` minus the agent's clock at hello (`None`:
    /// the agent does not say); it is stored, shown as the agent's
    /// `clock_offset_ms`/`clock_skewed` and logged when beyond the
    /// tolerance. No ticket decision uses it.
    #[allow(clippy::too_many_arguments)]
    async fn start_session(
        &self,
        tenant_id: &str,
        agent_id: &str,
        boot_id: &str,
        facts: &HostFacts,
        interval_secs: u32,
        clock_offset_ms: Option<i64>,
        now: Millis,
    ) -> Result<()>;
    /// Records the end of a session: `clean` = the agent said goodbye.
    async fn end_session(
        &self,
        tenant_id: &str,
        agent_id: &str,
        clean: bool,
        now: Millis,
    ) -> Result<()>;
    async fn list_agents(&self, scope: &Scope) -> Result<Vec<Agent>>;
    async fn get_agent(&self, scope: &Scope, agent_id: &str) -> Result<Option<AgentDetail>>;

    // --- reports and tickets ---
    /// Commits one report: deduplicates by (agent, boot_id, seq), stores
    /// check states and the snapshot, and opens/updates/resolves tickets —
    /// all in one transaction. Only after this returns may the report be
    /// acknowledged.
    async fn apply_report(
        &self,
        tenant_id: &str,
        agent_id: &str,
        report: &Report,
        now: Millis,
    ) -> Result<ApplyOutcome>;
    async fn list_tickets(&self, scope: &Scope, state: Option<TicketState>) -> Result<Vec<Ticket>>;
    async fn get_ticket(&self, scope: &Scope, id: i64) -> Result<Option<TicketDetail>>;

    // --- operators ---
    async fn create_api_key(&self, key: &NewApiKey) -> Result<()>;
    /// Who an API key belongs to and what it may see, if the key exists.
    async fn api_caller(&self, key_hash: &str) -> Result<Option<ApiCaller>>;
    /// An operator action on a ticket, audited.
    async fn ticket_action(
        &self,
        caller: &ApiCaller,
        id: i64,
        action: &TicketAction,
        now: Millis,
    ) -> Result<ActionOutcome>;
    /// Revokes an agent: refused at its next handshake and report; its open
    /// sessions are closed by the process that serves them. Audited.
    async fn revoke_agent(&self, caller: &ApiCaller, agent_id: &str, now: Millis) -> Result<Agent>;
    /// Agents revoked at or after `since` (for closing their open sessions).
    async fn revoked_since(&self, since: Millis) -> Result<Vec<String>>;
    /// KPIs per tenant in scope, for tickets opened in `[from, to)`.
    async fn kpis(&self, scope: &Scope, from: Millis, to: Millis) -> Result<Vec<TenantKpis>>;
    /// Writes one audit entry (changes not made through another audited
    /// operation, e.g. a suspected cloned machine).
    async fn record_audit(
        &self,
        tenant_id: Option<&str>,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        now: Millis,
    ) -> Result<()>;
    /// Newest audit entries first.
    async fn audit_log(&self, scope: &Scope, limit: u32) -> Result<Vec<AuditEntry>>;

    // --- the engine's clock ---
    /// Marks overdue agents, runs time-based ticket decisions and
    /// escalations due at `now`. Idempotent for the same `now`.
    async fn sweep(&self, now: Millis) -> Result<SweepOutcome>;

    // --- maintenance windows and silences (crate::maintenance) ---
    /// Sets a tenant's IANA time zone (validated by the caller), audited.
    async fn set_tenant_time_zone(
        &self,
        caller: &ApiCaller,
        tenant_id: &str,
        time_zone: &str,
        now: Millis,
    ) -> Result<()>;
    /// Stores a validated window or silence, audited; refuses viewers and
    /// (as not found) a tenant or host outside the caller's scope.
    async fn create_maintenance(
        &self,
        caller: &ApiCaller,
        window: &crate::maintenance::NewWindow,
        now: Millis,
    ) -> Result<crate::maintenance::Window>;
    /// Windows of `kinds` in scope, newest first (ended ones are kept 7 days).
    async fn list_maintenance(
        &self,
        scope: &Scope,
        kinds: &[crate::maintenance::Kind],
    ) -> Result<Vec<crate::maintenance::Window>>;
    /// Removes a window or silence of one of `kinds`, audited.
    async fn delete_maintenance(
        &self,
        caller: &ApiCaller,
        id: i64,
        kinds: &[crate::maintenance::Kind],
        now: Millis,
    ) -> Result<crate::maintenance::Window>;

    // --- ticket sinks: the outbox (rows are written by the ticket changes) ---
    /// Replaces the configured sinks' routes. Every later ticket event that
    /// notifies is filed, in its own transaction, for each matching sink.
    async fn set_sink_routes(&self, routes: &[crate::sinks::SinkRoute]) -> Result<()>;
    /// Pending deliveries of `sink` due at `now`, oldest first, at most one
    /// per ticket (its oldest pending one), so a ticket's events leave in order.
    async fn outbox_due(
        &self,
        sink: &str,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<crate::sinks::outbox::OutboxItem>>;
    /// Records one delivery attempt of a pending row (attempts + 1).
    async fn outbox_attempted(
        &self,
        id: i64,
        attempt: &crate::sinks::outbox::Attempt,
        now: Millis,
    ) -> Result<()>;
    /// Outbox rows in scope, newest first.
    async fn list_outbox(
        &self,
        scope: &Scope,
        state: Option<crate::sinks::outbox::OutboxState>,
        limit: u32,
    ) -> Result<Vec<crate::sinks::outbox::OutboxEntry>>;
    /// Forgets finished deliveries older than `before` of resolved tickets.
    async fn prune_outbox(&self, before: Millis) -> Result<u64>;

    // --- housekeeping ---
    /// Forgets delivery records older than `before` (dedup window).
    async fn prune_delivered(&self, before: Millis) -> Result<u64>;
    /// Cheap liveness probe for `/healthz`.
    async fn ping(&self) -> Result<()>;
}

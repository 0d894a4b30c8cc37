//! Storage: queries and row mapping, per backend, behind small traits split
//! by concern. Nothing here decides: policy, thresholds, grouping and time
//! arithmetic live above (`tickets`, `maintenance`, `sinks`), written once
//! against these traits.
//!
//! - [`Storage`] is a backend's pool: reads and single-statement writes, plus
//!   [`Storage::begin`] for a [`WriteTx`].
//! - [`WriteTx`] is one write transaction; every change a decision makes in
//!   it commits together or not at all.
//! - Concurrency is part of the contract: [`AgentTx::agent_for_update`] and
//!   [`ProblemTx::problem_for_update`] take row locks on PostgreSQL (no-ops
//!   under SQLite's single writer), [`LeaseStore`] elects the one replica
//!   that sweeps, and [`WriteTx::try_sweeper_lease`] keeps two sweeps from
//!   ever overlapping (a lease changing hands mid-sweep). Conditional updates
//!   (`… WHERE tier = $n AND state = 'open'`) keep the decisions correct
//!   with several replicas.
//!
//! The SQL both backends share is in `sql/` (written with `$n` parameters,
//! which SQLite reads too) and included by each backend, so a query exists
//! once; a backend adds only its connection, migrations and dialect bits.

pub mod copy;
pub mod fleet;
pub mod postgres;
pub mod rows;
pub mod sqlite;

mod access;
mod dashboard;
mod links;
mod scope;
mod url;

pub use access::{KeyStore, OperatorStore};
pub use dashboard::DashboardStore;
pub use fleet::{
    FleetCheckCount, FleetRows, FleetStore, FleetTicketCount, Notifications, NotifyStore,
};
pub use links::{LinkStore, LinkTx};
pub use rows::*;
pub(crate) use scope::scope_binding;
pub use url::{StoreUrl, open};

use async_trait::async_trait;

use crate::Result;
use crate::domain::{
    Agent, AgentAuth, AgentDetail, AgentFilter, AuditEntry, EnrollmentToken, Millis, NewAgent,
    NewEnrollmentToken, Page, Scope, Tenant, Ticket, TicketDetail, TicketFilter, TicketState,
};

/// A storage backend: its pool, every read, and write transactions.
#[async_trait]
pub trait Storage:
    TenantStore
    + AgentStore
    + TicketStore
    + TokenStore
    + KeyStore
    + OperatorStore
    + OutboxStore
    + LinkStore
    + MaintenanceStore
    + AuditStore
    + DashboardStore
    + CaStore
    + LeaseStore
    + MetricStore
    + FleetStore
    + NotifyStore
    + Send
    + Sync
    + 'static
{
    /// Starts a write transaction.
    async fn begin(&self) -> Result<Box<dyn WriteTx>>;
    /// Cheap liveness probe for `/healthz`.
    async fn ping(&self) -> Result<()>;
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
}

// === pool-level traits, by concern ===

/// Leases of periodic work: one holder at a time per name, until the lease
/// expires unless its holder renews it.
#[async_trait]
pub trait LeaseStore {
    /// Takes or renews lease `name` for `holder` until `expires_at`; `false`
    /// if another holder's lease is still valid at `now`.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<bool>;
    /// Gives the lease up if `holder` has it (a clean shutdown).
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;
    /// Who holds lease `name` at `now`, if anyone.
    async fn lease_holder(&self, name: &str, now: Millis) -> Result<Option<String>>;
}

#[async_trait]
pub trait TenantStore {
    /// Creates a tenant; a duplicate name is `Error::Conflict`.
    async fn create_tenant(&self, name: &str) -> Result<Tenant>;
    async fn list_tenants(&self, scope: &Scope) -> Result<Vec<Tenant>>;
    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>>;
}

#[async_trait]
pub trait AgentStore {
    /// Identity facts for the session handshake (not tenant-scoped: the
    /// caller compares the tenant with the one in the peer certificate).
    async fn agent_auth(&self, agent_id: &str) -> Result<Option<AgentAuth>>;
    /// Agents in scope; `clock_skewed` is left false (the caller knows the
    /// tolerance).
    async fn list_agents(&self, scope: &Scope) -> Result<Vec<Agent>> {
        self.find_agents(scope, &AgentFilter::default(), Page::everything())
            .await
    }
    /// One page of the agents in scope that match `filter`, by hostname;
    /// `clock_skewed` is left false.
    async fn find_agents(
        &self,
        scope: &Scope,
        filter: &AgentFilter,
        page: Page,
    ) -> Result<Vec<Agent>>;
    async fn get_agent(&self, scope: &Scope, agent_id: &str) -> Result<Option<AgentDetail>>;
    /// Agents revoked at or after `since` (for closing their open sessions).
    async fn revoked_since(&self, since: Millis) -> Result<Vec<String>>;
}

#[async_trait]
pub trait TicketStore {
    /// The newest 1000 tickets in scope, of `state` if given.
    async fn list_tickets(&self, scope: &Scope, state: Option<TicketState>) -> Result<Vec<Ticket>> {
        let filter = TicketFilter {
            state,
            ..TicketFilter::default()
        };
        self.find_tickets(scope, &filter, Page::first(1000)).await
    }
    /// One page of the tickets in scope that match `filter`, in its order.
    async fn find_tickets(
        &self,
        scope: &Scope,
        filter: &TicketFilter,
        page: Page,
    ) -> Result<Vec<Ticket>>;
    async fn get_ticket(&self, scope: &Scope, id: i64) -> Result<Option<TicketDetail>>;
    /// Tickets in scope opened in `[from, to)`, for KPIs.
    async fn kpi_rows(&self, scope: &Scope, from: Millis, to: Millis) -> Result<Vec<KpiRow>>;
}

#[async_trait]
pub trait TokenStore {
    async fn create_enrollment_token(&self, token: &NewEnrollmentToken) -> Result<()>;
    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRow>>;
    /// Consumes one use of the token and creates the agent, atomically, if
    /// the token is unrevoked, unexpired at `now` and has uses left;
    /// `false` (nothing written) otherwise.
    async fn enroll_agent(&self, token_hash: &str, now: Millis, agent: &NewAgent) -> Result<bool>;
    /// Enrollment tokens (never their secrets), newest first, scoped.
    async fn list_enrollment_tokens(&self, scope: &Scope) -> Result<Vec<EnrollmentToken>> {
        self.find_enrollment_tokens(scope, None, Page::everything())
            .await
    }
    /// One page of the enrollment tokens in scope (of `tenant_id` if
    /// given), newest first.
    async fn find_enrollment_tokens(
        &self,
        scope: &Scope,
        tenant_id: Option<&str>,
        page: Page,
    ) -> Result<Vec<EnrollmentToken>>;
}

#[async_trait]
pub trait OutboxStore {
    /// Claims pending deliveries of `sink` due at `now` for `owner` (a
    /// replica id) until `claim_until`, and returns them oldest first: at
    /// most one per ticket (its oldest pending one), so a ticket's events
    /// leave in order. Rows claimed by another owner until after `now` are
    /// skipped; an expired claim (its replica died mid-delivery) is taken
    /// over; `owner`'s own claims are renewed. Atomic: two owners claiming
    /// at once never get the same row (`FOR UPDATE SKIP LOCKED` on
    /// PostgreSQL, the single writer on SQLite).
    async fn outbox_claim(
        &self,
        sink: &str,
        owner: &str,
        now: Millis,
        claim_until: Millis,
        limit: u32,
    ) -> Result<Vec<OutboxItem>>;
    /// Records one delivery attempt of a pending row claimed by `owner`
    /// (attempts + 1) and clears the claim. `false` (nothing written) if
    /// the row is no longer pending or `owner` lost its claim to another
    /// replica, whose attempt is the one that counts.
    async fn outbox_attempted(
        &self,
        id: i64,
        owner: &str,
        attempt: &Attempt,
        now: Millis,
    ) -> Result<bool>;
    /// Releases the claims `owner` holds on `sink`'s rows (a clean
    /// shutdown), so another replica takes them at once rather than when
    /// the claims expire.
    async fn outbox_release(&self, sink: &str, owner: &str) -> Result<u64>;
    /// The newest `limit` outbox rows in scope.
    async fn list_outbox(
        &self,
        scope: &Scope,
        state: Option<OutboxState>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>> {
        self.find_outbox(scope, state, None, Page::first(limit.into()))
            .await
    }
    /// One page of the outbox rows in scope (of `state` and `tenant_id` if
    /// given), newest first.
    async fn find_outbox(
        &self,
        scope: &Scope,
        state: Option<OutboxState>,
        tenant_id: Option<&str>,
        page: Page,
    ) -> Result<Vec<OutboxEntry>>;
    /// One outbox row in scope, by id (what an operator sends again).
    async fn outbox_entry(&self, scope: &Scope, id: i64) -> Result<Option<OutboxEntry>>;
    /// Pending rows per sink name.
    async fn pending_by_sink(&self) -> Result<Vec<(String, i64)>>;
    /// Every sink's backlog: pending rows, the oldest one's time, and
    /// failed (parked or given up) rows.
    async fn outbox_depth(&self) -> Result<Vec<OutboxDepth>>;
    /// Sends failed (parked or given-up) rows again: back to pending, due
    /// at `now`, attempts kept. Only rows in scope, of `sink` if given, of
    /// row `id` if given. The number requeued.
    async fn outbox_requeue(
        &self,
        scope: &Scope,
        sink: Option<&str>,
        id: Option<i64>,
        now: Millis,
    ) -> Result<u64>;
}

/// The CA every replica on one database shares (its key sealed by the
/// caller: the store never sees it in the clear).
#[async_trait]
pub trait CaStore {
    /// The stored CA, if there is one.
    async fn stored_ca(&self) -> Result<Option<StoredCa>>;
    /// Stores `ca` unless a CA is stored already; the stored one either
    /// way, so replicas starting at once agree on one CA.
    async fn store_ca_if_absent(&self, ca: &StoredCa) -> Result<StoredCa>;
}

/// Metric history: one agent's samples, for its charts.
#[async_trait]
pub trait MetricStore {
    /// The samples of `agent_id` taken in `[from, to)`, oldest first;
    /// `None` if there is no such agent in `scope` (another tenant's agent
    /// is not found, like everywhere).
    async fn agent_metrics(
        &self,
        scope: &Scope,
        agent_id: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Option<Vec<MetricSample>>>;
}

#[async_trait]
pub trait MaintenanceStore {
    /// Windows and silences in scope, newest first.
    async fn list_windows(&self, scope: &Scope) -> Result<Vec<WindowRow>>;
}

#[async_trait]
pub trait AuditStore {
    /// Appends one audit entry outside any other change.
    async fn record_audit(&self, entry: Audit<'_>) -> Result<()>;
    /// Appends an enrollment outcome; the tenant is the token's when
    /// `token_hash` names a known token, else none.
    async fn audit_enrollment(&self, token_hash: &str, entry: Audit<'_>) -> Result<()>;
    /// The newest `limit` audit entries in scope.
    async fn audit_log(&self, scope: &Scope, limit: u32) -> Result<Vec<AuditEntry>> {
        self.find_audit(scope, None, Page::first(limit.into()))
            .await
    }
    /// One page of the audit entries in scope (of `tenant_id` if given),
    /// newest first.
    async fn find_audit(
        &self,
        scope: &Scope,
        tenant_id: Option<&str>,
        page: Page,
    ) -> Result<Vec<AuditEntry>>;
}

// === the write transaction, by concern ===

/// One write transaction. Dropping it without [`WriteTx::commit`] rolls
/// everything back.
#[async_trait]
pub trait WriteTx:
    AgentTx
    + ProblemTx
    + TicketTx
    + GroupingTx
    + OutboxTx
    + LinkTx
    + MaintenanceTx
    + AuditTx
    + RetentionTx
    + MetricTx
    + Send
{
    async fn commit(self: Box<Self>) -> Result<()>;
    /// Whether this transaction holds the sweeper lease (released at its
    /// end): on PostgreSQL an advisory lock, so one replica sweeps at a
    /// time; always true under SQLite's single writer.
    async fn try_sweeper_lease(&mut self) -> Result<bool>;
    /// Whether this transaction holds the retention lease (released at its
    /// end), like [`WriteTx::try_sweeper_lease`] but its own lock, so long
    /// deletions never make the sweep skip a tick.
    async fn try_retention_lease(&mut self) -> Result<bool>;
}

#[async_trait]
pub trait AgentTx {
    /// The agent and its tenant's name, locked for this transaction on
    /// PostgreSQL (every decision about one agent's problems runs under it).
    async fn agent_for_update(
        &mut self,
        tenant_id: &str,
        agent_id: &str,
    ) -> Result<Option<AgentRow>>;
    /// Records a session start: facts, boot id, interval, online.
    async fn start_session(
        &mut self,
        tenant_id: &str,
        agent_id: &str,
        session: &SessionRow<'_>,
        now: Millis,
    ) -> Result<()>;
    /// Sets `status` and `last_seen_at = max(last_seen_at, now)` if the
    /// agent's latest session is the one started at `started_at` and the
    /// agent is not already offline; `false` if nothing changed.
    async fn end_session(
        &mut self,
        tenant_id: &str,
        agent_id: &str,
        started_at: Millis,
        status: &str,
        now: Millis,
    ) -> Result<bool>;
    /// Records a report: last seen, online, the snapshot if any, and when
    /// its metric sample was taken if it made one.
    async fn touch_agent(
        &mut self,
        tenant_id: &str,
        agent_id: &str,
        snapshot: Option<&str>,
        sampled_at: Option<Millis>,
        now: Millis,
    ) -> Result<()>;
    /// Records `(agent, boot_id, seq)` as delivered; `false` if it was already.
    async fn record_delivery(
        &mut self,
        tenant_id: &str,
        agent_id: &str,
        boot_id: &str,
        seq: i64,
        now: Millis,
    ) -> Result<bool>;
    async fn set_overdue(
        &mut self,
        tenant_id: &str,
        agent_id: &str,
        overdue_since: Option<Millis>,
    ) -> Result<()>;
    /// Online or disconnected, unrevoked agents not yet overdue, last seen
    /// at or after `seen_since`, whose `last_seen_at + interval_secs ·
    /// intervals` is before `now`, or that are disconnected and were last
    /// seen before `disconnected_before`.
    async fn overdue_candidates(
        &mut self,
        c: &OverdueCutoffs,
        limit: i64,
    ) -> Result<Vec<OverdueAgent>>;
    /// The agent's series count (kept by the database).
    async fn agent_series(&mut self, tenant_id: &str, agent_id: &str) -> Result<i64>;
    /// The tenant's series count: the sum over its agents.
    async fn tenant_series(&mut self, tenant_id: &str) -> Result<i64>;
    /// The tenant of `agent_id` if it is in `scope`.
    async fn agent_tenant(&mut self, scope: &Scope, agent_id: &str) -> Result<Option<String>>;
    /// Marks the agent revoked at `now`; `false` if it already was.
    async fn revoke_agent(&mut self, agent_id: &str, now: Millis) -> Result<bool>;
    /// Sets a renewed certificate's expiry; `false` if the agent is unknown
    /// or revoked.
    async fn set_cert_not_after(
        &mut self,
        tenant_id: &str,
        agent_id: &str,
        not_after: Millis,
    ) -> Result<bool>;
    async fn tenant_name(&mut self, tenant_id: &str) -> Result<Option<String>>;
    async fn tenant_id(&mut self, name: &str) -> Result<Option<String>>;
    /// Sets a tenant's time zone; `false` if there is no such tenant.
    async fn set_time_zone(&mut self, tenant_id: &str, time_zone: &str) -> Result<bool>;
    /// The tenant of enrollment token `id` if it is in `scope`.
    async fn token_tenant(&mut self, scope: &Scope, id: &str) -> Result<Option<String>>;
    /// Marks the token revoked; `false` if it already was.
    async fn revoke_token(&mut self, id: &str, now: Millis) -> Result<bool>;
    async fn token(&mut self, id: &str) -> Result<EnrollmentToken>;
}

#[async_trait]
pub trait ProblemTx {
    /// A problem by fingerprint, locked for this transaction on PostgreSQL.
    async fn problem_for_update(
        &mut self,
        tenant_id: &str,
        fingerprint: &str,
    ) -> Result<Option<StoredProblem>>;
    async fn save_problem(&mut self, p: &SaveProblem<'_>) -> Result<()>;
    async fn delete_problem(&mut self, tenant_id: &str, fingerprint: &str) -> Result<()>;
    /// Deletes every problem of an agent (revoked: nothing more to decide).
    async fn delete_agent_problems(&mut self, tenant_id: &str, agent_id: &str) -> Result<()>;
    /// Problems waiting for time to pass, at most `limit`.
    async fn waiting_problems(&mut self, limit: i64) -> Result<Vec<WaitingProblem>>;
    /// Every problem of an agent with its fingerprint, locked for this
    /// transaction on PostgreSQL: one query for a whole report.
    async fn agent_problems_for_update(
        &mut self,
        tenant_id: &str,
        agent_id: &str,
    ) -> Result<Vec<(String, StoredProblem)>>;
    /// Every stored check state of an agent (what a report is compared with).
    async fn agent_check_states(&mut self, agent_id: &str) -> Result<Vec<StoredCheck>>;
    /// Inserts or updates check states, all in one statement.
    async fn upsert_check_states(&mut self, states: &[CheckStateWrite<'_>]) -> Result<()>;
    async fn delete_check_state(&mut self, agent_id: &str, check: &str, item: &str) -> Result<()>;
}

#[async_trait]
pub trait TicketTx {
    async fn insert_ticket(&mut self, t: &NewTicket<'_>) -> Result<i64>;
    /// Resolves an open ticket; `false` if it was not open.
    async fn resolve_ticket(&mut self, id: i64, by: &str, now: Millis) -> Result<bool>;
    async fn reopen_ticket(
        &mut self,
        id: i64,
        severity: &str,
        summary: &str,
        now: Millis,
    ) -> Result<()>;
    async fn update_ticket(
        &mut self,
        id: i64,
        severity: &str,
        summary: &str,
        priority: &str,
        now: Millis,
    ) -> Result<()>;
    async fn set_flapping(&mut self, id: i64, flapping: bool, now: Millis) -> Result<()>;
    /// Sets the summary; `false` if it was already that.
    async fn set_summary(&mut self, id: i64, summary: &str, now: Millis) -> Result<bool>;
    async fn set_parent(&mut self, id: i64, parent: i64, now: Millis) -> Result<()>;
    /// A ticket in scope, locked for this transaction on PostgreSQL.
    async fn ticket_for_update(&mut self, scope: &Scope, id: i64) -> Result<Option<Ticket>>;
    /// A ticket with its tenant's name.
    async fn ticket_with_tenant(&mut self, id: i64) -> Result<(Ticket, String)>;
    /// The open ticket of a fingerprint, if any.
    async fn open_ticket(&mut self, tenant_id: &str, fingerprint: &str) -> Result<Option<i64>>;
    async fn acknowledge(&mut self, id: i64, by: &str, now: Millis) -> Result<()>;
    async fn assign(&mut self, id: i64, who: &str, now: Millis) -> Result<()>;
    /// One tier up from `tier` if still open, unacknowledged and at `tier`;
    /// records the acknowledgement breach. `false` if it changed meanwhile.
    async fn escalate_unacknowledged(
        &mut self,
        id: i64,
        tier: i64,
        ack_due_at: Millis,
        now: Millis,
    ) -> Result<bool>;
    /// One tier up by an operator; a fresh acknowledgement due time unless
    /// it is acknowledged.
    async fn escalate_by_hand(&mut self, id: i64, ack_due_at: Millis, now: Millis) -> Result<()>;
    /// Records the acknowledgement breach at the top tier: no timer left.
    async fn close_ack_timer(&mut self, id: i64) -> Result<()>;
    async fn mark_resolve_breached(&mut self, id: i64) -> Result<()>;
    /// Moves an open, unacknowledged ticket's due time to `due` if it was
    /// due by `now`; `false` otherwise.
    async fn defer_ack_due(&mut self, id: i64, due: Millis, now: Millis) -> Result<bool>;
    /// Open unacknowledged tickets due by `now` whose open group parent
    /// does not carry the SLA for them.
    async fn due_escalations(&mut self, now: Millis, limit: i64) -> Result<Vec<DueEscalation>>;
    /// Open tickets past their resolve time, breach not yet recorded.
    async fn late_tickets(&mut self, now: Millis, limit: i64) -> Result<Vec<LateTicket>>;
    /// Appends a timeline event; its id.
    async fn add_event(&mut self, e: &NewEvent<'_>) -> Result<i64>;
}

/// Queries of site outage and same-check grouping.
#[async_trait]
pub trait GroupingTx {
    /// Sites with overdue hosts or an open site ticket (`site_fingerprint`
    /// is the prefix of a site ticket's fingerprint, e.g. `site/`).
    async fn site_counts(&mut self, site_prefix: &str) -> Result<Vec<SiteCount>>;
    async fn overdue_hostnames(
        &mut self,
        tenant_id: &str,
        site: &str,
        limit: i64,
    ) -> Result<Vec<String>>;
    async fn earliest_overdue(&mut self, tenant_id: &str, site: &str) -> Result<Option<Millis>>;
    /// Links the site's open, unlinked liveness tickets to `parent`.
    async fn link_site_liveness(&mut self, tenant_id: &str, site: &str, parent: i64) -> Result<()>;
    /// Check kinds + items failing on at least `min_hosts` hosts in
    /// tickets opened since `since` and in no open group, and open groups
    /// an open ticket has not joined yet.
    async fn group_candidates(
        &mut self,
        tenant_id: &str,
        since: Millis,
        min_hosts: i64,
    ) -> Result<Vec<(String, String)>>;
    async fn group_members(
        &mut self,
        tenant_id: &str,
        check: &str,
        item: &str,
    ) -> Result<Vec<GroupMember>>;
    /// Distinct hosts of the parent's check tickets.
    async fn group_hosts(&mut self, parent: i64) -> Result<Vec<String>>;
    async fn ticket_severity(&mut self, id: i64) -> Result<String>;
    /// Open group parents none of whose members is open: (id, tenant).
    async fn finished_groups(&mut self) -> Result<Vec<(i64, String)>>;
}

#[async_trait]
pub trait OutboxTx {
    /// Sinks that already have a row for the ticket.
    async fn sinks_told(&mut self, ticket_id: i64) -> Result<Vec<String>>;
    async fn insert_outbox(&mut self, row: &NewOutboxRow<'_>) -> Result<()>;
}

#[async_trait]
pub trait MaintenanceTx {
    /// Windows of the tenant that can cover an agent of `site`.
    async fn windows_for_agent(
        &mut self,
        tenant_id: &str,
        site: &str,
        agent_id: &str,
    ) -> Result<Vec<WindowRow>>;
    /// Every weekly window, and one-off windows covering `now`.
    async fn active_windows(&mut self, now: Millis) -> Result<Vec<WindowRow>>;
    async fn insert_window(&mut self, w: &NewWindowRow<'_>) -> Result<i64>;
    async fn window(&mut self, scope: &Scope, id: i64) -> Result<Option<WindowRow>>;
    async fn delete_window(&mut self, tenant_id: &str, id: i64) -> Result<()>;
    /// Whether the tenant has this agent.
    async fn agent_exists(&mut self, tenant_id: &str, agent_id: &str) -> Result<bool>;
}

/// Metric history, written in the report's transaction.
#[async_trait]
pub trait MetricTx {
    /// Stores one sample; a sample already stored for the same agent and
    /// instant is kept as it is.
    async fn insert_metric_sample(&mut self, sample: &MetricSample) -> Result<()>;
}

#[async_trait]
pub trait AuditTx {
    async fn insert_audit(&mut self, entry: Audit<'_>) -> Result<()>;
}

/// Retention: each deletes at most `limit` rows older than `before` (the
/// caller computes the cutoff and runs batches until one comes back short).
#[async_trait]
pub trait RetentionTx {
    /// Delivery records (the report dedup window) received before `before`.
    async fn prune_delivered(&mut self, before: Millis, limit: i64) -> Result<u64>;
    /// Delivered or failed outbox rows created before `before`, of resolved
    /// tickets only (an open ticket's rows say which sinks know it).
    async fn prune_outbox(&mut self, before: Millis, limit: i64) -> Result<u64>;
    /// Tickets resolved before `before`, with their events and outbox rows.
    /// A group or site parent goes only once no ticket points at it (its
    /// members go first). The audit log is not touched.
    async fn prune_resolved_tickets(&mut self, before: Millis, limit: i64) -> Result<u64>;
    /// Audit entries written before `before`.
    async fn prune_audit(&mut self, before: Millis, limit: i64) -> Result<u64>;
    /// One-off windows and silences that ended before `before`.
    async fn prune_ended_windows(&mut self, before: Millis, limit: i64) -> Result<u64>;
    /// Metric samples taken before `before`.
    async fn prune_metric_samples(&mut self, before: Millis, limit: i64) -> Result<u64>;
}

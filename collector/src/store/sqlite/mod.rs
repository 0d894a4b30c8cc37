//! Embedded SQLite store (WAL), the zero-config default.
//!
//! Writes run in `BEGIN IMMEDIATE` transactions so a read-then-write never
//! deadlocks on lock upgrade; `synchronous = FULL` so an acknowledged report
//! survives power loss, not only a crash.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, Row, Sqlite, Transaction};

use super::Store;
use crate::domain::{
    ActionOutcome, Agent, AgentAuth, AgentDetail, ApiCaller, ApplyOutcome, AuditEntry, CheckState,
    CheckStateRow, HostFacts, Millis, NewAgent, NewApiKey, NewEnrollmentToken, Report,
    ReportPayload, Scope, SweepOutcome, Tenant, TenantKpis, Ticket, TicketAction, TicketDetail,
    TicketEvent, TicketState, TokenGrant,
};
use crate::{Error, Result};

mod actions;
mod check_groups;
mod kpis;
mod maintenance;
mod outbox;
mod problems;
mod renewal;
mod retire;
mod sites;
mod sweep;
mod tenant_policy;
mod tokens;

use problems::{AgentCtx, LIVENESS_CHECK, LIVENESS_ITEM};

/// Appends one audit entry, inside the caller's transaction or on the pool.
pub(super) async fn insert_audit<'e>(
    conn: impl sqlx::Executor<'e, Database = Sqlite>,
    tenant_id: Option<&str>,
    now: Millis,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(tenant_id)
    .bind(now)
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    policy: std::sync::Arc<crate::tickets::policy::Policy>,
    limits: std::sync::Arc<crate::limits::Limits>,
}

// === impl SqliteStore ===

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub async fn open(path: &Path) -> Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        Self::connect(opts).await
    }

    /// An in-memory database, for tests.
    pub async fn in_memory() -> Result<Self> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            pool,
            policy: std::sync::Arc::default(),
            limits: std::sync::Arc::default(),
        })
    }

    async fn connect(opts: SqliteConnectOptions) -> Result<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // A transaction that fails at a bad moment (a full disk: SQLite
            // rolls back by itself, then the ROLLBACK sqlx sends fails)
            // leaves sqlx counting the connection as inside a transaction;
            // every later BEGIN on it would fail, so one full-disk moment
            // would stop all writes for good. Flush the pending rollback and
            // retire a connection that still claims a transaction.
            .after_release(|conn, _meta| {
                Box::pin(async move {
                    conn.ping().await?;
                    Ok(!conn.is_in_transaction())
                })
            })
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            pool,
            policy: std::sync::Arc::default(),
            limits: std::sync::Arc::default(),
        })
    }

    /// Uses `limits` (series caps, clock skew tolerance; default:
    /// [`Limits::default`]).
    ///
    /// [`Limits::default`]: crate::limits::Limits
    #[must_use]
    pub fn with_limits(mut self, limits: crate::limits::Limits) -> Self {
        self.limits = std::sync::Arc::new(limits);
        self
    }

    /// Uses `policy` for ticket decisions (default: [`Policy::default`]).
    ///
    /// [`Policy::default`]: crate::tickets::policy::Policy
    #[must_use]
    pub fn with_policy(mut self, policy: crate::tickets::policy::Policy) -> Self {
        self.policy = std::sync::Arc::new(policy);
        self
    }

    /// The agent is heard from again: clear overdue, resolve liveness.
    async fn alive_again(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        ctx: &AgentCtx,
        why: &str,
        now: Millis,
    ) -> Result<Vec<crate::tickets::engine::Step>> {
        sqlx::query("UPDATE agents SET overdue = 0 WHERE id = ? AND tenant_id = ?")
            .bind(&ctx.agent_id)
            .bind(&ctx.tenant_id)
            .execute(&mut **tx)
            .await?;
        problems::observe(
            tx,
            &self.policy,
            ctx,
            LIVENESS_CHECK,
            LIVENESS_ITEM,
            CheckState::Ok,
            why,
            now,
            now,
        )
        .await
    }

    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

fn scope_tenant(scope: &Scope) -> Option<&str> {
    match scope {
        Scope::All => None,
        Scope::Tenant(t) => Some(t.as_str()),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn tenant_from_row(r: &SqliteRow) -> Result<Tenant> {
    Ok(Tenant {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        created_at: r.try_get("created_at")?,
        time_zone: r.try_get("time_zone")?,
    })
}

fn agent_from_row(r: &SqliteRow) -> Result<Agent> {
    let snapshot: Option<String> = r.try_get("snapshot")?;
    let revoked_at: Option<i64> = r.try_get("revoked_at")?;
    Ok(Agent {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        site: r.try_get("site")?,
        hostname: r.try_get("hostname")?,
        os_name: r.try_get("os_name")?,
        os_version: r.try_get("os_version")?,
        kernel_version: r.try_get("kernel_version")?,
        arch: r.try_get("arch")?,
        agent_version: r.try_get("agent_version")?,
        role: r.try_get("role")?,
        status: r.try_get("status")?,
        overdue: r.try_get::<i64, _>("overdue")? != 0,
        enrolled_at: r.try_get("enrolled_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        cert_not_after: r.try_get("cert_not_after")?,
        revoked: revoked_at.is_some(),
        snapshot: snapshot.and_then(|s| serde_json::from_str(&s).ok()),
        clock_offset_ms: r.try_get("clock_offset_ms")?,
        // Set by the store, which knows the tolerance.
        clock_skewed: false,
    })
}

fn state_col(r: &SqliteRow, col: &str) -> Result<CheckState> {
    let s: String = r.try_get(col)?;
    CheckState::parse(&s).ok_or_else(|| Error::Conflict(format!("corrupt state {s:?} in {col}")))
}

fn ticket_from_row(r: &SqliteRow) -> Result<Ticket> {
    let state: String = r.try_get("state")?;
    let flag = |c: &str| -> Result<bool> { Ok(r.try_get::<i64, _>(c)? != 0) };
    Ok(Ticket {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        tenant_id: r.try_get("tenant_id")?,
        site: r.try_get("site")?,
        agent_id: r.try_get("agent_id")?,
        host: r.try_get("host")?,
        check: r.try_get("check_kind")?,
        item: r.try_get("item")?,
        fingerprint: r.try_get("fingerprint")?,
        severity: state_col(r, "severity")?,
        priority: r.try_get("priority")?,
        tier: u8::try_from(r.try_get::<i64, _>("tier")?).unwrap_or(1),
        flapping: flag("flapping")?,
        summary: r.try_get("summary")?,
        state: TicketState::parse(&state)
            .ok_or_else(|| Error::Conflict(format!("corrupt ticket state {state:?}")))?,
        detected_at: r.try_get("detected_at")?,
        opened_at: r.try_get("opened_at")?,
        acknowledged_at: r.try_get("acknowledged_at")?,
        acknowledged_by: r.try_get("acknowledged_by")?,
        assignee: r.try_get("assignee")?,
        ack_due_at: r.try_get("ack_due_at")?,
        resolve_due_at: r.try_get("resolve_due_at")?,
        escalations: u32::try_from(r.try_get::<i64, _>("escalations")?).unwrap_or(0),
        ack_breached: flag("ack_breached")?,
        resolve_breached: flag("resolve_breached")?,
        resolved_by: r.try_get("resolved_by")?,
        parent_id: r.try_get("parent_id")?,
        updated_at: r.try_get("updated_at")?,
        resolved_at: r.try_get("resolved_at")?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_tenant(&self, name: &str) -> Result<Tenant> {
        let t = Tenant {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            created_at: crate::domain::now_millis(),
            time_zone: "UTC".to_string(),
        };
        let res = sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)")
            .bind(&t.id)
            .bind(&t.name)
            .bind(t.created_at)
            .execute(&self.pool)
            .await;
        match res {
            Ok(_) => Ok(t),
            Err(e) if is_unique_violation(&e) => {
                Err(Error::Conflict(format!("tenant {name:?} already exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn list_tenants(&self, scope: &Scope) -> Result<Vec<Tenant>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, time_zone FROM tenants WHERE (?1 IS NULL OR id = ?1) ORDER BY name",
        )
        .bind(scope_tenant(scope))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        sqlx::query("SELECT id, name, created_at, time_zone FROM tenants WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(tenant_from_row)
            .transpose()
    }

    async fn create_enrollment_token(&self, t: &NewEnrollmentToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO enrollment_tokens (id, tenant_id, site, token_hash, expires_at, max_uses, created_at, role)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.id)
        .bind(&t.tenant_id)
        .bind(&t.site)
        .bind(&t.token_hash)
        .bind(t.expires_at)
        .bind(i64::from(t.max_uses))
        .bind(crate::domain::now_millis())
        .bind(&t.role)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn check_enrollment_token(&self, token_hash: &str, now: Millis) -> Result<TokenGrant> {
        let row = sqlx::query(
            "SELECT t.tenant_id, n.name AS tenant_name, t.site, t.role, t.expires_at, t.uses, t.max_uses,
                    t.revoked_at
             FROM enrollment_tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::Unauthenticated("unknown enrollment token".into()))?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let uses: i64 = row.try_get("uses")?;
        let max_uses: i64 = row.try_get("max_uses")?;
        let revoked_at: Option<i64> = row.try_get("revoked_at")?;
        if revoked_at.is_some() {
            return Err(Error::Unauthenticated("enrollment token revoked".into()));
        }
        if expires_at <= now {
            return Err(Error::Unauthenticated("enrollment token expired".into()));
        }
        if uses >= max_uses {
            return Err(Error::PermissionDenied(
                "enrollment token has no uses left".into(),
            ));
        }
        Ok(TokenGrant {
            tenant_id: row.try_get("tenant_id")?,
            tenant_name: row.try_get("tenant_name")?,
            site: row.try_get("site")?,
            role: row.try_get("role")?,
        })
    }

    async fn enroll_agent(&self, token_hash: &str, now: Millis, a: &NewAgent) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let consumed = sqlx::query(
            "UPDATE enrollment_tokens SET uses = uses + 1
             WHERE token_hash = ? AND tenant_id = ? AND expires_at > ? AND uses < max_uses
               AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .bind(&a.tenant_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if consumed != 1 {
            // Lost a race with another enrollment or the clock: say why.
            drop(tx);
            self.check_enrollment_token(token_hash, now).await?;
            return Err(Error::PermissionDenied(
                "enrollment token no longer valid".into(),
            ));
        }
        let f = &a.facts;
        sqlx::query(
            "INSERT INTO agents (id, tenant_id, site, hostname, os_name, os_version, kernel_version, arch,
                                 agent_version, cpu_count, memory_total_bytes, enrolled_at, cert_not_after, role)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&a.id)
        .bind(&a.tenant_id)
        .bind(&a.site)
        .bind(&f.hostname)
        .bind(&f.os_name)
        .bind(&f.os_version)
        .bind(&f.kernel_version)
        .bind(&f.arch)
        .bind(&f.agent_version)
        .bind(i64::from(f.cpu_count))
        .bind(i64::try_from(f.memory_total_bytes).unwrap_or(i64::MAX))
        .bind(now)
        .bind(a.cert_not_after)
        .bind(&a.role)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn renew_agent_cert(
        &self,
        tenant_id: &str,
        agent_id: &str,
        cert_not_after: Millis,
        now: Millis,
        actor: &str,
    ) -> Result<()> {
        renewal::renew_agent_cert(self, tenant_id, agent_id, cert_not_after, now, actor).await
    }

    async fn agent_auth(&self, agent_id: &str) -> Result<Option<AgentAuth>> {
        let row = sqlx::query("SELECT tenant_id, revoked_at FROM agents WHERE id = ?")
            .bind(agent_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| -> Result<AgentAuth> {
            let revoked_at: Option<i64> = r.try_get("revoked_at")?;
            Ok(AgentAuth {
                tenant_id: r.try_get("tenant_id")?,
                revoked: revoked_at.is_some(),
            })
        })
        .transpose()
    }

    async fn start_session(
        &self,
        tenant_id: &str,
        agent_id: &str,
        boot_id: &str,
        f: &HostFacts,
        interval_secs: u32,
        clock_offset_ms: Option<i64>,
        now: Millis,
    ) -> Result<()> {
        if self.limits.clock_skewed(clock_offset_ms) {
            tracing::warn!(
                agent_id,
                clock_offset_ms,
                tolerance_secs = self.limits.clock_skew_tolerance_secs,
                "agent clock is skewed"
            );
        }
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE agents SET hostname = ?, os_name = ?, os_version = ?, kernel_version = ?, arch = ?,
                    agent_version = ?, cpu_count = ?, memory_total_bytes = ?, boot_id = ?,
                    status = 'online', last_seen_at = ?, interval_secs = ?, clock_offset_ms = ?,
                    connected_at = ?
             WHERE id = ? AND tenant_id = ?",
        )
        .bind(&f.hostname)
        .bind(&f.os_name)
        .bind(&f.os_version)
        .bind(&f.kernel_version)
        .bind(&f.arch)
        .bind(&f.agent_version)
        .bind(i64::from(f.cpu_count))
        .bind(i64::try_from(f.memory_total_bytes).unwrap_or(i64::MAX))
        .bind(boot_id)
        .bind(now)
        .bind(i64::from(interval_secs.clamp(1, 3600)))
        .bind(clock_offset_ms)
        .bind(now)
        .bind(agent_id)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        // Back after being overdue or after a (server's) shutdown ticket.
        let ctx = AgentCtx::load(&mut tx, tenant_id, agent_id).await?;
        self.alive_again(&mut tx, &ctx, "agent connected", now)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn end_session(
        &self,
        tenant_id: &str,
        agent_id: &str,
        clean: bool,
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        // A goodbye is a clean shutdown (offline, no ticket unless the role
        // says it must stay up); a lost stream waits for the overdue sweep.
        let status = if clean { "offline" } else { "disconnected" };
        sqlx::query(
            "UPDATE agents SET status = ?, last_seen_at = MAX(COALESCE(last_seen_at, 0), ?)
             WHERE id = ? AND tenant_id = ? AND status != 'offline'",
        )
        .bind(status)
        .bind(now)
        .bind(agent_id)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        let ctx = AgentCtx::load(&mut tx, tenant_id, agent_id).await?;
        if clean && self.policy.shutdown_ticket_roles.contains(&ctx.role) {
            problems::observe(
                &mut tx,
                &self.policy,
                &ctx,
                LIVENESS_CHECK,
                LIVENESS_ITEM,
                CheckState::Crit,
                &format!(
                    "{} role: stopped cleanly, but this host must stay up",
                    ctx.role
                ),
                now,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_agents(&self, scope: &Scope) -> Result<Vec<Agent>> {
        let rows = sqlx::query(
            "SELECT * FROM agents WHERE (?1 IS NULL OR tenant_id = ?1) ORDER BY hostname, id",
        )
        .bind(scope_tenant(scope))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let mut a = agent_from_row(r)?;
                a.clock_skewed = self.limits.clock_skewed(a.clock_offset_ms);
                Ok(a)
            })
            .collect()
    }

    async fn get_agent(&self, scope: &Scope, agent_id: &str) -> Result<Option<AgentDetail>> {
        let Some(row) =
            sqlx::query("SELECT * FROM agents WHERE id = ?2 AND (?1 IS NULL OR tenant_id = ?1)")
                .bind(scope_tenant(scope))
                .bind(agent_id)
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let mut agent = agent_from_row(&row)?;
        agent.clock_skewed = self.limits.clock_skewed(agent.clock_offset_ms);
        let checks = sqlx::query(
            "SELECT check_kind, item, state, message, metrics, since, updated_at FROM check_states
             WHERE agent_id = ? AND tenant_id = ? ORDER BY check_kind, item",
        )
        .bind(&agent.id)
        .bind(&agent.tenant_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| -> Result<CheckStateRow> {
            let metrics: String = r.try_get("metrics")?;
            Ok(CheckStateRow {
                check: r.try_get("check_kind")?,
                item: r.try_get("item")?,
                state: state_col(r, "state")?,
                message: r.try_get("message")?,
                metrics: serde_json::from_str(&metrics).unwrap_or_default(),
                since: r.try_get("since")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(Some(AgentDetail { agent, checks }))
    }

    async fn apply_report(
        &self,
        tenant_id: &str,
        agent_id: &str,
        report: &Report,
        now: Millis,
    ) -> Result<ApplyOutcome> {
        let mut tx = self.write_tx().await?;
        // The agent must belong to the writing tenant before anything else.
        let ctx = AgentCtx::load(&mut tx, tenant_id, agent_id).await?;
        if ctx.revoked {
            return Err(Error::PermissionDenied("agent is revoked".into()));
        }
        let fresh = sqlx::query(
            "INSERT INTO delivered_reports (tenant_id, agent_id, boot_id, seq, received_at)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(tenant_id)
        .bind(agent_id)
        .bind(&report.boot_id)
        .bind(i64::try_from(report.seq).unwrap_or(i64::MAX))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if fresh == 0 {
            return Ok(ApplyOutcome {
                duplicate: true,
                ..ApplyOutcome::default()
            });
        }
        let mut outcome = ApplyOutcome::default();
        let mut series = problems::SeriesBudget::new(self.limits.series_caps(&ctx.tenant));
        if ctx.overdue {
            outcome.count(
                &self
                    .alive_again(&mut tx, &ctx, "reporting again", now)
                    .await?,
            );
        }
        for r in report.payload.results() {
            let steps = problems::apply_result(
                &mut tx,
                &self.policy,
                &ctx,
                &mut series,
                report.observed_at,
                r,
                now,
            )
            .await?;
            outcome.count(&steps);
        }
        outcome.series_dropped = series.dropped;
        if matches!(report.payload, ReportPayload::Heartbeat { .. }) {
            outcome.count(&retire::retire_unreported(&mut tx, &self.policy, &ctx, now).await?);
        }
        let snapshot = match &report.payload {
            ReportPayload::Heartbeat { snapshot, .. } => serde_json::to_string(snapshot).ok(),
            ReportPayload::StateChanges(_) => None,
        };
        sqlx::query(
            "UPDATE agents SET last_seen_at = ?, status = 'online', snapshot = COALESCE(?, snapshot)
             WHERE id = ? AND tenant_id = ?",
        )
        .bind(now)
        .bind(snapshot)
        .bind(agent_id)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn list_tickets(&self, scope: &Scope, state: Option<TicketState>) -> Result<Vec<Ticket>> {
        let rows = sqlx::query(
            "SELECT * FROM tickets WHERE (?1 IS NULL OR tenant_id = ?1) AND (?2 IS NULL OR state = ?2)
             ORDER BY id DESC LIMIT 1000",
        )
        .bind(scope_tenant(scope))
        .bind(state.map(TicketState::as_str))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ticket_from_row).collect()
    }

    async fn get_ticket(&self, scope: &Scope, id: i64) -> Result<Option<TicketDetail>> {
        let Some(row) =
            sqlx::query("SELECT * FROM tickets WHERE id = ?2 AND (?1 IS NULL OR tenant_id = ?1)")
                .bind(scope_tenant(scope))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let ticket = ticket_from_row(&row)?;
        let events = sqlx::query(
            "SELECT at, kind, detail, actor FROM ticket_events WHERE ticket_id = ? AND tenant_id = ? ORDER BY id",
        )
        .bind(ticket.id)
        .bind(&ticket.tenant_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| -> Result<TicketEvent> {
            Ok(TicketEvent {
                at: r.try_get("at")?,
                kind: r.try_get("kind")?,
                detail: r.try_get("detail")?,
                actor: r.try_get("actor")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(Some(TicketDetail { ticket, events }))
    }

    async fn create_api_key(&self, k: &NewApiKey) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, key_hash, created_at, role) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&k.id)
        .bind(&k.tenant_id)
        .bind(&k.name)
        .bind(&k.key_hash)
        .bind(crate::domain::now_millis())
        .bind(&k.role)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn api_caller(&self, key_hash: &str) -> Result<Option<ApiCaller>> {
        let row = sqlx::query("SELECT tenant_id, name, role FROM api_keys WHERE key_hash = ?")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| -> Result<ApiCaller> {
            let t: Option<String> = r.try_get("tenant_id")?;
            Ok(ApiCaller {
                scope: t.map_or(Scope::All, Scope::Tenant),
                name: r.try_get("name")?,
                role: r.try_get("role")?,
            })
        })
        .transpose()
    }

    async fn sweep(&self, now: Millis) -> Result<SweepOutcome> {
        sweep::sweep(self, now).await
    }

    async fn ticket_action(
        &self,
        caller: &ApiCaller,
        id: i64,
        action: &TicketAction,
        now: Millis,
    ) -> Result<ActionOutcome> {
        actions::ticket_action(self, caller, id, action, now).await
    }

    async fn revoke_agent(&self, caller: &ApiCaller, agent_id: &str, now: Millis) -> Result<Agent> {
        actions::revoke_agent(self, caller, agent_id, now).await
    }

    async fn revoked_since(&self, since: Millis) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM agents WHERE revoked_at >= ? ORDER BY revoked_at")
                .bind(since)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn kpis(&self, scope: &Scope, from: Millis, to: Millis) -> Result<Vec<TenantKpis>> {
        kpis::kpis(self, scope, from, to).await
    }

    async fn record_audit(
        &self,
        tenant_id: Option<&str>,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
        now: Millis,
    ) -> Result<()> {
        insert_audit(&self.pool, tenant_id, now, actor, action, target, detail).await
    }

    async fn audit_log(&self, scope: &Scope, limit: u32) -> Result<Vec<AuditEntry>> {
        actions::audit_log(self, scope, limit).await
    }

    async fn list_enrollment_tokens(
        &self,
        scope: &Scope,
    ) -> Result<Vec<crate::domain::EnrollmentToken>> {
        tokens::list(self, scope).await
    }

    async fn revoke_enrollment_token(
        &self,
        caller: &ApiCaller,
        id: &str,
        now: Millis,
    ) -> Result<crate::domain::EnrollmentToken> {
        tokens::revoke(self, caller, id, now).await
    }

    async fn audit_enrollment(
        &self,
        token_hash: &str,
        now: Millis,
        actor: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<()> {
        tokens::audit_enrollment(self, token_hash, now, (actor, action, target, detail)).await
    }

    async fn set_tenant_time_zone(
        &self,
        caller: &ApiCaller,
        tenant_id: &str,
        time_zone: &str,
        now: Millis,
    ) -> Result<()> {
        self.set_time_zone(caller, tenant_id, time_zone, now).await
    }

    async fn create_maintenance(
        &self,
        caller: &ApiCaller,
        window: &crate::maintenance::NewWindow,
        now: Millis,
    ) -> Result<crate::maintenance::Window> {
        self.insert_window(caller, window, now).await
    }

    async fn list_maintenance(
        &self,
        scope: &Scope,
        kinds: &[crate::maintenance::Kind],
    ) -> Result<Vec<crate::maintenance::Window>> {
        self.windows(scope, kinds).await
    }

    async fn delete_maintenance(
        &self,
        caller: &ApiCaller,
        id: i64,
        kinds: &[crate::maintenance::Kind],
        now: Millis,
    ) -> Result<crate::maintenance::Window> {
        self.remove_window(caller, id, kinds, now).await
    }

    async fn set_sink_routes(&self, routes: &[crate::sinks::SinkRoute]) -> Result<()> {
        outbox::set_sink_routes(self, routes).await
    }

    async fn outbox_due(
        &self,
        sink: &str,
        now: Millis,
        limit: u32,
    ) -> Result<Vec<crate::sinks::outbox::OutboxItem>> {
        outbox::outbox_due(self, sink, now, limit).await
    }

    async fn outbox_attempted(
        &self,
        id: i64,
        attempt: &crate::sinks::outbox::Attempt,
        now: Millis,
    ) -> Result<()> {
        outbox::outbox_attempted(self, id, attempt, now).await
    }

    async fn list_outbox(
        &self,
        scope: &Scope,
        state: Option<crate::sinks::outbox::OutboxState>,
        limit: u32,
    ) -> Result<Vec<crate::sinks::outbox::OutboxEntry>> {
        outbox::list_outbox(self, scope, state, limit).await
    }

    async fn prune_outbox(&self, before: Millis) -> Result<u64> {
        outbox::prune_outbox(self, before).await
    }

    async fn prune_delivered(&self, before: Millis) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM delivered_reports WHERE received_at < ?")
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

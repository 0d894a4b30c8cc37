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
use sqlx::{Row, Sqlite, Transaction};

use super::Store;
use crate::domain::{
    Agent, AgentAuth, AgentDetail, ApplyOutcome, CheckResult, CheckState, CheckStateRow, HostFacts,
    Millis, NewAgent, NewApiKey, NewEnrollmentToken, Report, ReportPayload, Scope, Tenant, Ticket,
    TicketDetail, TicketEvent, TicketState, TokenGrant,
};
use crate::tickets::{self, Action, OpenTicket};
use crate::{Error, Result};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
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
        Ok(Self { pool })
    }

    async fn connect(opts: SqliteConnectOptions) -> Result<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
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
        status: r.try_get("status")?,
        enrolled_at: r.try_get("enrolled_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        cert_not_after: r.try_get("cert_not_after")?,
        revoked: revoked_at.is_some(),
        snapshot: snapshot.and_then(|s| serde_json::from_str(&s).ok()),
    })
}

fn state_col(r: &SqliteRow, col: &str) -> Result<CheckState> {
    let s: String = r.try_get(col)?;
    CheckState::parse(&s).ok_or_else(|| Error::Conflict(format!("corrupt state {s:?} in {col}")))
}

fn ticket_from_row(r: &SqliteRow) -> Result<Ticket> {
    let state: String = r.try_get("state")?;
    Ok(Ticket {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        site: r.try_get("site")?,
        agent_id: r.try_get("agent_id")?,
        host: r.try_get("host")?,
        check: r.try_get("check_kind")?,
        item: r.try_get("item")?,
        fingerprint: r.try_get("fingerprint")?,
        severity: state_col(r, "severity")?,
        summary: r.try_get("summary")?,
        state: TicketState::parse(&state)
            .ok_or_else(|| Error::Conflict(format!("corrupt ticket state {state:?}")))?,
        opened_at: r.try_get("opened_at")?,
        updated_at: r.try_get("updated_at")?,
        resolved_at: r.try_get("resolved_at")?,
    })
}

async fn add_event(
    tx: &mut Transaction<'static, Sqlite>,
    tenant_id: &str,
    ticket_id: i64,
    at: Millis,
    kind: &str,
    detail: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO ticket_events (tenant_id, ticket_id, at, kind, detail) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(tenant_id)
    .bind(ticket_id)
    .bind(at)
    .bind(kind)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The agent facts a ticket needs.
struct TicketContext {
    site: String,
    host: String,
}

/// Stores one result and applies its ticket action. Returns the action taken.
async fn apply_result(
    tx: &mut Transaction<'static, Sqlite>,
    tenant_id: &str,
    agent_id: &str,
    ctx: &TicketContext,
    observed_at: Millis,
    r: &CheckResult,
    now: Millis,
) -> Result<Action> {
    // A result older than what is stored (a late resend) must not roll state back.
    let prev: Option<i64> = sqlx::query_scalar(
        "SELECT observed_at FROM check_states WHERE agent_id = ? AND check_kind = ? AND item = ?",
    )
    .bind(agent_id)
    .bind(&r.check)
    .bind(&r.item)
    .fetch_optional(&mut **tx)
    .await?;
    if prev.is_some_and(|p| p > observed_at) {
        return Ok(Action::Nothing);
    }
    let metrics = serde_json::to_string(&r.metrics).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "INSERT INTO check_states (tenant_id, agent_id, check_kind, item, state, message, metrics, since, observed_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (agent_id, check_kind, item) DO UPDATE SET
           state = excluded.state, message = excluded.message, metrics = excluded.metrics,
           since = excluded.since, observed_at = excluded.observed_at, updated_at = excluded.updated_at",
    )
    .bind(tenant_id)
    .bind(agent_id)
    .bind(&r.check)
    .bind(&r.item)
    .bind(r.state.as_str())
    .bind(&r.message)
    .bind(metrics)
    .bind(r.since)
    .bind(observed_at)
    .bind(now)
    .execute(&mut **tx)
    .await?;

    let fingerprint = tickets::fingerprint(agent_id, &r.check, &r.item);
    let open = sqlx::query(
        "SELECT id, severity, summary FROM tickets WHERE tenant_id = ? AND fingerprint = ? AND state = 'open'",
    )
    .bind(tenant_id)
    .bind(&fingerprint)
    .fetch_optional(&mut **tx)
    .await?
    .map(|row| -> Result<OpenTicket> {
        Ok(OpenTicket {
            id: row.try_get("id")?,
            severity: state_col(&row, "severity")?,
            summary: row.try_get("summary")?,
        })
    })
    .transpose()?;

    let action = tickets::plan(&ctx.host, r, open.as_ref());
    match &action {
        Action::Nothing => {}
        Action::Open { severity, summary } => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO tickets (tenant_id, site, agent_id, host, check_kind, item, fingerprint, severity, summary, state, opened_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?) RETURNING id",
            )
            .bind(tenant_id)
            .bind(&ctx.site)
            .bind(agent_id)
            .bind(&ctx.host)
            .bind(&r.check)
            .bind(&r.item)
            .bind(&fingerprint)
            .bind(severity.as_str())
            .bind(summary)
            .bind(now)
            .bind(now)
            .fetch_one(&mut **tx)
            .await?;
            add_event(tx, tenant_id, id, now, "opened", &r.message).await?;
        }
        Action::Update {
            id,
            severity,
            summary,
            detail,
        } => {
            sqlx::query("UPDATE tickets SET severity = ?, summary = ?, updated_at = ? WHERE id = ? AND tenant_id = ?")
                .bind(severity.as_str())
                .bind(summary)
                .bind(now)
                .bind(id)
                .bind(tenant_id)
                .execute(&mut **tx)
                .await?;
            add_event(tx, tenant_id, *id, now, "updated", detail).await?;
        }
        Action::Resolve { id, detail } => {
            sqlx::query("UPDATE tickets SET state = 'resolved', resolved_at = ?, updated_at = ? WHERE id = ? AND tenant_id = ?")
                .bind(now)
                .bind(now)
                .bind(id)
                .bind(tenant_id)
                .execute(&mut **tx)
                .await?;
            add_event(tx, tenant_id, *id, now, "resolved", detail).await?;
        }
    }
    Ok(action)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_tenant(&self, name: &str) -> Result<Tenant> {
        let t = Tenant {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            created_at: crate::domain::now_millis(),
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
            "SELECT id, name, created_at FROM tenants WHERE (?1 IS NULL OR id = ?1) ORDER BY name",
        )
        .bind(scope_tenant(scope))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        sqlx::query("SELECT id, name, created_at FROM tenants WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(tenant_from_row)
            .transpose()
    }

    async fn create_enrollment_token(&self, t: &NewEnrollmentToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO enrollment_tokens (id, tenant_id, site, token_hash, expires_at, max_uses, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.id)
        .bind(&t.tenant_id)
        .bind(&t.site)
        .bind(&t.token_hash)
        .bind(t.expires_at)
        .bind(i64::from(t.max_uses))
        .bind(crate::domain::now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn check_enrollment_token(&self, token_hash: &str, now: Millis) -> Result<TokenGrant> {
        let row = sqlx::query(
            "SELECT t.tenant_id, n.name AS tenant_name, t.site, t.expires_at, t.uses, t.max_uses
             FROM enrollment_tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::Unauthenticated("unknown enrollment token".into()))?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let uses: i64 = row.try_get("uses")?;
        let max_uses: i64 = row.try_get("max_uses")?;
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
        })
    }

    async fn enroll_agent(&self, token_hash: &str, now: Millis, a: &NewAgent) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let consumed = sqlx::query(
            "UPDATE enrollment_tokens SET uses = uses + 1
             WHERE token_hash = ? AND tenant_id = ? AND expires_at > ? AND uses < max_uses",
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
                                 agent_version, cpu_count, memory_total_bytes, enrolled_at, cert_not_after)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
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
        now: Millis,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE agents SET hostname = ?, os_name = ?, os_version = ?, kernel_version = ?, arch = ?,
                    agent_version = ?, cpu_count = ?, memory_total_bytes = ?, boot_id = ?,
                    status = 'online', last_seen_at = ?
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
        .bind(agent_id)
        .bind(tenant_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn end_session(
        &self,
        tenant_id: &str,
        agent_id: &str,
        _clean: bool,
        now: Millis,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE agents SET status = 'offline', last_seen_at = MAX(COALESCE(last_seen_at, 0), ?)
             WHERE id = ? AND tenant_id = ?",
        )
        .bind(now)
        .bind(agent_id)
        .bind(tenant_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_agents(&self, scope: &Scope) -> Result<Vec<Agent>> {
        let rows = sqlx::query(
            "SELECT * FROM agents WHERE (?1 IS NULL OR tenant_id = ?1) ORDER BY hostname, id",
        )
        .bind(scope_tenant(scope))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(agent_from_row).collect()
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
        let agent = agent_from_row(&row)?;
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
        let row = sqlx::query("SELECT site, hostname FROM agents WHERE id = ? AND tenant_id = ?")
            .bind(agent_id)
            .bind(tenant_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::NotFound(format!("agent {agent_id}")))?;
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
        let ctx = TicketContext {
            site: row.try_get("site")?,
            host: row.try_get("hostname")?,
        };
        let mut outcome = ApplyOutcome::default();
        for r in report.payload.results() {
            match apply_result(
                &mut tx,
                tenant_id,
                agent_id,
                &ctx,
                report.observed_at,
                r,
                now,
            )
            .await?
            {
                Action::Nothing => {}
                Action::Open { .. } => outcome.opened += 1,
                Action::Update { .. } => outcome.updated += 1,
                Action::Resolve { .. } => outcome.resolved += 1,
            }
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
            "SELECT at, kind, detail FROM ticket_events WHERE ticket_id = ? AND tenant_id = ? ORDER BY id",
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
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(Some(TicketDetail { ticket, events }))
    }

    async fn create_api_key(&self, k: &NewApiKey) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, key_hash, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&k.id)
        .bind(&k.tenant_id)
        .bind(&k.name)
        .bind(&k.key_hash)
        .bind(crate::domain::now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn api_key_scope(&self, key_hash: &str) -> Result<Option<Scope>> {
        let row = sqlx::query("SELECT tenant_id FROM api_keys WHERE key_hash = ?")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| -> Result<Scope> {
            let t: Option<String> = r.try_get("tenant_id")?;
            Ok(t.map_or(Scope::All, Scope::Tenant))
        })
        .transpose()
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

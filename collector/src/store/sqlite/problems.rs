//! Problems and their tickets, inside the caller's write transaction: a
//! result (or the passing of time) goes through the engine, and its steps
//! become ticket rows, timeline events and the problem's saved state.

use sqlx::{Row, Sqlite, Transaction};

use crate::domain::{CheckResult, CheckState, Millis};
use crate::limits::SeriesCaps;
use crate::tickets::engine::{self, Hold, Problem, Step};
use crate::tickets::fingerprint;
use crate::tickets::policy::{Policy, mins_ms};
use crate::{Error, Result};

pub(super) type Tx = Transaction<'static, Sqlite>;

/// The agent facts tickets need.
#[derive(Debug, Clone)]
pub(super) struct AgentCtx {
    pub tenant_id: String,
    /// The tenant's name: its policy overrides are keyed by it.
    pub tenant: String,
    pub agent_id: String,
    pub site: String,
    pub host: String,
    pub role: String,
    pub overdue: bool,
    pub revoked: bool,
    /// Heartbeat interval and start of the current session (check retirement).
    pub interval_secs: i64,
    pub connected_at: Option<Millis>,
    /// Maintenance windows and silences that can cover this agent.
    pub maintenance: crate::maintenance::Holds,
}

impl AgentCtx {
    pub(super) async fn load(tx: &mut Tx, tenant_id: &str, agent_id: &str) -> Result<Self> {
        let row = sqlx::query(
            "SELECT a.site, a.hostname, a.role, a.overdue, a.revoked_at, a.interval_secs, a.connected_at,
                    n.name AS tenant_name
             FROM agents a JOIN tenants n ON n.id = a.tenant_id WHERE a.id = ? AND a.tenant_id = ?",
        )
        .bind(agent_id)
        .bind(tenant_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::NotFound(format!("agent {agent_id}")))?;
        let site: String = row.try_get("site")?;
        let maintenance =
            super::maintenance::load_for_agent(tx, tenant_id, &site, agent_id).await?;
        Ok(Self {
            tenant_id: tenant_id.to_string(),
            tenant: row.try_get("tenant_name")?,
            agent_id: agent_id.to_string(),
            site,
            host: row.try_get("hostname")?,
            role: row.try_get("role")?,
            overdue: row.try_get::<i64, _>("overdue")? != 0,
            revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
            interval_secs: row.try_get("interval_secs")?,
            connected_at: row.try_get("connected_at")?,
            maintenance,
        })
    }

    /// Whether a maintenance window or silence covers `check` at `now`:
    /// the problem is tracked, but no ticket opens (it stays waiting, so
    /// the sweep opens one right after the window if it still exists).
    pub(super) fn in_maintenance(&self, check: &str, now: Millis) -> bool {
        self.maintenance
            .until(&self.site, &self.agent_id, check, now)
            .is_some()
    }
}

/// A problem row: key, engine state and the latest text.
pub(super) struct ProblemRow {
    pub check: String,
    pub item: String,
    pub problem: Problem,
    pub message: String,
}

pub(super) async fn load_problem(
    tx: &mut Tx,
    ctx: &AgentCtx,
    check: &str,
    item: &str,
) -> Result<ProblemRow> {
    let fp = fingerprint(&ctx.agent_id, check, item);
    let row =
        sqlx::query("SELECT engine, message FROM problems WHERE tenant_id = ? AND fingerprint = ?")
            .bind(&ctx.tenant_id)
            .bind(&fp)
            .fetch_optional(&mut **tx)
            .await?;
    let (problem, message) = match row {
        Some(r) => engine_and_message(&r)?,
        None => (Problem::default(), String::new()),
    };
    Ok(ProblemRow {
        check: check.to_string(),
        item: item.to_string(),
        problem,
        message,
    })
}

/// A stored problem's engine state and latest text (`engine` and
/// `message` columns).
pub(super) fn engine_and_message(r: &sqlx::sqlite::SqliteRow) -> Result<(Problem, String)> {
    let json: String = r.try_get("engine")?;
    Ok((
        serde_json::from_str(&json).unwrap_or_default(),
        r.try_get("message")?,
    ))
}

pub(super) async fn save_problem(
    tx: &mut Tx,
    ctx: &AgentCtx,
    p: &ProblemRow,
    now: Millis,
) -> Result<()> {
    let engine = serde_json::to_string(&p.problem).map_err(|e| Error::Conflict(e.to_string()))?;
    sqlx::query(
        "INSERT INTO problems (tenant_id, fingerprint, agent_id, check_kind, item, engine, message, observed_at, waiting, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (tenant_id, fingerprint) DO UPDATE SET
           engine = excluded.engine, message = excluded.message, observed_at = excluded.observed_at,
           waiting = excluded.waiting, updated_at = excluded.updated_at",
    )
    .bind(&ctx.tenant_id)
    .bind(fingerprint(&ctx.agent_id, &p.check, &p.item))
    .bind(&ctx.agent_id)
    .bind(&p.check)
    .bind(&p.item)
    .bind(engine)
    .bind(&p.message)
    .bind(now)
    .bind(i64::from(p.problem.waiting()))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn add_event(
    tx: &mut Tx,
    tenant_id: &str,
    ticket_id: i64,
    at: Millis,
    kind: &str,
    detail: &str,
    actor: &str,
) -> Result<()> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO ticket_events (tenant_id, ticket_id, at, kind, detail, actor) VALUES (?, ?, ?, ?, ?, ?)
         RETURNING id",
    )
    .bind(tenant_id)
    .bind(ticket_id)
    .bind(at)
    .bind(kind)
    .bind(detail)
    .bind(actor)
    .fetch_one(&mut **tx)
    .await?;
    // The one choke point of ticket changes: sinks hear of them here, in
    // the same transaction (durable outbox).
    let event = crate::sinks::EventFacts {
        id,
        kind,
        detail,
        actor,
        at,
    };
    super::outbox::enqueue(tx, tenant_id, ticket_id, event).await
}

/// Admission of new series for one report (see [`crate::limits`]): a
/// result for a `(check, item)` the agent has never reported is stored only
/// while the agent and its tenant are under their caps. The counts are
/// `agents.series_count` and `tenants.series_count`, kept by triggers on
/// `check_states` (migration 0008) inside the same transaction, so they are
/// exact and cost two primary-key reads.
pub(super) struct SeriesBudget {
    caps: SeriesCaps,
    /// Results dropped so far: new series beyond a cap.
    pub dropped: u32,
}

impl SeriesBudget {
    pub(super) fn new(caps: SeriesCaps) -> Self {
        Self { caps, dropped: 0 }
    }

    /// Whether one more series fits (else the drop is counted).
    async fn admit(&mut self, tx: &mut Tx, ctx: &AgentCtx) -> Result<bool> {
        if self.caps.per_agent.is_none() && self.caps.per_tenant.is_none() {
            return Ok(true);
        }
        let (agent, tenant): (i64, i64) = sqlx::query_as(
            "SELECT a.series_count, n.series_count FROM agents a JOIN tenants n ON n.id = a.tenant_id
             WHERE a.id = ? AND a.tenant_id = ?",
        )
        .bind(&ctx.agent_id)
        .bind(&ctx.tenant_id)
        .fetch_one(&mut **tx)
        .await?;
        let full = |cap: Option<u32>, n: i64| cap.is_some_and(|c| n >= i64::from(c));
        if full(self.caps.per_agent, agent) || full(self.caps.per_tenant, tenant) {
            self.dropped += 1;
            return Ok(false);
        }
        Ok(true)
    }
}

/// Stores one agent result and runs it through the engine. A result that
/// would create a series beyond a cap is dropped (counted in `series`):
/// nothing is stored and no ticket decision is made for it.
pub(super) async fn apply_result(
    tx: &mut Tx,
    policy: &Policy,
    ctx: &AgentCtx,
    series: &mut SeriesBudget,
    observed_at: Millis,
    r: &CheckResult,
    now: Millis,
) -> Result<Vec<Step>> {
    // A result older than what is stored (a late resend) must not roll state back.
    let prev: Option<i64> = sqlx::query_scalar(
        "SELECT observed_at FROM check_states WHERE agent_id = ? AND check_kind = ? AND item = ?",
    )
    .bind(&ctx.agent_id)
    .bind(&r.check)
    .bind(&r.item)
    .fetch_optional(&mut **tx)
    .await?;
    match prev {
        Some(p) if p > observed_at => return Ok(Vec::new()),
        Some(_) => {}
        None => {
            if !series.admit(tx, ctx).await? {
                return Ok(Vec::new());
            }
        }
    }
    let metrics = serde_json::to_string(&r.metrics).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "INSERT INTO check_states (tenant_id, agent_id, check_kind, item, state, message, metrics, since, observed_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (agent_id, check_kind, item) DO UPDATE SET
           state = excluded.state, message = excluded.message, metrics = excluded.metrics,
           since = excluded.since, observed_at = excluded.observed_at, updated_at = excluded.updated_at",
    )
    .bind(&ctx.tenant_id)
    .bind(&ctx.agent_id)
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
    // The agent's clock may be off: express its `since` in collector time,
    // shifted by how far the report's own timestamp is from our receive time
    // (network latency is negligible next to the rules' seconds). This is
    // not a skew measurement (a report replayed from the spool after an
    // outage is old, not skewed): the agent's clock offset is measured at
    // session start, from the hello (`Store::start_session`).
    let skew = now - observed_at;
    let at = r.since.saturating_add(skew).min(now);
    observe(
        tx, policy, ctx, &r.check, &r.item, r.state, &r.message, at, now,
    )
    .await
}

/// Runs one observation (agent result or synthetic liveness result).
#[allow(clippy::too_many_arguments)]
pub(super) async fn observe(
    tx: &mut Tx,
    policy: &Policy,
    ctx: &AgentCtx,
    check: &str,
    item: &str,
    state: CheckState,
    message: &str,
    at: Millis,
    now: Millis,
) -> Result<Vec<Step>> {
    let policy = policy.for_tenant(&ctx.tenant);
    let mut row = load_problem(tx, ctx, check, item).await?;
    row.message = message.to_string();
    let hold = Hold {
        open: ctx.in_maintenance(check, now),
        resolve: false,
    };
    let steps = engine::observe(&mut row.problem, state, at, now, &policy.rule(check), hold);
    carry_out(tx, &policy, ctx, &mut row, &steps, now).await?;
    save_problem(tx, ctx, &row, now).await?;
    Ok(steps)
}

/// Time-based decisions for a waiting problem.
pub(super) async fn tick(
    tx: &mut Tx,
    policy: &Policy,
    ctx: &AgentCtx,
    mut row: ProblemRow,
    now: Millis,
) -> Result<Vec<Step>> {
    let policy = policy.for_tenant(&ctx.tenant);
    // Inhibition: an overdue host's check problems neither open nor resolve
    // on stale data (its liveness problem is the one that speaks).
    let inhibited = ctx.overdue && row.check != LIVENESS_CHECK;
    // A host of a site in outage gets no ticket of its own: the site ticket
    // speaks for it.
    let grouped = row.check == LIVENESS_CHECK && super::sites::in_outage(tx, ctx).await?;
    let hold = Hold {
        open: inhibited || grouped || ctx.in_maintenance(&row.check, now),
        resolve: inhibited,
    };
    let steps = engine::tick(&mut row.problem, now, &policy.rule(&row.check), hold);
    carry_out(tx, &policy, ctx, &mut row, &steps, now).await?;
    save_problem(tx, ctx, &row, now).await?;
    Ok(steps)
}

/// The synthetic check that carries agent liveness.
pub(super) const LIVENESS_CHECK: &str = "agent";
pub(super) const LIVENESS_ITEM: &str = "heartbeat";

fn summary(ctx: &AgentCtx, check: &str, item: &str, state: CheckState, message: &str) -> String {
    let what = if item.is_empty() || check == LIVENESS_CHECK {
        check.to_string()
    } else {
        format!("{check} {item}")
    };
    format!(
        "{} {what} on {}: {message}",
        state.as_str().to_uppercase(),
        ctx.host
    )
}

async fn carry_out(
    tx: &mut Tx,
    policy: &Policy,
    ctx: &AgentCtx,
    row: &mut ProblemRow,
    steps: &[Step],
    now: Millis,
) -> Result<()> {
    let fp = fingerprint(&ctx.agent_id, &row.check, &row.item);
    for step in steps {
        match *step {
            Step::Open { severity, flapping } => {
                let priority = policy.priority(severity, &ctx.role);
                let sla = policy.sla(&priority);
                let kind = if row.check == LIVENESS_CHECK {
                    "agent"
                } else {
                    "check"
                };
                let text = summary(ctx, &row.check, &row.item, severity, &row.message);
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO tickets (tenant_id, site, agent_id, host, check_kind, item, fingerprint, severity, summary,
                                          state, opened_at, updated_at, kind, priority, tier, flapping, detected_at,
                                          ack_due_at, resolve_due_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                )
                .bind(&ctx.tenant_id)
                .bind(&ctx.site)
                .bind(&ctx.agent_id)
                .bind(&ctx.host)
                .bind(&row.check)
                .bind(&row.item)
                .bind(&fp)
                .bind(severity.as_str())
                .bind(&text)
                .bind(now)
                .bind(now)
                .bind(kind)
                .bind(&priority)
                .bind(i64::from(policy.start_tier))
                .bind(i64::from(flapping))
                .bind(row.problem.bad_since.unwrap_or(now))
                .bind(now + mins_ms(sla.ack_mins))
                .bind(now + mins_ms(sla.resolve_mins))
                .fetch_one(&mut **tx)
                .await?;
                engine::link_new_ticket(&mut row.problem, id, severity);
                let detail = if flapping {
                    format!(
                        "opened as flapping ({priority}, L{}): {}",
                        policy.start_tier, row.message
                    )
                } else {
                    format!(
                        "opened ({priority}, L{}): {}",
                        policy.start_tier, row.message
                    )
                };
                add_event(tx, &ctx.tenant_id, id, now, "opened", &detail, "engine").await?;
            }
            Step::Reopen { id, severity } => {
                let text = summary(ctx, &row.check, &row.item, severity, &row.message);
                sqlx::query(
                    "UPDATE tickets SET state = 'open', resolved_at = NULL, resolved_by = NULL, severity = ?,
                            summary = ?, updated_at = ? WHERE id = ? AND tenant_id = ?",
                )
                .bind(severity.as_str())
                .bind(&text)
                .bind(now)
                .bind(id)
                .bind(&ctx.tenant_id)
                .execute(&mut **tx)
                .await?;
                add_event(
                    tx,
                    &ctx.tenant_id,
                    id,
                    now,
                    "reopened",
                    &format!("relapse: {}", row.message),
                    "engine",
                )
                .await?;
            }
            Step::Update {
                id,
                severity,
                severity_changed,
            } => {
                let text = summary(ctx, &row.check, &row.item, severity, &row.message);
                let priority = policy.priority(severity, &ctx.role);
                sqlx::query(
                    "UPDATE tickets SET severity = ?, summary = ?, priority = ?, updated_at = ? WHERE id = ? AND tenant_id = ?",
                )
                .bind(severity.as_str())
                .bind(&text)
                .bind(&priority)
                .bind(now)
                .bind(id)
                .bind(&ctx.tenant_id)
                .execute(&mut **tx)
                .await?;
                if severity_changed {
                    add_event(
                        tx,
                        &ctx.tenant_id,
                        id,
                        now,
                        "updated",
                        &format!(
                            "severity {} ({priority}): {}",
                            severity.as_str(),
                            row.message
                        ),
                        "engine",
                    )
                    .await?;
                }
            }
            Step::Resolve { id } => {
                sqlx::query(
                    "UPDATE tickets SET state = 'resolved', resolved_at = ?, resolved_by = 'engine', updated_at = ?
                     WHERE id = ? AND tenant_id = ? AND state = 'open'",
                )
                .bind(now)
                .bind(now)
                .bind(id)
                .bind(&ctx.tenant_id)
                .execute(&mut **tx)
                .await?;
                add_event(
                    tx,
                    &ctx.tenant_id,
                    id,
                    now,
                    "resolved",
                    &format!("recovered: {}", row.message),
                    "engine",
                )
                .await?;
            }
            Step::Flapping { id, flapping } => {
                sqlx::query("UPDATE tickets SET flapping = ?, updated_at = ? WHERE id = ? AND tenant_id = ?")
                    .bind(i64::from(flapping))
                    .bind(now)
                    .bind(id)
                    .bind(&ctx.tenant_id)
                    .execute(&mut **tx)
                    .await?;
                let detail = if flapping {
                    format!("flapping: {:.0}% state changes", row.problem.flap_percent())
                } else {
                    "stopped flapping".to_string()
                };
                add_event(tx, &ctx.tenant_id, id, now, "flapping", &detail, "engine").await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::ConnectOptions;
    use sqlx::sqlite::SqliteConnectOptions;

    /// A database holding series from before migration 0008 gets its
    /// counters filled in by it; from then on the triggers keep them.
    #[tokio::test]
    async fn migration_0008_counts_existing_series_and_triggers_keep_counting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = dir.path().join("migrations");
        std::fs::create_dir(&old).expect("dir");
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        for e in std::fs::read_dir(&src).expect("migrations") {
            let e = e.expect("entry");
            let name = e.file_name().to_string_lossy().to_string();
            if name.as_str() < "0008" {
                std::fs::copy(e.path(), old.join(&name)).expect("copy");
            }
        }
        let db = dir.path().join("t.db");
        let mut conn = SqliteConnectOptions::new()
            .filename(&db)
            .create_if_missing(true)
            .connect()
            .await
            .expect("connect");
        sqlx::migrate::Migrator::new(old.as_path())
            .await
            .expect("old migrator")
            .run(&mut conn)
            .await
            .expect("migrate to 0007");
        for stmt in [
            "INSERT INTO tenants (id, name, created_at) VALUES ('t1', 'acme', 0), ('t2', 'other', 0)",
            "INSERT INTO agents (id, tenant_id, hostname, enrolled_at, cert_not_after)
             VALUES ('a1', 't1', 'h1', 0, 0), ('a2', 't1', 'h2', 0, 0), ('b1', 't2', 'h3', 0, 0)",
            "INSERT INTO check_states (tenant_id, agent_id, check_kind, item, state, message, metrics, since, observed_at, updated_at)
             VALUES ('t1', 'a1', 'disk', '/', 'ok', '', '[]', 0, 0, 0),
                    ('t1', 'a1', 'disk', '/var', 'ok', '', '[]', 0, 0, 0),
                    ('t1', 'a2', 'cpu', '', 'ok', '', '[]', 0, 0, 0),
                    ('t2', 'b1', 'cpu', '', 'ok', '', '[]', 0, 0, 0)",
        ] {
            sqlx::query(stmt).execute(&mut conn).await.expect(stmt);
        }
        drop(conn);

        let store = super::super::SqliteStore::open(&db).await.expect("migrate");
        let counts = |sql: &'static str| {
            let pool = store.pool.clone();
            async move {
                sqlx::query_as::<_, (String, i64)>(sql)
                    .fetch_all(&pool)
                    .await
                    .expect("counts")
            }
        };
        let agents = "SELECT id, series_count FROM agents ORDER BY id";
        let tenants = "SELECT id, series_count FROM tenants ORDER BY id";
        let pairs = |v: &[(&str, i64)]| -> Vec<(String, i64)> {
            v.iter().map(|(k, n)| ((*k).to_string(), *n)).collect()
        };
        assert_eq!(
            counts(agents).await,
            pairs(&[("a1", 2), ("a2", 1), ("b1", 1)])
        );
        assert_eq!(counts(tenants).await, pairs(&[("t1", 3), ("t2", 1)]));

        // An upsert of an existing series counts nothing; a new one counts
        // once, for its agent and its tenant; a removed one uncounts.
        for stmt in [
            "INSERT INTO check_states (tenant_id, agent_id, check_kind, item, state, message, metrics, since, observed_at, updated_at)
             VALUES ('t1', 'a1', 'disk', '/', 'crit', '', '[]', 1, 1, 1), ('t1', 'a2', 'disk', '/', 'ok', '', '[]', 1, 1, 1)
             ON CONFLICT (agent_id, check_kind, item) DO UPDATE SET state = excluded.state",
            "DELETE FROM check_states WHERE agent_id = 'b1'",
        ] {
            sqlx::query(stmt).execute(&store.pool).await.expect(stmt);
        }
        assert_eq!(
            counts(agents).await,
            pairs(&[("a1", 2), ("a2", 2), ("b1", 0)])
        );
        assert_eq!(counts(tenants).await, pairs(&[("t1", 4), ("t2", 0)]));
    }
}

//! Maintenance windows and silences in SQLite (`maintenance_windows`), the
//! hold lookup the engine runs inside report and sweep transactions, and
//! the pause of escalations while a ticket's scope is in maintenance.
//!
//! Cost: one indexed query per engine transaction loads the windows that can
//! cover one agent ([`load_for_agent`]); the sweep loads all active windows
//! once ([`ActiveWindows::load`]) for its escalation pass. Ended one-off
//! windows and silences are kept [`RETENTION_MS`] (listed as ended), then
//! removed whenever a new one is created; the audit log keeps the record.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::problems::{Tx, add_event};
use super::{SqliteStore, scope_tenant};
use crate::domain::{ApiCaller, Millis, Scope, rfc3339};
use crate::maintenance::schedule::Weekly;
use crate::maintenance::{self, Holds, Kind, NewWindow, Schedule, Target, Window};
use crate::{Error, Result};

/// How long ended one-off windows and silences stay listed.
pub(super) const RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// `SELECT` of whole windows with their tenant's time zone, then `$rest`
/// (a literal, so the SQL stays static).
macro_rules! select_windows {
    ($rest:literal) => {
        concat!(
            "SELECT w.id, w.tenant_id, w.kind, w.site, w.agent_id, w.check_kind, w.start_at, w.end_at,
                    w.weekdays, w.start_minute, w.duration_secs, w.reason, w.created_by, w.created_at,
                    t.time_zone
             FROM maintenance_windows w JOIN tenants t ON t.id = w.tenant_id ",
            $rest
        )
    };
}

fn window_from_row(r: &SqliteRow) -> Result<Window> {
    let kind: String = r.try_get("kind")?;
    let kind = Kind::parse(&kind)
        .ok_or_else(|| Error::Conflict(format!("corrupt window kind {kind:?}")))?;
    let schedule = match kind {
        Kind::Weekly => {
            let days: i64 = r.try_get("weekdays")?;
            let minute: i64 = r.try_get("start_minute")?;
            let secs: i64 = r.try_get("duration_secs")?;
            let w = Weekly::new(
                u8::try_from(days).unwrap_or(0),
                u16::try_from(minute).unwrap_or(u16::MAX),
                u32::try_from(secs).unwrap_or(0),
            )
            .map_err(|e| Error::Conflict(format!("corrupt weekly window: {e}")))?;
            Schedule::Weekly(w)
        }
        Kind::Once | Kind::Silence => Schedule::Between {
            start: r.try_get::<Option<i64>, _>("start_at")?.unwrap_or(0),
            end: r.try_get::<Option<i64>, _>("end_at")?.unwrap_or(0),
        },
    };
    Ok(Window {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        kind,
        target: Target {
            site: r.try_get("site")?,
            agent_id: r.try_get("agent_id")?,
            check: r.try_get("check_kind")?,
        },
        schedule,
        reason: r.try_get("reason")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        time_zone: r.try_get("time_zone")?,
    })
}

/// The windows that can cover an agent of `site` (any check), with the
/// tenant's time zone: one query per engine transaction.
pub(super) async fn load_for_agent(
    tx: &mut Tx,
    tenant_id: &str,
    site: &str,
    agent_id: &str,
) -> Result<Holds> {
    let rows = sqlx::query(select_windows!(
        "WHERE w.tenant_id = ? AND (w.site IS NULL OR w.site = ?) AND (w.agent_id IS NULL OR w.agent_id = ?)"
    ))
    .bind(tenant_id)
    .bind(site)
    .bind(agent_id)
    .fetch_all(&mut **tx)
    .await?;
    holds(&rows)
}

fn holds(rows: &[SqliteRow]) -> Result<Holds> {
    let windows = rows
        .iter()
        .map(window_from_row)
        .collect::<Result<Vec<_>>>()?;
    let tz = windows
        .first()
        .map(|w| maintenance::stored_time_zone(&w.time_zone));
    Ok(tz.map_or_else(Holds::default, |tz| Holds::new(tz, windows)))
}

/// Every tenant's windows that can be active at `now`: the sweep loads
/// them once for its escalation pass.
pub(super) struct ActiveWindows(HashMap<String, Holds>);

impl ActiveWindows {
    pub(super) async fn load(tx: &mut Tx, now: Millis) -> Result<Self> {
        let rows = sqlx::query(select_windows!(
            "WHERE w.kind = 'weekly' OR (w.start_at <= ?1 AND w.end_at > ?1)
             ORDER BY w.tenant_id"
        ))
        .bind(now)
        .fetch_all(&mut **tx)
        .await?;
        let mut by_tenant: HashMap<String, Vec<SqliteRow>> = HashMap::new();
        for r in rows {
            by_tenant
                .entry(r.try_get("tenant_id")?)
                .or_default()
                .push(r);
        }
        let mut out = HashMap::new();
        for (tenant, rows) in by_tenant {
            out.insert(tenant, holds(&rows)?);
        }
        Ok(Self(out))
    }

    /// If the ticket's scope is in maintenance at `now`: until when.
    pub(super) fn until(
        &self,
        tenant_id: &str,
        site: &str,
        agent_id: &str,
        check: &str,
        now: Millis,
    ) -> Option<Millis> {
        self.0.get(tenant_id)?.until(site, agent_id, check, now)
    }
}

/// An open ticket whose scope is in maintenance when its acknowledgement
/// is due: no escalation and no breach now; a full acknowledgement period
/// starts when the maintenance ends (`ack_due_at = until + ack time`), so
/// it does not escalate the instant the window closes.
pub(super) async fn pause_escalation(
    tx: &mut Tx,
    tenant_id: &str,
    ticket_id: i64,
    until: Millis,
    ack_ms: i64,
    now: Millis,
) -> Result<()> {
    let due = until.saturating_add(ack_ms);
    let changed = sqlx::query(
        "UPDATE tickets SET ack_due_at = ?, updated_at = ?
         WHERE id = ? AND tenant_id = ? AND state = 'open' AND acknowledged_at IS NULL AND ack_due_at <= ?",
    )
    .bind(due)
    .bind(now)
    .bind(ticket_id)
    .bind(tenant_id)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if changed == 1 {
        add_event(
            tx,
            tenant_id,
            ticket_id,
            now,
            "maintenance",
            &format!(
                "in maintenance until {}: escalation paused, acknowledge due {}",
                rfc3339::format(until),
                rfc3339::format(due)
            ),
            "engine",
        )
        .await?;
    }
    Ok(())
}

fn audit_action(kind: Kind, verb: &str) -> String {
    match kind {
        Kind::Silence => format!("silence.{verb}"),
        Kind::Once | Kind::Weekly => format!("maintenance.{verb}"),
    }
}

fn target_of(w: &Window) -> String {
    match w.kind {
        Kind::Silence => format!("silence/{}", w.id),
        Kind::Once | Kind::Weekly => format!("maintenance/{}", w.id),
    }
}

async fn audit(
    tx: &mut Tx,
    tenant_id: &str,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
    now: Millis,
) -> Result<()> {
    super::insert_audit(
        &mut **tx,
        Some(tenant_id),
        now,
        actor,
        action,
        target,
        detail,
    )
    .await
}

// === impl SqliteStore ===

impl SqliteStore {
    pub(super) async fn set_time_zone(
        &self,
        caller: &ApiCaller,
        tenant_id: &str,
        time_zone: &str,
        now: Millis,
    ) -> Result<()> {
        caller.require_write()?;
        if !caller.scope.allows(tenant_id) {
            return Err(Error::NotFound(format!("tenant {tenant_id}")));
        }
        let mut tx = self.write_tx().await?;
        let changed = sqlx::query("UPDATE tenants SET time_zone = ? WHERE id = ?")
            .bind(time_zone)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed != 1 {
            return Err(Error::NotFound(format!("tenant {tenant_id}")));
        }
        audit(
            &mut tx,
            tenant_id,
            &caller.name,
            "tenant.time_zone",
            &format!("tenant/{tenant_id}"),
            &format!("time zone set to {time_zone}"),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn insert_window(
        &self,
        caller: &ApiCaller,
        w: &NewWindow,
        now: Millis,
    ) -> Result<Window> {
        caller.require_write()?;
        if !caller.scope.allows(&w.tenant_id) {
            return Err(Error::NotFound(format!("tenant {}", w.tenant_id)));
        }
        let mut tx = self.write_tx().await?;
        if let Some(agent) = &w.target.agent_id {
            let known: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM agents WHERE id = ? AND tenant_id = ?")
                    .bind(agent)
                    .bind(&w.tenant_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if known.is_none() {
                return Err(Error::NotFound(format!("host {agent}")));
            }
        }
        // Housekeeping on write: forget long-ended one-off windows/silences.
        sqlx::query("DELETE FROM maintenance_windows WHERE end_at IS NOT NULL AND end_at < ?")
            .bind(now - RETENTION_MS)
            .execute(&mut *tx)
            .await?;
        let (start, end, weekly) = match w.schedule {
            Schedule::Between { start, end } => (Some(start), Some(end), None),
            Schedule::Weekly(s) => (None, None, Some(s)),
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO maintenance_windows (tenant_id, kind, site, agent_id, check_kind, start_at, end_at,
                                              weekdays, start_minute, duration_secs, reason, created_by, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&w.tenant_id)
        .bind(w.kind.as_str())
        .bind(&w.target.site)
        .bind(&w.target.agent_id)
        .bind(&w.target.check)
        .bind(start)
        .bind(end)
        .bind(weekly.map(|s| i64::from(s.days)))
        .bind(weekly.map(|s| i64::from(s.start_minute)))
        .bind(weekly.map(|s| i64::from(s.duration_secs)))
        .bind(&w.reason)
        .bind(&caller.name)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let window = fetch(&mut tx, &Scope::All, id, &[w.kind])
            .await?
            .ok_or_else(|| Error::NotFound(format!("window {id}")))?;
        let view = maintenance::WindowView::new(&window, now);
        audit(
            &mut tx,
            &w.tenant_id,
            &caller.name,
            &audit_action(w.kind, "create"),
            &target_of(&window),
            view.line().trim(),
            now,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            id,
            kind = w.kind.as_str(),
            tenant_id = w.tenant_id,
            by = caller.name,
            "maintenance window created"
        );
        Ok(window)
    }

    pub(super) async fn windows(&self, scope: &Scope, kinds: &[Kind]) -> Result<Vec<Window>> {
        let rows = sqlx::query(select_windows!(
            "WHERE (?1 IS NULL OR w.tenant_id = ?1) ORDER BY w.id DESC LIMIT 1000"
        ))
        .bind(scope_tenant(scope))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(window_from_row)
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|w| kinds.contains(&w.kind))
            .collect())
    }

    pub(super) async fn remove_window(
        &self,
        caller: &ApiCaller,
        id: i64,
        kinds: &[Kind],
        now: Millis,
    ) -> Result<Window> {
        caller.require_write()?;
        let mut tx = self.write_tx().await?;
        let window = fetch(&mut tx, &caller.scope, id, kinds)
            .await?
            .ok_or_else(|| Error::NotFound(format!("{} {id}", noun(kinds))))?;
        sqlx::query("DELETE FROM maintenance_windows WHERE id = ? AND tenant_id = ?")
            .bind(id)
            .bind(&window.tenant_id)
            .execute(&mut *tx)
            .await?;
        let view = maintenance::WindowView::new(&window, now);
        audit(
            &mut tx,
            &window.tenant_id,
            &caller.name,
            &audit_action(window.kind, "delete"),
            &target_of(&window),
            view.line().trim(),
            now,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(
            id,
            kind = window.kind.as_str(),
            by = caller.name,
            "maintenance window removed"
        );
        Ok(window)
    }
}

fn noun(kinds: &[Kind]) -> &'static str {
    if kinds == Kind::SILENCES {
        "silence"
    } else {
        "maintenance window"
    }
}

async fn fetch(tx: &mut Tx, scope: &Scope, id: i64, kinds: &[Kind]) -> Result<Option<Window>> {
    let row = sqlx::query(select_windows!(
        "WHERE w.id = ?2 AND (?1 IS NULL OR w.tenant_id = ?1)"
    ))
    .bind(scope_tenant(scope))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row
        .as_ref()
        .map(window_from_row)
        .transpose()?
        .filter(|w| kinds.contains(&w.kind)))
}

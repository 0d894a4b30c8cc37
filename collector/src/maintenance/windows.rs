//! Windows and silences as decisions over storage: stored rows become
//! [`Window`]s (and the engine's [`Holds`]), and creating or removing one
//! is audited in the same transaction.
//!
//! Cost: one indexed query per engine transaction loads the windows that
//! can cover one agent; the sweep loads all active windows once for its
//! escalation pass. Ended one-off windows and silences stay listed (as
//! ended) for `[retention] maintenance_days`, then retention removes them
//! (`crate::retention`); the audit log keeps the record.

use std::collections::HashMap;

use super::recurrence::Recurrence;
use super::rrule::Rule;
use super::schedule::Weekly;
use super::{Holds, Kind, NewWindow, Schedule, Target, Window, WindowView, stored_time_zone};
use crate::domain::{ApiCaller, Millis, Scope};
use crate::store::{Audit, NewWindowRow, WindowRow};
use crate::tickets::Service;
use crate::{Error, Result};

impl TryFrom<WindowRow> for Window {
    type Error = Error;

    fn try_from(r: WindowRow) -> Result<Self> {
        let kind = Kind::parse(&r.kind)
            .ok_or_else(|| Error::Corrupt(format!("window kind {:?}", r.kind)))?;
        let schedule = match kind {
            Kind::Weekly => {
                let w = Weekly::new(
                    u8::try_from(r.weekdays.unwrap_or(0)).unwrap_or(0),
                    u16::try_from(r.start_minute.unwrap_or(0)).unwrap_or(u16::MAX),
                    u32::try_from(r.duration_secs.unwrap_or(0)).unwrap_or(0),
                )
                .map_err(|e| Error::Corrupt(format!("weekly window: {e}")))?;
                Schedule::Weekly(w)
            }
            Kind::Rrule => Schedule::Recurring(recurrence_of(&r)?),
            Kind::Once | Kind::Silence => Schedule::Between {
                start: r.start_at.unwrap_or(0),
                end: r.end_at.unwrap_or(0),
            },
        };
        Ok(Window {
            id: r.id,
            tenant_id: r.tenant_id,
            kind,
            target: Target {
                site: r.site,
                agent_id: r.agent_id,
                check: r.check,
            },
            schedule,
            reason: r.reason,
            created_by: r.created_by,
            created_at: r.created_at,
            time_zone: r.time_zone,
        })
    }
}

/// An `rrule` row's schedule; a row the current rules refuse is corrupt.
fn recurrence_of(r: &WindowRow) -> Result<Recurrence> {
    let corrupt = |e: String| Error::Corrupt(format!("rrule window {}: {e}", r.id));
    let rule = Rule::parse(r.rrule.as_deref().unwrap_or("")).map_err(corrupt)?;
    let dtstart = r
        .dtstart
        .as_deref()
        .unwrap_or("")
        .parse()
        .map_err(|e| corrupt(format!("dtstart: {e}")))?;
    Recurrence::new(
        rule,
        dtstart,
        u16::try_from(r.start_minute.unwrap_or(0)).unwrap_or(u16::MAX),
        u32::try_from(r.duration_secs.unwrap_or(0)).unwrap_or(0),
    )
    .map_err(corrupt)
}

impl Holds {
    /// One tenant's stored windows as the engine's hold lookup.
    pub fn from_rows(rows: Vec<WindowRow>) -> Result<Self> {
        let windows = rows
            .into_iter()
            .map(Window::try_from)
            .collect::<Result<Vec<_>>>()?;
        let tz = windows.first().map(|w| stored_time_zone(&w.time_zone));
        Ok(tz.map_or_else(Holds::default, |tz| Holds::new(tz, windows)))
    }
}

/// Every tenant's windows that can be active at a moment: the sweep loads
/// them once for its escalation pass.
pub struct ActiveWindows(HashMap<String, Holds>);

impl ActiveWindows {
    pub fn from_rows(rows: Vec<WindowRow>) -> Result<Self> {
        let mut by_tenant: HashMap<String, Vec<WindowRow>> = HashMap::new();
        for r in rows {
            by_tenant.entry(r.tenant_id.clone()).or_default().push(r);
        }
        let mut out = HashMap::new();
        for (tenant, rows) in by_tenant {
            out.insert(tenant, Holds::from_rows(rows)?);
        }
        Ok(Self(out))
    }

    /// If the ticket's scope is in maintenance at `now`: until when.
    pub fn until(
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

fn audit_action(kind: Kind, verb: &str) -> String {
    match kind {
        Kind::Silence => format!("silence.{verb}"),
        Kind::Once | Kind::Weekly | Kind::Rrule => format!("maintenance.{verb}"),
    }
}

fn target_of(w: &Window) -> String {
    match w.kind {
        Kind::Silence => format!("silence/{}", w.id),
        Kind::Once | Kind::Weekly | Kind::Rrule => format!("maintenance/{}", w.id),
    }
}

fn noun(kinds: &[Kind]) -> &'static str {
    if kinds == Kind::SILENCES {
        "silence"
    } else {
        "maintenance window"
    }
}

impl Service {
    /// Sets a tenant's IANA time zone (validated by the caller), audited.
    pub async fn set_tenant_time_zone(
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
        let mut desk = self.begin().await?;
        if !desk.tx.set_time_zone(tenant_id, time_zone).await? {
            return Err(Error::NotFound(format!("tenant {tenant_id}")));
        }
        desk.tx
            .insert_audit(Audit {
                tenant_id: Some(tenant_id),
                at: now,
                actor: &caller.name,
                source: &caller.source,
                action: "tenant.time_zone",
                target: &format!("tenant/{tenant_id}"),
                detail: &format!("time zone set to {time_zone}"),
            })
            .await?;
        desk.commit().await
    }

    /// Stores a validated window or silence, audited; refuses viewers and
    /// (as not found) a tenant or host outside the caller's scope.
    pub async fn create_maintenance(
        &self,
        caller: &ApiCaller,
        w: &NewWindow,
        now: Millis,
    ) -> Result<Window> {
        caller.require_write()?;
        if !caller.scope.allows(&w.tenant_id) {
            return Err(Error::NotFound(format!("tenant {}", w.tenant_id)));
        }
        let mut desk = self.begin().await?;
        if let Some(agent) = &w.target.agent_id
            && !desk.tx.agent_exists(&w.tenant_id, agent).await?
        {
            return Err(Error::NotFound(format!("host {agent}")));
        }
        let (mut start_at, mut end_at) = (None, None);
        let (mut weekdays, mut start_minute, mut duration_secs) = (None, None, None);
        let (mut rrule, mut dtstart) = (None, None);
        match &w.schedule {
            &Schedule::Between { start, end } => (start_at, end_at) = (Some(start), Some(end)),
            Schedule::Weekly(s) => {
                weekdays = Some(i64::from(s.days));
                start_minute = Some(i64::from(s.start_minute));
                duration_secs = Some(i64::from(s.duration_secs));
            }
            Schedule::Recurring(r) => {
                start_minute = Some(i64::from(r.start_minute()));
                duration_secs = Some(i64::from(r.duration_secs()));
                rrule = Some(r.rule().to_string());
                dtstart = Some(r.dtstart().to_string());
            }
        }
        let id = desk
            .tx
            .insert_window(&NewWindowRow {
                tenant_id: &w.tenant_id,
                kind: w.kind.as_str(),
                site: w.target.site.as_deref(),
                agent_id: w.target.agent_id.as_deref(),
                check: w.target.check.as_deref(),
                start_at,
                end_at,
                weekdays,
                start_minute,
                duration_secs,
                rrule: rrule.as_deref(),
                dtstart: dtstart.as_deref(),
                reason: &w.reason,
                created_by: &caller.name,
                created_at: now,
            })
            .await?;
        let window: Window = desk
            .tx
            .window(&Scope::All, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("window {id}")))?
            .try_into()?;
        let view = WindowView::new(&window, now);
        desk.tx
            .insert_audit(Audit {
                tenant_id: Some(&w.tenant_id),
                at: now,
                actor: &caller.name,
                source: &caller.source,
                action: &audit_action(w.kind, "create"),
                target: &target_of(&window),
                detail: view.line().trim(),
            })
            .await?;
        desk.commit().await?;
        tracing::info!(
            id,
            kind = w.kind.as_str(),
            tenant_id = w.tenant_id,
            by = caller.name,
            "maintenance window created"
        );
        Ok(window)
    }

    /// Windows of `kinds` in scope, newest first (ended ones are kept 7 days).
    pub async fn list_maintenance(&self, scope: &Scope, kinds: &[Kind]) -> Result<Vec<Window>> {
        Ok(self
            .store()
            .list_windows(scope)
            .await?
            .into_iter()
            .map(Window::try_from)
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|w| kinds.contains(&w.kind))
            .collect())
    }

    /// Removes a window or silence of one of `kinds`, audited.
    pub async fn delete_maintenance(
        &self,
        caller: &ApiCaller,
        id: i64,
        kinds: &[Kind],
        now: Millis,
    ) -> Result<Window> {
        caller.require_write()?;
        let mut desk = self.begin().await?;
        let window = desk
            .tx
            .window(&caller.scope, id)
            .await?
            .map(Window::try_from)
            .transpose()?
            .filter(|w| kinds.contains(&w.kind))
            .ok_or_else(|| Error::NotFound(format!("{} {id}", noun(kinds))))?;
        desk.tx.delete_window(&window.tenant_id, id).await?;
        let view = WindowView::new(&window, now);
        desk.tx
            .insert_audit(Audit {
                tenant_id: Some(&window.tenant_id),
                at: now,
                actor: &caller.name,
                source: &caller.source,
                action: &audit_action(window.kind, "delete"),
                target: &target_of(&window),
                detail: view.line().trim(),
            })
            .await?;
        desk.commit().await?;
        tracing::info!(
            id,
            kind = window.kind.as_str(),
            by = caller.name,
            "maintenance window removed"
        );
        Ok(window)
    }
}

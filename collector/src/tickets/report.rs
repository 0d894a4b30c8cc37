//! Reports and sessions: what an agent's hello, reports and goodbye do to
//! its state and tickets, each inside one write transaction (its own, or
//! the batch's the ingest writer shares: see [`super::writer`]).

use super::engine::Step;
use std::collections::HashMap;

use super::problems::{self, AgentCtx, AgentProblems, LIVENESS_CHECK, LIVENESS_ITEM};
use super::service::{Desk, Service};
use super::{policy::Policy, retire};
use crate::domain::{
    ApplyOutcome, CheckResult, CheckState, HostFacts, Millis, Report, ReportPayload,
};
use crate::limits::SeriesCaps;
use crate::store::{CheckStateWrite, SessionRow, StoredCheck};
use crate::{Error, Result};

impl Service {
    /// Commits one report: deduplicates by (agent, boot_id, seq), stores
    /// check states, the snapshot and a metric sample when one is due
    /// (`crate::history`), and opens/updates/resolves tickets —
    /// all in one transaction. Only after this returns may the report be
    /// acknowledged.
    pub async fn apply_report(
        &self,
        tenant_id: &str,
        agent_id: &str,
        report: &Report,
        now: Millis,
    ) -> Result<ApplyOutcome> {
        let mut desk = self.begin().await?;
        let outcome = self
            .apply_report_in(&mut desk, tenant_id, agent_id, report, now)
            .await?;
        desk.commit().await?;
        Ok(outcome)
    }

    /// [`Service::apply_report`] inside `desk`'s transaction (which a batch
    /// of ingest writes shares: see [`super::writer`]).
    pub(crate) async fn apply_report_in(
        &self,
        desk: &mut Desk<'_>,
        tenant_id: &str,
        agent_id: &str,
        report: &Report,
        now: Millis,
    ) -> Result<ApplyOutcome> {
        // The agent must belong to the writing tenant before anything else.
        let ctx = AgentCtx::load(desk.tx.as_mut(), tenant_id, agent_id).await?;
        if ctx.row.revoked {
            return Err(Error::PermissionDenied("agent is revoked".into()));
        }
        let seq = i64::try_from(report.seq).unwrap_or(i64::MAX);
        if !desk
            .tx
            .record_delivery(tenant_id, agent_id, &report.boot_id, seq, now)
            .await?
        {
            return Ok(ApplyOutcome {
                duplicate: true,
                ..ApplyOutcome::default()
            });
        }
        // The tenant's policy, resolved once per report.
        let policy = self.policy.for_tenant(&ctx.row.tenant);
        let mut outcome = ApplyOutcome::default();
        if ctx.row.overdue {
            let steps = alive_again(desk, &policy, &ctx, "reporting again", now).await?;
            outcome.count(&steps);
        }
        let caps = self.limits.series_caps(&ctx.row.tenant);
        let (steps, series_dropped) = apply_results(desk, &policy, &ctx, caps, report, now).await?;
        outcome.count(&steps);
        outcome.series_dropped = series_dropped;
        let snapshot = match &report.payload {
            ReportPayload::Heartbeat { snapshot, .. } => serde_json::to_string(snapshot).ok(),
            ReportPayload::StateChanges(_) => None,
        };
        let sampled_at = crate::history::sample(
            desk.tx.as_mut(),
            &ctx.row,
            report,
            self.metric_sample_ms,
            now,
        )
        .await?;
        desk.tx
            .touch_agent(tenant_id, agent_id, snapshot.as_deref(), sampled_at, now)
            .await?;
        Ok(outcome)
    }

    /// Records a new session (hello): facts, boot id, heartbeat interval,
    /// online; resolves the agent's liveness ticket if it had one.
    /// `clock_offset_ms` is `now` minus the agent's clock at hello (`None`:
    /// the agent does not say); it is stored, shown as the agent's
    /// `clock_offset_ms`/`clock_skewed` and logged when beyond the
    /// tolerance. No ticket decision uses it. `now` names the session: its
    /// end ([`Service::end_session`]) passes it back.
    pub async fn start_session(&self, hello: &Hello<'_>, now: Millis) -> Result<()> {
        let mut desk = self.begin().await?;
        self.start_session_in(&mut desk, hello, now).await?;
        desk.commit().await
    }

    pub(crate) async fn start_session_in(
        &self,
        desk: &mut Desk<'_>,
        hello: &Hello<'_>,
        now: Millis,
    ) -> Result<()> {
        let Hello {
            tenant_id,
            agent_id,
            ..
        } = *hello;
        if self.limits.clock_skewed(hello.clock_offset_ms) {
            tracing::warn!(
                agent_id,
                clock_offset_ms = hello.clock_offset_ms,
                tolerance_secs = self.limits.clock_skew_tolerance_secs,
                "agent clock is skewed"
            );
        }
        let session = SessionRow {
            facts: hello.facts,
            boot_id: hello.boot_id,
            interval_secs: i64::from(hello.interval_secs.clamp(1, 3600)),
            clock_offset_ms: hello.clock_offset_ms,
        };
        desk.tx
            .start_session(tenant_id, agent_id, &session, now)
            .await?;
        // Back after being overdue or after a (server's) shutdown ticket.
        let ctx = AgentCtx::load(desk.tx.as_mut(), tenant_id, agent_id).await?;
        let policy = self.policy.for_tenant(&ctx.row.tenant);
        alive_again(desk, &policy, &ctx, "agent connected", now).await?;
        Ok(())
    }

    /// Records the end of the session that started at `started_at`:
    /// `clean` = the agent said goodbye (a clean shutdown: offline, no
    /// ticket unless the role says it must stay up); a lost stream leaves
    /// it disconnected, and the sweep declares it overdue unless it
    /// reconnects (to any collector) within the reconnect grace. A session
    /// that is no longer the agent's latest (it has reconnected meanwhile)
    /// changes nothing.
    pub async fn end_session(&self, end: &SessionEnd<'_>, now: Millis) -> Result<()> {
        let mut desk = self.begin().await?;
        self.end_session_in(&mut desk, end, now).await?;
        desk.commit().await
    }

    pub(crate) async fn end_session_in(
        &self,
        desk: &mut Desk<'_>,
        end: &SessionEnd<'_>,
        now: Millis,
    ) -> Result<()> {
        let SessionEnd {
            tenant_id,
            agent_id,
            started_at,
            clean,
        } = *end;
        let status = if clean { "offline" } else { "disconnected" };
        if !desk
            .tx
            .end_session(tenant_id, agent_id, started_at, status, now)
            .await?
        {
            return Ok(());
        }
        let ctx = AgentCtx::load(desk.tx.as_mut(), tenant_id, agent_id).await?;
        let policy = self.policy.for_tenant(&ctx.row.tenant);
        if clean && policy.shutdown_ticket_roles.contains(&ctx.row.role) {
            let message = format!(
                "{} role: stopped cleanly, but this host must stay up",
                ctx.row.role
            );
            problems::observe(
                desk,
                &policy,
                &ctx,
                LIVENESS_CHECK,
                LIVENESS_ITEM,
                CheckState::Crit,
                &message,
                now,
                now,
            )
            .await?;
        }
        Ok(())
    }
}

/// An agent's hello: what a new session records.
#[derive(Debug, Clone, Copy)]
pub struct Hello<'a> {
    pub tenant_id: &'a str,
    pub agent_id: &'a str,
    pub boot_id: &'a str,
    pub facts: &'a HostFacts,
    pub interval_secs: u32,
    pub clock_offset_ms: Option<i64>,
}

/// The end of one session.
#[derive(Debug, Clone, Copy)]
pub struct SessionEnd<'a> {
    pub tenant_id: &'a str,
    pub agent_id: &'a str,
    /// The `now` its start was recorded with: names the session.
    pub started_at: Millis,
    /// The agent said goodbye.
    pub clean: bool,
}

/// The agent is heard from again: clear overdue, resolve liveness.
async fn alive_again(
    desk: &mut Desk<'_>,
    policy: &Policy,
    ctx: &AgentCtx,
    why: &str,
    now: Millis,
) -> Result<Vec<Step>> {
    desk.tx
        .set_overdue(&ctx.row.tenant_id, &ctx.row.agent_id, None)
        .await?;
    desk.changed(&ctx.row.tenant_id, crate::live::Kind::Agent);
    problems::observe(
        desk,
        policy,
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

/// Admission of new series for one report (see [`crate::limits`]): a
/// result for a `(check, item)` the agent has never reported is stored only
/// while the agent and its tenant are under their caps. The counts are kept
/// by the database (triggers on `check_states`); they are read once per
/// report, at its first new series, and the series admitted since are
/// added here, since the report's states are written together.
struct SeriesBudget {
    caps: SeriesCaps,
    /// (agent, tenant) series as stored when the report began; the
    /// tenant's only under a tenant cap (a sum over its agents).
    stored: Option<(i64, i64)>,
    /// New series admitted so far in this report.
    admitted: i64,
    /// Results dropped so far: new series beyond a cap.
    dropped: u32,
}

impl SeriesBudget {
    fn new(caps: SeriesCaps) -> Self {
        Self {
            caps,
            stored: None,
            admitted: 0,
            dropped: 0,
        }
    }

    /// Whether one more series fits (else the drop is counted).
    async fn admit(&mut self, desk: &mut Desk<'_>, ctx: &AgentCtx) -> Result<bool> {
        if self.caps.per_agent.is_none() && self.caps.per_tenant.is_none() {
            return Ok(true);
        }
        let (agent, tenant) = match self.stored {
            Some(counts) => counts,
            None => {
                let (tenant_id, agent_id) = (&ctx.row.tenant_id, &ctx.row.agent_id);
                let agent = match self.caps.per_agent {
                    Some(_) => desk.tx.agent_series(tenant_id, agent_id).await?,
                    None => 0,
                };
                let tenant = match self.caps.per_tenant {
                    Some(_) => desk.tx.tenant_series(tenant_id).await?,
                    None => 0,
                };
                *self.stored.insert((agent, tenant))
            }
        };
        let full =
            |cap: Option<u32>, n: i64| cap.is_some_and(|c| n + self.admitted >= i64::from(c));
        if full(self.caps.per_agent, agent) || full(self.caps.per_tenant, tenant) {
            self.dropped += 1;
            return Ok(false);
        }
        self.admitted += 1;
        Ok(true)
    }
}

/// Stores a report's results and runs each through the engine, then (for a
/// heartbeat) retires the checks it left out. The agent's check states and
/// problems are read once and its states written in one statement, so a
/// report costs a handful of queries however many results it carries.
///
/// A result older than what is stored (a late resend) is skipped: it must
/// not roll state back. A result that would create a series beyond a cap
/// is dropped (counted): nothing is stored and no ticket decision is made.
async fn apply_results(
    desk: &mut Desk<'_>,
    policy: &Policy,
    ctx: &AgentCtx,
    caps: SeriesCaps,
    report: &Report,
    now: Millis,
) -> Result<(Vec<Step>, u32)> {
    let row = &ctx.row;
    let observed_at = report.observed_at;
    let mut known: HashMap<(String, String), StoredCheck> = desk
        .tx
        .agent_check_states(&row.agent_id)
        .await?
        .into_iter()
        .map(|c| ((c.check.clone(), c.item.clone()), c))
        .collect();
    let mut series = SeriesBudget::new(caps);
    let mut accepted: Vec<(&CheckResult, String)> = Vec::new();
    for r in report.payload.results() {
        match known.remove(&(r.check.clone(), r.item.clone())) {
            Some(stored) if stored.observed_at > observed_at => continue,
            Some(_) => {}
            None => {
                if !series.admit(desk, ctx).await? {
                    continue;
                }
            }
        }
        let metrics = serde_json::to_string(&r.metrics).unwrap_or_else(|_| "[]".into());
        accepted.push((r, metrics));
    }
    let writes: Vec<CheckStateWrite<'_>> = accepted
        .iter()
        .map(|(r, metrics)| CheckStateWrite {
            tenant_id: &row.tenant_id,
            agent_id: &row.agent_id,
            check: &r.check,
            item: &r.item,
            state: r.state.as_str(),
            message: &r.message,
            metrics,
            since: r.since,
            observed_at,
            now,
        })
        .collect();
    desk.tx.upsert_check_states(&writes).await?;
    drop(writes);

    // The agent's clock may be off: express its `since` in collector time,
    // shifted by how far the report's own timestamp is from our receive time
    // (network latency is negligible next to the rules' seconds). This is
    // not a skew measurement (a report replayed from the spool after an
    // outage is old, not skewed): the agent's clock offset is measured at
    // session start, from the hello.
    let skew = now - observed_at;
    let mut problems = AgentProblems::load(desk.tx.as_mut(), ctx).await?;
    let mut steps = Vec::new();
    for (r, _) in &accepted {
        let at = r.since.saturating_add(skew).min(now);
        let problem = problems.take(ctx, &r.check, &r.item);
        steps.extend(
            problems::observe_row(desk, policy, ctx, problem, r.state, &r.message, at, now).await?,
        );
    }
    if matches!(report.payload, ReportPayload::Heartbeat { .. }) {
        // What is left of `known` is what this heartbeat left out.
        let unreported = known.into_values().collect();
        steps.extend(retire::retire_unreported(desk, policy, ctx, unreported, now).await?);
    }
    Ok((steps, series.dropped))
}

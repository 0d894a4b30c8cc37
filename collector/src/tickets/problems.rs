//! Problems and their tickets inside a decision's transaction: a result
//! (or the passing of time) goes through the engine, and its steps become
//! ticket changes, timeline events and the problem's saved state.

use std::collections::HashMap;

use super::engine::{self, Hold, Problem, Step};
use super::lifecycle::ENGINE;
use super::policy::{Policy, mins_ms};
use super::service::Desk;
use super::{fingerprint, sites};
use crate::domain::{CheckState, Millis};
use crate::store::{AgentRow, NewTicket, SaveProblem, StoredProblem, WriteTx};
use crate::{Error, Result};

/// The synthetic check that carries agent liveness.
pub const LIVENESS_CHECK: &str = "agent";
pub const LIVENESS_ITEM: &str = "heartbeat";

/// The agent facts decisions need, with the windows that can cover it.
#[derive(Debug, Clone)]
pub struct AgentCtx {
    pub row: AgentRow,
    /// Maintenance windows and silences that can cover this agent.
    pub maintenance: crate::maintenance::Holds,
}

impl AgentCtx {
    /// Loads (and on PostgreSQL locks) the agent; `NotFound` if the tenant
    /// has no such agent.
    pub async fn load(tx: &mut dyn WriteTx, tenant_id: &str, agent_id: &str) -> Result<Self> {
        let row = tx
            .agent_for_update(tenant_id, agent_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("agent {agent_id}")))?;
        let windows = tx.windows_for_agent(tenant_id, &row.site, agent_id).await?;
        Ok(Self {
            maintenance: crate::maintenance::Holds::from_rows(windows)?,
            row,
        })
    }

    /// Whether a maintenance window or silence covers `check` at `now`:
    /// the problem is tracked, but no ticket opens (it stays waiting, so
    /// the sweep opens one right after the window if it still exists).
    pub fn in_maintenance(&self, check: &str, now: Millis) -> bool {
        self.maintenance
            .until(&self.row.site, &self.row.agent_id, check, now)
            .is_some()
    }
}

/// A problem: key, engine state, the latest text, and what is stored.
pub struct ProblemRow {
    pub check: String,
    pub item: String,
    pub problem: Problem,
    pub message: String,
    /// As loaded (`None`: new), so an unchanged problem is not rewritten.
    stored: Option<StoredProblem>,
}

impl ProblemRow {
    pub fn from_stored(check: String, item: String, stored: Option<StoredProblem>) -> Self {
        let (problem, message) = stored.as_ref().map_or_else(
            || (Problem::default(), String::new()),
            |s| {
                (
                    serde_json::from_str(&s.engine).unwrap_or_default(),
                    s.message.clone(),
                )
            },
        );
        Self {
            check,
            item,
            problem,
            message,
            stored,
        }
    }
}

pub async fn load_problem(
    tx: &mut dyn WriteTx,
    ctx: &AgentCtx,
    check: &str,
    item: &str,
) -> Result<ProblemRow> {
    let fp = fingerprint(&ctx.row.agent_id, check, item);
    let stored = tx.problem_for_update(&ctx.row.tenant_id, &fp).await?;
    Ok(ProblemRow::from_stored(
        check.to_string(),
        item.to_string(),
        stored,
    ))
}

/// An agent's problems, read in one query when a report starts (and, on
/// PostgreSQL, locked with it), so each result needs no read of its own.
pub struct AgentProblems(HashMap<String, StoredProblem>);

impl AgentProblems {
    pub async fn load(tx: &mut dyn WriteTx, ctx: &AgentCtx) -> Result<Self> {
        let rows = tx
            .agent_problems_for_update(&ctx.row.tenant_id, &ctx.row.agent_id)
            .await?;
        Ok(Self(rows.into_iter().collect()))
    }

    /// The problem of `check`/`item` as stored (taken: each result is
    /// applied once per report).
    pub fn take(&mut self, ctx: &AgentCtx, check: &str, item: &str) -> ProblemRow {
        let stored = self.0.remove(&fingerprint(&ctx.row.agent_id, check, item));
        ProblemRow::from_stored(check.to_string(), item.to_string(), stored)
    }
}

/// Saves the problem unless nothing about it that a decision reads
/// changed: the engine state, and the message while it can still end up
/// in a ticket (a healthy problem with no ticket keeps its old text, so a
/// heartbeat whose OK message carries a changing figure writes nothing).
pub async fn save_problem(
    tx: &mut dyn WriteTx,
    ctx: &AgentCtx,
    p: &ProblemRow,
    now: Millis,
) -> Result<()> {
    let engine = serde_json::to_string(&p.problem).map_err(|e| Error::Corrupt(e.to_string()))?;
    let quiet = p.problem.state == CheckState::Ok && p.problem.ticket.is_none();
    if p.stored
        .as_ref()
        .is_some_and(|s| s.engine == engine && (s.message == p.message || quiet))
    {
        return Ok(());
    }
    tx.save_problem(&SaveProblem {
        tenant_id: &ctx.row.tenant_id,
        fingerprint: &fingerprint(&ctx.row.agent_id, &p.check, &p.item),
        agent_id: &ctx.row.agent_id,
        check: &p.check,
        item: &p.item,
        engine: &engine,
        message: &p.message,
        waiting: p.problem.waiting(),
        now,
    })
    .await
}

/// Runs one observation (agent result or synthetic liveness result).
#[allow(clippy::too_many_arguments)]
pub async fn observe(
    desk: &mut Desk<'_>,
    policy: &Policy,
    ctx: &AgentCtx,
    check: &str,
    item: &str,
    state: CheckState,
    message: &str,
    at: Millis,
    now: Millis,
) -> Result<Vec<Step>> {
    let row = load_problem(desk.tx.as_mut(), ctx, check, item).await?;
    observe_row(desk, policy, ctx, row, state, message, at, now).await
}

/// [`observe`] for a problem already read (see [`AgentProblems`]).
#[allow(clippy::too_many_arguments)]
pub async fn observe_row(
    desk: &mut Desk<'_>,
    policy: &Policy,
    ctx: &AgentCtx,
    mut row: ProblemRow,
    state: CheckState,
    message: &str,
    at: Millis,
    now: Millis,
) -> Result<Vec<Step>> {
    let check = row.check.clone();
    message.clone_into(&mut row.message);
    let hold = Hold {
        open: ctx.in_maintenance(&check, now),
        resolve: false,
    };
    let steps = engine::observe(&mut row.problem, state, at, now, &policy.rule(&check), hold);
    carry_out(desk, policy, ctx, &mut row, &steps, now).await?;
    save_problem(desk.tx.as_mut(), ctx, &row, now).await?;
    Ok(steps)
}

/// Time-based decisions for a waiting problem.
pub async fn tick(
    desk: &mut Desk<'_>,
    policy: &Policy,
    ctx: &AgentCtx,
    mut row: ProblemRow,
    now: Millis,
) -> Result<Vec<Step>> {
    // Inhibition: an overdue host's check problems neither open nor resolve
    // on stale data (its liveness problem is the one that speaks).
    let inhibited = ctx.row.overdue && row.check != LIVENESS_CHECK;
    // A host of a site in outage gets no ticket of its own: the site ticket
    // speaks for it.
    let grouped = row.check == LIVENESS_CHECK && sites::in_outage(desk.tx.as_mut(), ctx).await?;
    let hold = Hold {
        open: inhibited || grouped || ctx.in_maintenance(&row.check, now),
        resolve: inhibited,
    };
    let steps = engine::tick(&mut row.problem, now, &policy.rule(&row.check), hold);
    carry_out(desk, policy, ctx, &mut row, &steps, now).await?;
    if row.message == super::retire::RETIRED_MESSAGE && row.problem.open_ticket().is_none() {
        // A retired check's ticket has resolved: nothing is left to decide.
        let fp = fingerprint(&ctx.row.agent_id, &row.check, &row.item);
        desk.tx.delete_problem(&ctx.row.tenant_id, &fp).await?;
    } else {
        save_problem(desk.tx.as_mut(), ctx, &row, now).await?;
    }
    Ok(steps)
}

fn summary(ctx: &AgentCtx, check: &str, item: &str, state: CheckState, message: &str) -> String {
    let what = if item.is_empty() || check == LIVENESS_CHECK {
        check.to_string()
    } else {
        format!("{check} {item}")
    };
    format!(
        "{} {what} on {}: {message}",
        state.as_str().to_uppercase(),
        ctx.row.host
    )
}

async fn carry_out(
    desk: &mut Desk<'_>,
    policy: &Policy,
    ctx: &AgentCtx,
    row: &mut ProblemRow,
    steps: &[Step],
    now: Millis,
) -> Result<()> {
    let tenant_id = ctx.row.tenant_id.as_str();
    for step in steps {
        match *step {
            Step::Open { severity, flapping } => {
                let priority = policy.priority(severity, &ctx.row.role);
                let sla = policy.sla(&priority);
                let kind = if row.check == LIVENESS_CHECK {
                    "agent"
                } else {
                    "check"
                };
                let text = summary(ctx, &row.check, &row.item, severity, &row.message);
                let fp = fingerprint(&ctx.row.agent_id, &row.check, &row.item);
                let detail = format!(
                    "opened{} ({priority}, L{}): {}",
                    if flapping { " as flapping" } else { "" },
                    policy.start_tier,
                    row.message
                );
                let ticket = NewTicket {
                    tenant_id,
                    kind,
                    site: &ctx.row.site,
                    agent_id: &ctx.row.agent_id,
                    host: &ctx.row.host,
                    check: &row.check,
                    item: &row.item,
                    fingerprint: &fp,
                    severity: severity.as_str(),
                    summary: &text,
                    priority: &priority,
                    tier: i64::from(policy.start_tier),
                    flapping,
                    detected_at: row.problem.bad_since.unwrap_or(now),
                    ack_due_at: now + mins_ms(sla.ack_mins),
                    resolve_due_at: now + mins_ms(sla.resolve_mins),
                    now,
                };
                let id = desk.open_ticket(&ticket, &detail).await?;
                engine::link_new_ticket(&mut row.problem, id, severity);
            }
            Step::Reopen { id, severity } => {
                let text = summary(ctx, &row.check, &row.item, severity, &row.message);
                desk.tx
                    .reopen_ticket(id, severity.as_str(), &text, now)
                    .await?;
                let detail = format!("relapse: {}", row.message);
                desk.event(tenant_id, id, now, "reopened", &detail, ENGINE)
                    .await?;
            }
            Step::Update {
                id,
                severity,
                severity_changed,
            } => {
                let text = summary(ctx, &row.check, &row.item, severity, &row.message);
                let priority = policy.priority(severity, &ctx.row.role);
                desk.tx
                    .update_ticket(id, severity.as_str(), &text, &priority, now)
                    .await?;
                if severity_changed {
                    let detail = format!(
                        "severity {} ({priority}): {}",
                        severity.as_str(),
                        row.message
                    );
                    desk.event(tenant_id, id, now, "updated", &detail, ENGINE)
                        .await?;
                }
            }
            Step::Resolve { id } => {
                let detail = format!("recovered: {}", row.message);
                desk.resolve_ticket(tenant_id, id, ENGINE, &detail, now)
                    .await?;
            }
            Step::Flapping { id, flapping } => {
                desk.tx.set_flapping(id, flapping, now).await?;
                let detail = if flapping {
                    format!("flapping: {:.0}% state changes", row.problem.flap_percent())
                } else {
                    "stopped flapping".to_string()
                };
                desk.event(tenant_id, id, now, "flapping", &detail, ENGINE)
                    .await?;
            }
        }
    }
    Ok(())
}

//! The engine's clock: once a second, one transaction that marks overdue
//! agents, runs the time-based decisions of waiting problems (confirmation
//! and recovery by duration), groups, and escalates tickets nobody
//! acknowledged.
//!
//! Everything is state in the database, and every change is conditional on
//! the state it changes (`WHERE tier = $n AND ack_due_at <= $now`), so a
//! collector restart neither loses nor repeats an escalation; with several
//! collectors on one database the sweeper lease lets one sweep at a time.

use std::collections::HashMap;

use super::lifecycle::ENGINE;
use super::policy::mins_ms;
use super::problems::{self, AgentCtx, LIVENESS_CHECK, LIVENESS_ITEM, ProblemRow};
use super::service::{Desk, Service};
use super::{engine::Step, groups, sites};
use crate::domain::{CheckState, Millis, SweepOutcome, rfc3339};
use crate::maintenance::ActiveWindows;
use crate::store::OverdueCutoffs;
use crate::{Error, Result};

/// Most problems or tickets handled per sweep (the rest wait a second).
const BATCH: i64 = 500;

/// The lease whose holder sweeps: one leader among the replicas.
pub const SWEEPER_LEASE: &str = "sweeper";

/// How long a sweeper lease lasts unless renewed (every sweep renews it):
/// another replica takes over this long after the leader dies at most.
const SWEEPER_LEASE_MS: Millis = 5_000;

impl Service {
    /// Sweeps if `holder` (this replica) holds or can take the sweeper
    /// lease, renewing it; otherwise does nothing (`leader` is false).
    pub async fn sweep_if_leader(&self, holder: &str, now: Millis) -> Result<SweepOutcome> {
        let leads = self
            .store()
            .acquire_lease(SWEEPER_LEASE, holder, now, now + SWEEPER_LEASE_MS)
            .await?;
        if !leads {
            return Ok(SweepOutcome::default());
        }
        self.sweep(now).await
    }

    /// Marks overdue agents, runs time-based ticket decisions and
    /// escalations due at `now`. Idempotent for the same `now`. Another
    /// collector sweeping the same database at the same moment makes this
    /// one a no-op.
    pub async fn sweep(&self, now: Millis) -> Result<SweepOutcome> {
        let mut desk = self.begin().await?;
        let mut out = SweepOutcome::default();
        if !desk.tx.try_sweeper_lease().await? {
            return Ok(out);
        }
        out.leader = true;
        overdue(&mut desk, &mut out, self.started_at, now).await?;
        let (opened, resolved) = sites::group(&mut desk, now).await?;
        out.opened += opened;
        out.resolved += resolved;
        waiting(&mut desk, &mut out, now).await?;
        let (opened, resolved) = groups::group(&mut desk, now).await?;
        out.opened += opened;
        out.resolved += resolved;
        escalate(&mut desk, &mut out, now).await?;
        late(&mut desk, now).await?;
        super::remote::still_failing(&mut desk, now).await?;
        out.reminded += super::remote::remind(&mut desk, now).await?;
        desk.commit().await?;
        Ok(out)
    }
}

/// How long a starting collector leaves agents it has not heard from since
/// it started before it judges them: their longest reconnect backoff (30 s,
/// full jitter) plus the reconnect grace, so a collector restart (or a new
/// leader) does not find the whole fleet overdue while it reconnects.
const AGENT_BACKOFF_CAP_MS: Millis = 30_000;

/// Agents gone silent (not said goodbye) past their overdue time, and
/// agents whose session ended without a goodbye past the reconnect grace.
async fn overdue(
    desk: &mut Desk<'_>,
    out: &mut SweepOutcome,
    started_at: Option<Millis>,
    now: Millis,
) -> Result<()> {
    let grace = i64::from(desk.policy.reconnect_grace_secs) * 1000;
    let seen_since = match started_at {
        Some(at) if now < at + AGENT_BACKOFF_CAP_MS + grace => at,
        _ => Millis::MIN,
    };
    let cutoffs = OverdueCutoffs {
        intervals: i64::from(desk.policy.overdue_after_intervals),
        now,
        disconnected_before: now - grace,
        seen_since,
    };
    for a in desk.tx.overdue_candidates(&cutoffs, BATCH).await? {
        desk.tx
            .set_overdue(&a.tenant_id, &a.agent_id, Some(a.last_seen_at))
            .await?;
        desk.changed(&a.tenant_id, crate::live::Kind::Agent);
        let ctx = AgentCtx::load(desk.tx.as_mut(), &a.tenant_id, &a.agent_id).await?;
        let base = desk.policy;
        let policy = base.for_tenant(&ctx.row.tenant);
        let silent = (now - a.last_seen_at) / 1000;
        let message = if a.disconnected {
            format!(
                "agent overdue: its session ended without a goodbye {silent} s ago and it has not reconnected"
            )
        } else {
            format!(
                "agent overdue: no report for {silent} s (expected every {} s)",
                a.interval_secs
            )
        };
        // Confirmation counts from the moment it became overdue.
        let steps = problems::observe(
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
        out.overdue += 1;
        out.opened += u32::try_from(steps.len()).unwrap_or(0);
        tracing::warn!(agent_id = a.agent_id, host = ctx.row.host, "agent overdue");
    }
    Ok(())
}

/// Problems waiting for time to pass.
async fn waiting(desk: &mut Desk<'_>, out: &mut SweepOutcome, now: Millis) -> Result<()> {
    // One agent context (facts + maintenance windows) per agent per sweep.
    let mut contexts: HashMap<(String, String), AgentCtx> = HashMap::new();
    for w in desk.tx.waiting_problems(BATCH).await? {
        let key = (w.tenant_id, w.agent_id);
        if !contexts.contains_key(&key) {
            // A problem of an agent that no longer exists waits for nothing;
            // a database error fails the sweep (and is logged) like any other.
            let ctx = match AgentCtx::load(desk.tx.as_mut(), &key.0, &key.1).await {
                Ok(ctx) => ctx,
                Err(Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            contexts.insert(key.clone(), ctx);
        }
        let Some(ctx) = contexts.get(&key) else {
            continue;
        };
        let base = desk.policy;
        let policy = base.for_tenant(&ctx.row.tenant);
        // The waiting row carries the problem: no second read.
        let row = ProblemRow::from_stored(w.check, w.item, Some(w.stored));
        for s in problems::tick(desk, &policy, ctx, row, now).await? {
            match s {
                Step::Resolve { .. } => out.resolved += 1,
                _ => out.opened += 1,
            }
        }
    }
    Ok(())
}

/// Not acknowledged in time: escalate to the next tier, record the breach.
/// A member of an open check group waits: its parent carries the SLA.
async fn escalate(desk: &mut Desk<'_>, out: &mut SweepOutcome, now: Millis) -> Result<()> {
    let due = desk.tx.due_escalations(now, BATCH).await?;
    if due.is_empty() {
        return Ok(());
    }
    // Active maintenance windows, loaded once (only when something is due).
    let windows = ActiveWindows::from_rows(desk.tx.active_windows(now).await?)?;
    for t in due {
        let policy = desk.policy_for(&t.tenant_id).await?;
        let sla = policy.sla(&t.priority);
        // In maintenance: the ticket stays open but does not escalate; a
        // full acknowledgement period starts when the maintenance ends, so
        // it does not escalate the instant the window closes.
        if let Some(until) = windows.until(&t.tenant_id, &t.site, &t.agent_id, &t.check, now) {
            let due = until.saturating_add(mins_ms(sla.ack_mins));
            if desk.tx.defer_ack_due(t.id, due, now).await? {
                let detail = format!(
                    "in maintenance until {}: escalation paused, acknowledge due {}",
                    rfc3339::format(until),
                    rfc3339::format(due)
                );
                desk.event(&t.tenant_id, t.id, now, "maintenance", &detail, ENGINE)
                    .await?;
            }
            continue;
        }
        if !t.ack_breached {
            let detail = format!(
                "not acknowledged within {} min ({})",
                sla.ack_mins, t.priority
            );
            desk.event(&t.tenant_id, t.id, now, "sla_breach", &detail, ENGINE)
                .await?;
        }
        if t.tier < i64::from(policy.max_tier) {
            let next_due = now + mins_ms(sla.ack_mins);
            if desk
                .tx
                .escalate_unacknowledged(t.id, t.tier, next_due, now)
                .await?
            {
                let detail = format!("not acknowledged: L{} → L{}", t.tier, t.tier + 1);
                desk.event(&t.tenant_id, t.id, now, "escalated", &detail, ENGINE)
                    .await?;
                out.escalated += 1;
            }
        } else {
            // Top tier: the breach is recorded once; no timer left.
            desk.tx.close_ack_timer(t.id).await?;
        }
    }
    Ok(())
}

/// Past the resolve time: record the breach once.
async fn late(desk: &mut Desk<'_>, now: Millis) -> Result<()> {
    for t in desk.tx.late_tickets(now, BATCH).await? {
        let resolve_mins = desk
            .policy_for(&t.tenant_id)
            .await?
            .sla(&t.priority)
            .resolve_mins;
        desk.tx.mark_resolve_breached(t.id).await?;
        let detail = format!("not resolved within {resolve_mins} min ({})", t.priority);
        desk.event(&t.tenant_id, t.id, now, "sla_breach", &detail, ENGINE)
            .await?;
    }
    Ok(())
}

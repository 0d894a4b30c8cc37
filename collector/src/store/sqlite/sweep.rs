//! The engine's clock: once a second, one transaction that marks overdue
//! agents, runs the time-based decisions of waiting problems (confirmation
//! and recovery by duration) and escalates tickets nobody acknowledged.
//!
//! Everything is state in the database, and every change is conditional on
//! the state it changes (`WHERE tier = ? AND ack_due_at <= ?`), so a
//! collector restart neither loses nor repeats an escalation.

use sqlx::Row;

use super::SqliteStore;
use super::maintenance;
use super::problems::{self, AgentCtx, LIVENESS_CHECK, LIVENESS_ITEM, add_event};
use super::tenant_policy;
use crate::Result;
use crate::domain::{CheckState, Millis, SweepOutcome};
use crate::tickets::policy::mins_ms;

/// Most problems or tickets handled per sweep (the rest wait a second).
const BATCH: i64 = 500;

pub(super) async fn sweep(store: &SqliteStore, now: Millis) -> Result<SweepOutcome> {
    let policy = store.policy.clone();
    let mut out = SweepOutcome::default();
    let mut tx = store.write_tx().await?;

    // 1. Agents gone silent (not said goodbye) past their overdue time.
    let overdue = sqlx::query(
        "SELECT id, tenant_id, interval_secs, last_seen_at FROM agents
         WHERE status IN ('online', 'disconnected') AND overdue = 0 AND revoked_at IS NULL
           AND last_seen_at + interval_secs * 1000 * ? < ? LIMIT ?",
    )
    .bind(i64::from(policy.overdue_after_intervals))
    .bind(now)
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    for row in overdue {
        let agent_id: String = row.try_get("id")?;
        let tenant_id: String = row.try_get("tenant_id")?;
        let interval: i64 = row.try_get("interval_secs")?;
        let last_seen: i64 = row.try_get("last_seen_at")?;
        sqlx::query(
            "UPDATE agents SET overdue = 1, overdue_since = ? WHERE id = ? AND tenant_id = ?",
        )
        .bind(last_seen)
        .bind(&agent_id)
        .bind(&tenant_id)
        .execute(&mut *tx)
        .await?;
        let ctx = AgentCtx::load(&mut tx, &tenant_id, &agent_id).await?;
        let message = format!(
            "agent overdue: no report for {} s (expected every {interval} s)",
            (now - last_seen) / 1000
        );
        let steps = problems::observe(
            &mut tx,
            &policy,
            &ctx,
            LIVENESS_CHECK,
            LIVENESS_ITEM,
            CheckState::Crit,
            &message,
            // Confirmation counts from the moment it became overdue.
            now,
            now,
        )
        .await?;
        out.overdue += 1;
        out.opened += u32::try_from(steps.len()).unwrap_or(0);
        tracing::warn!(agent_id, host = ctx.host, "agent overdue");
    }

    // 1b. Many hosts of one site at once: one site ticket.
    let (site_opened, site_resolved) = super::sites::group(&mut tx, &policy, now).await?;
    out.opened += site_opened;
    out.resolved += site_resolved;

    // 2. Problems waiting for time to pass.
    let waiting = sqlx::query(
        "SELECT tenant_id, agent_id, check_kind, item, engine, message FROM problems
         WHERE waiting = 1 LIMIT ?",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    // One agent context (facts + maintenance windows) per agent per sweep.
    let mut contexts: std::collections::HashMap<(String, String), AgentCtx> =
        std::collections::HashMap::new();
    for row in waiting {
        let tenant_id: String = row.try_get("tenant_id")?;
        let agent_id: String = row.try_get("agent_id")?;
        let check: String = row.try_get("check_kind")?;
        let item: String = row.try_get("item")?;
        let key = (tenant_id, agent_id);
        if !contexts.contains_key(&key) {
            // A problem of an agent that no longer exists waits for nothing;
            // a database error fails the sweep (and is logged) like any other.
            let ctx = match AgentCtx::load(&mut tx, &key.0, &key.1).await {
                Ok(ctx) => ctx,
                Err(crate::Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            contexts.insert(key.clone(), ctx);
        }
        let Some(ctx) = contexts.get(&key) else {
            continue;
        };
        // The waiting row carries the problem: no second read.
        let (problem, message) = problems::engine_and_message(&row)?;
        let problem = problems::ProblemRow {
            check,
            item,
            problem,
            message,
        };
        let steps = problems::tick(&mut tx, &policy, ctx, problem, now).await?;
        for s in steps {
            match s {
                crate::tickets::engine::Step::Resolve { .. } => out.resolved += 1,
                _ => out.opened += 1,
            }
        }
    }

    // 2b. The same check failing on many hosts of a tenant: one parent ticket.
    let (group_opened, group_resolved) = super::check_groups::group(&mut tx, &policy, now).await?;
    out.opened += group_opened;
    out.resolved += group_resolved;

    // 3. Not acknowledged in time: escalate to the next tier, record the breach.
    // A member of an open check group waits: its parent carries the SLA.
    let due = sqlx::query(
        "SELECT id, tenant_id, site, agent_id, check_kind, priority, tier, ack_breached FROM tickets
         WHERE state = 'open' AND acknowledged_at IS NULL AND ack_due_at <= ?
           AND NOT EXISTS (SELECT 1 FROM tickets p WHERE p.id = tickets.parent_id
                             AND p.kind = 'group' AND p.state = 'open')
         LIMIT ?",
    )
    .bind(now)
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    // Active maintenance windows, loaded once (only when something is due).
    let in_maintenance = if due.is_empty() {
        None
    } else {
        Some(maintenance::ActiveWindows::load(&mut tx, now).await?)
    };
    for row in due {
        let id: i64 = row.try_get("id")?;
        let tenant_id: String = row.try_get("tenant_id")?;
        let priority: String = row.try_get("priority")?;
        let tier: i64 = row.try_get("tier")?;
        let breached = row.try_get::<i64, _>("ack_breached")? != 0;
        let tenant_policy = tenant_policy::for_tenant_id(&mut tx, &policy, &tenant_id).await?;
        let sla = tenant_policy.sla(&priority);
        // In maintenance: the ticket stays open but does not escalate; its
        // acknowledgement clock restarts in full when the window ends.
        let (site, agent, check): (String, String, String) = (
            row.try_get("site")?,
            row.try_get("agent_id")?,
            row.try_get("check_kind")?,
        );
        if let Some(until) = in_maintenance
            .as_ref()
            .and_then(|m| m.until(&tenant_id, &site, &agent, &check, now))
        {
            maintenance::pause_escalation(
                &mut tx,
                &tenant_id,
                id,
                until,
                mins_ms(sla.ack_mins),
                now,
            )
            .await?;
            continue;
        }
        if !breached {
            add_event(
                &mut tx,
                &tenant_id,
                id,
                now,
                "sla_breach",
                &format!("not acknowledged within {} min ({priority})", sla.ack_mins),
                "engine",
            )
            .await?;
        }
        if tier < i64::from(tenant_policy.max_tier) {
            let changed = sqlx::query(
                "UPDATE tickets SET tier = tier + 1, escalations = escalations + 1, ack_breached = 1,
                        ack_due_at = ?, updated_at = ?
                 WHERE id = ? AND tier = ? AND acknowledged_at IS NULL AND state = 'open'",
            )
            .bind(now + mins_ms(sla.ack_mins))
            .bind(now)
            .bind(id)
            .bind(tier)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 {
                add_event(
                    &mut tx,
                    &tenant_id,
                    id,
                    now,
                    "escalated",
                    &format!("not acknowledged: L{tier} → L{}", tier + 1),
                    "engine",
                )
                .await?;
                out.escalated += 1;
            }
        } else {
            // Top tier: the breach is recorded once; no timer left.
            sqlx::query("UPDATE tickets SET ack_breached = 1, ack_due_at = NULL WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
    }
    let late = sqlx::query(
        "SELECT id, tenant_id, priority FROM tickets
         WHERE state = 'open' AND resolve_breached = 0 AND resolve_due_at <= ? LIMIT ?",
    )
    .bind(now)
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    for row in late {
        let id: i64 = row.try_get("id")?;
        let tenant_id: String = row.try_get("tenant_id")?;
        let priority: String = row.try_get("priority")?;
        let resolve_mins = tenant_policy::for_tenant_id(&mut tx, &policy, &tenant_id)
            .await?
            .sla(&priority)
            .resolve_mins;
        sqlx::query("UPDATE tickets SET resolve_breached = 1 WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        add_event(
            &mut tx,
            &tenant_id,
            id,
            now,
            "sla_breach",
            &format!("not resolved within {resolve_mins} min ({priority})"),
            "engine",
        )
        .await?;
    }
    tx.commit().await?;
    Ok(out)
}

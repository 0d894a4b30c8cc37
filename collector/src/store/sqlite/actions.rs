//! Operator actions on tickets (acknowledge, assign, escalate, note,
//! resolve) and the audit log every one of them writes to.

use sqlx::Row;

use super::problems::{self, AgentCtx, add_event};
use super::{SqliteStore, insert_audit, scope_tenant, ticket_from_row};
use crate::domain::{
    ActionOutcome, ApiCaller, AuditEntry, CheckState, Millis, Scope, TicketAction, TicketState,
};
use crate::store::Store;
use crate::{Error, Result};

pub(super) async fn ticket_action(
    store: &SqliteStore,
    caller: &ApiCaller,
    id: i64,
    action: &TicketAction,
    now: Millis,
) -> Result<ActionOutcome> {
    caller.require_write()?;
    let mut tx = store.write_tx().await?;
    let row = sqlx::query("SELECT * FROM tickets WHERE id = ?2 AND (?1 IS NULL OR tenant_id = ?1)")
        .bind(scope_tenant(&caller.scope))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::NotFound(format!("ticket {id}")))?;
    let ticket = ticket_from_row(&row)?;
    let actor = caller.name.as_str();
    let open = ticket.state == TicketState::Open;
    let mut still_failing = None;
    let (kind, detail) = match action {
        TicketAction::Acknowledge => {
            if !open {
                return Err(Error::Conflict(format!("ticket {id} is resolved")));
            }
            if ticket.acknowledged_at.is_some() {
                return Err(Error::Conflict(format!(
                    "ticket {id} is already acknowledged"
                )));
            }
            // Acknowledged: the escalation timer stops.
            sqlx::query(
                "UPDATE tickets SET acknowledged_at = ?, acknowledged_by = ?, ack_due_at = NULL, updated_at = ? WHERE id = ?",
            )
            .bind(now)
            .bind(actor)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            ("acknowledged", format!("acknowledged at L{}", ticket.tier))
        }
        TicketAction::Assign(who) => {
            let who = who.trim();
            if who.is_empty() || who.len() > 128 {
                return Err(Error::InvalidArgument(
                    "assignee must be 1..128 characters".into(),
                ));
            }
            sqlx::query("UPDATE tickets SET assignee = ?, updated_at = ? WHERE id = ?")
                .bind(who)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            ("assigned", format!("assigned to {who}"))
        }
        TicketAction::Escalate => {
            if !open {
                return Err(Error::Conflict(format!("ticket {id} is resolved")));
            }
            let policy =
                super::tenant_policy::for_tenant_id(&mut tx, &store.policy, &ticket.tenant_id)
                    .await?;
            let max = i64::from(policy.max_tier);
            if i64::from(ticket.tier) >= max {
                return Err(Error::Conflict(format!("ticket {id} is already at L{max}")));
            }
            let sla = policy.sla(&ticket.priority);
            // A fresh acknowledgement window at the new tier, unless acknowledged.
            sqlx::query(
                "UPDATE tickets SET tier = tier + 1, escalations = escalations + 1, updated_at = ?,
                        ack_due_at = CASE WHEN acknowledged_at IS NULL THEN ? ELSE NULL END
                 WHERE id = ?",
            )
            .bind(now)
            .bind(now + crate::tickets::policy::mins_ms(sla.ack_mins))
            .bind(id)
            .execute(&mut *tx)
            .await?;
            (
                "escalated",
                format!("escalated by hand: L{} → L{}", ticket.tier, ticket.tier + 1),
            )
        }
        TicketAction::Note(text) => {
            let text = text.trim();
            if text.is_empty() || text.len() > 4096 {
                return Err(Error::InvalidArgument(
                    "note must be 1..4096 characters".into(),
                ));
            }
            ("note", text.to_string())
        }
        TicketAction::Resolve => {
            if !open {
                return Err(Error::Conflict(format!("ticket {id} is already resolved")));
            }
            sqlx::query(
                "UPDATE tickets SET state = 'resolved', resolved_at = ?, resolved_by = ?, updated_at = ? WHERE id = ?",
            )
            .bind(now)
            .bind(actor)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            // The engine keeps watching: unlink the ticket as resolved; if the
            // problem is still there, the next sweep reopens it (same episode).
            // Site and check-group tickets have no problem of their own.
            if !ticket.agent_id.is_empty() {
                let ctx = AgentCtx::load(&mut tx, &ticket.tenant_id, &ticket.agent_id).await?;
                let mut p =
                    problems::load_problem(&mut tx, &ctx, &ticket.check, &ticket.item).await?;
                if let Some(link) = p.problem.ticket.as_mut().filter(|l| l.id == id) {
                    link.open = false;
                    link.resolved_at = Some(now);
                }
                if p.problem.state != CheckState::Ok {
                    still_failing = Some(p.message.clone());
                }
                problems::save_problem(&mut tx, &ctx, &p, now).await?;
            }
            let detail = match &still_failing {
                Some(m) => format!("resolved by hand, but the problem is still present: {m}"),
                None => "resolved by hand".to_string(),
            };
            ("resolved", detail)
        }
    };
    add_event(&mut tx, &ticket.tenant_id, id, now, kind, &detail, actor).await?;
    insert_audit(
        &mut *tx,
        Some(&ticket.tenant_id),
        now,
        actor,
        &format!("ticket.{kind}"),
        &format!("ticket/{id}"),
        &detail,
    )
    .await?;
    tx.commit().await?;
    let ticket = store
        .get_ticket(&caller.scope, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("ticket {id}")))?;
    Ok(ActionOutcome {
        ticket,
        still_failing,
    })
}

pub(super) async fn audit_log(
    store: &SqliteStore,
    scope: &Scope,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    let rows = sqlx::query(
        "SELECT at, tenant_id, actor, action, target, detail FROM audit_log
         WHERE (?1 IS NULL OR tenant_id = ?1) ORDER BY id DESC LIMIT ?2",
    )
    .bind(scope_tenant(scope))
    .bind(i64::from(limit.clamp(1, 1000)))
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                at: r.try_get("at")?,
                tenant_id: r.try_get("tenant_id")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect()
}

pub(super) async fn revoke_agent(
    store: &SqliteStore,
    caller: &ApiCaller,
    agent_id: &str,
    now: Millis,
) -> Result<crate::domain::Agent> {
    caller.require_write()?;
    let mut tx = store.write_tx().await?;
    let tenant: Option<String> = sqlx::query_scalar(
        "SELECT tenant_id FROM agents WHERE id = ?2 AND (?1 IS NULL OR tenant_id = ?1)",
    )
    .bind(scope_tenant(&caller.scope))
    .bind(agent_id)
    .fetch_optional(&mut *tx)
    .await?;
    let tenant = tenant.ok_or_else(|| Error::NotFound(format!("agent {agent_id}")))?;
    let changed = sqlx::query(
        "UPDATE agents SET revoked_at = ?, status = 'offline' WHERE id = ? AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(agent_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(Error::Conflict(format!(
            "agent {agent_id} is already revoked"
        )));
    }
    insert_audit(
        &mut *tx,
        Some(&tenant),
        now,
        &caller.name,
        "agent.revoked",
        &format!("agent/{agent_id}"),
        "certificate refused from now on",
    )
    .await?;
    tx.commit().await?;
    store
        .get_agent(&caller.scope, agent_id)
        .await?
        .map(|d| d.agent)
        .ok_or_else(|| Error::NotFound(format!("agent {agent_id}")))
}

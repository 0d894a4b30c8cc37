//! Operator actions on tickets (acknowledge, assign, escalate, note,
//! resolve) and on agents (revoke), each audited in the same transaction.

use super::problems::{self, AgentCtx};
use super::service::Service;
use crate::domain::{
    ActionOutcome, Agent, ApiCaller, CheckState, Millis, TicketAction, TicketState,
};
use crate::store::Audit;
use crate::tickets::policy::mins_ms;
use crate::{Error, Result};

impl Service {
    /// An operator action on a ticket, audited.
    pub async fn ticket_action(
        &self,
        caller: &ApiCaller,
        id: i64,
        action: &TicketAction,
        now: Millis,
    ) -> Result<ActionOutcome> {
        caller.require_write()?;
        let mut desk = self.begin().await?;
        let ticket = desk
            .tx
            .ticket_for_update(&caller.scope, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("ticket {id}")))?;
        let actor = caller.name.as_str();
        let tenant_id = ticket.tenant_id.as_str();
        let open = ticket.state == TicketState::Open;
        let resolved = || Error::Conflict(format!("ticket {id} is resolved"));
        let mut still_failing = None;
        let (kind, detail) = match action {
            TicketAction::Acknowledge => {
                if !open {
                    return Err(resolved());
                }
                if ticket.acknowledged_at.is_some() {
                    return Err(Error::Conflict(format!(
                        "ticket {id} is already acknowledged"
                    )));
                }
                // Acknowledged: the escalation timer stops.
                desk.tx.acknowledge(id, actor, now).await?;
                ("acknowledged", format!("acknowledged at L{}", ticket.tier))
            }
            TicketAction::Assign(who) => {
                let who = who.trim();
                if who.is_empty() || who.len() > 128 {
                    return Err(Error::InvalidArgument(
                        "assignee must be 1..128 characters".into(),
                    ));
                }
                desk.tx.assign(id, who, now).await?;
                ("assigned", format!("assigned to {who}"))
            }
            TicketAction::Escalate => {
                if !open {
                    return Err(resolved());
                }
                let policy = desk.policy_for(tenant_id).await?;
                let max = policy.max_tier;
                if ticket.tier >= max {
                    return Err(Error::Conflict(format!("ticket {id} is already at L{max}")));
                }
                // A fresh acknowledgement window at the new tier, unless acknowledged.
                let sla = policy.sla(&ticket.priority);
                desk.tx
                    .escalate_by_hand(id, now + mins_ms(sla.ack_mins), now)
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
                // The engine keeps watching: unlink the ticket as resolved; if the
                // problem is still there, the next sweep reopens it (same episode).
                // Site and check-group tickets have no problem of their own.
                if !ticket.agent_id.is_empty() {
                    let ctx = AgentCtx::load(desk.tx.as_mut(), tenant_id, &ticket.agent_id).await?;
                    let mut p =
                        problems::load_problem(desk.tx.as_mut(), &ctx, &ticket.check, &ticket.item)
                            .await?;
                    if let Some(link) = p.problem.ticket.as_mut().filter(|l| l.id == id) {
                        link.open = false;
                        link.resolved_at = Some(now);
                    }
                    if p.problem.state != CheckState::Ok {
                        still_failing = Some(p.message.clone());
                    }
                    problems::save_problem(desk.tx.as_mut(), &ctx, &p, now).await?;
                }
                let detail = match &still_failing {
                    Some(m) => format!("resolved by hand, but the problem is still present: {m}"),
                    None => "resolved by hand".to_string(),
                };
                desk.resolve_ticket(tenant_id, id, actor, &detail, now)
                    .await?;
                ("resolved", detail)
            }
        };
        if kind != "resolved" {
            desk.event(tenant_id, id, now, kind, &detail, actor).await?;
        }
        desk.tx
            .insert_audit(Audit {
                tenant_id: Some(tenant_id),
                at: now,
                actor,
                source: &caller.source,
                action: &format!("ticket.{kind}"),
                target: &format!("ticket/{id}"),
                detail: &detail,
            })
            .await?;
        desk.commit().await?;
        let ticket = self
            .store()
            .get_ticket(&caller.scope, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("ticket {id}")))?;
        Ok(ActionOutcome {
            ticket,
            still_failing,
        })
    }

    /// Revokes an agent: refused at its next handshake and report; its open
    /// sessions are closed by the process that serves them. Its problems
    /// are forgotten (nothing more will be reported). Audited.
    pub async fn revoke_agent(
        &self,
        caller: &ApiCaller,
        agent_id: &str,
        now: Millis,
    ) -> Result<Agent> {
        caller.require_write()?;
        let mut desk = self.begin().await?;
        let tenant = desk
            .tx
            .agent_tenant(&caller.scope, agent_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("agent {agent_id}")))?;
        if !desk.tx.revoke_agent(agent_id, now).await? {
            return Err(Error::Conflict(format!(
                "agent {agent_id} is already revoked"
            )));
        }
        desk.tx.delete_agent_problems(&tenant, agent_id).await?;
        desk.changed(&tenant, crate::live::Kind::Agent);
        desk.tx
            .insert_audit(Audit {
                tenant_id: Some(&tenant),
                at: now,
                actor: &caller.name,
                source: &caller.source,
                action: "agent.revoked",
                target: &format!("agent/{agent_id}"),
                detail: "certificate refused from now on",
            })
            .await?;
        desk.commit().await?;
        self.get_agent(&caller.scope, agent_id)
            .await?
            .map(|d| d.agent)
            .ok_or_else(|| Error::NotFound(format!("agent {agent_id}")))
    }
}

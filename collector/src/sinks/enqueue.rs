//! Filing ticket events for the sinks, inside the ticket's own transaction
//! (called for every timeline event by `tickets::lifecycle`).
//!
//! Routing happens at write time against the configured routes (held in
//! memory, set at start): a sink gets an event when its tenants and tiers
//! match the ticket as the event left it, or when it already heard about
//! the ticket — so an escalation reaches L2's sinks, and the L1 sink that
//! got the `firing` also gets the `resolved`.

use super::{EventFacts, Notification, SinkRoute, Status};
use crate::store::{NewOutboxRow, WriteTx};
use crate::{Error, Result};

/// Writes the outbox rows of `event`, the timeline event just added to
/// `ticket_id`, if its kind notifies and any sink wants it.
pub async fn enqueue(
    tx: &mut dyn WriteTx,
    routes: &[SinkRoute],
    ticket_id: i64,
    event: EventFacts<'_>,
) -> Result<()> {
    let Some(status) = Status::for_event(event.kind) else {
        return Ok(());
    };
    if routes.is_empty() {
        return Ok(());
    }
    let (ticket, tenant_name) = tx.ticket_with_tenant(ticket_id).await?;
    let told = tx.sinks_told(ticket_id).await?;
    let wanted: Vec<&SinkRoute> = routes
        .iter()
        .filter(|r| {
            r.matches(&ticket.tenant_id, &tenant_name, ticket.tier) || told.contains(&r.name)
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let n = Notification::new(status, &ticket, &tenant_name, event);
    let payload = serde_json::to_string(&n).map_err(|e| Error::Corrupt(e.to_string()))?;
    for r in wanted {
        let key = uuid::Uuid::new_v4().to_string();
        tx.insert_outbox(&NewOutboxRow {
            key: &key,
            tenant_id: &ticket.tenant_id,
            sink: &r.name,
            ticket_id,
            event_id: event.id,
            event: event.kind,
            status: status.as_str(),
            payload: &payload,
            at: event.at,
        })
        .await?;
    }
    Ok(())
}

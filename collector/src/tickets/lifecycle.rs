//! The one place a ticket opens ([`Desk::open_ticket`]), the one place it
//! resolves ([`Desk::resolve_ticket`]), and the one place a timeline event
//! is written ([`Desk::event`]), which files the event for the sinks in the
//! same transaction (durable outbox). Every cause (a result, the sweep, a
//! site outage, a check group, an operator) goes through them.

use super::service::Desk;
use crate::Result;
use crate::domain::Millis;
use crate::store::{NewEvent, NewTicket};

/// Who changed a ticket when no operator did.
pub const ENGINE: &str = "engine";

impl Desk<'_> {
    /// Appends a timeline event to ticket `ticket_id` and files it for
    /// every sink that wants it.
    pub async fn event(
        &mut self,
        tenant_id: &str,
        ticket_id: i64,
        now: Millis,
        kind: &str,
        detail: &str,
        actor: &str,
    ) -> Result<()> {
        self.changed(tenant_id, crate::live::Kind::Ticket);
        let id = self
            .tx
            .add_event(&NewEvent {
                tenant_id,
                ticket_id,
                at: now,
                kind,
                detail,
                actor,
            })
            .await?;
        let event = crate::sinks::EventFacts {
            id,
            kind,
            detail,
            actor,
            at: now,
        };
        crate::sinks::enqueue(self.tx.as_mut(), &self.routes, ticket_id, event).await
    }

    /// Opens a ticket, with its `opened` event; its id.
    pub async fn open_ticket(&mut self, t: &NewTicket<'_>, detail: &str) -> Result<i64> {
        let id = self.tx.insert_ticket(t).await?;
        self.event(t.tenant_id, id, t.now, "opened", detail, ENGINE)
            .await?;
        Ok(id)
    }

    /// Resolves an open ticket, with its `resolved` event; `false` (and no
    /// event) if it was not open.
    pub async fn resolve_ticket(
        &mut self,
        tenant_id: &str,
        id: i64,
        by: &str,
        detail: &str,
        now: Millis,
    ) -> Result<bool> {
        if !self.tx.resolve_ticket(id, by, now).await? {
            return Ok(false);
        }
        self.event(tenant_id, id, now, "resolved", detail, by)
            .await?;
        Ok(true)
    }
}

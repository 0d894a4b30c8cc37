//! Sinks' own records of tickets (PSA tickets): the pool reads and writes
//! the outbox loop and the API use, and the transaction reads and writes of
//! the ticket desk's follow-ups (`tickets/remote.rs`): a receiver-side
//! close, tickets still failing after one, tickets due a reminder. SQL in
//! `sql/links.rs`.

use async_trait::async_trait;

use super::{NewSinkLink, ReminderCandidate, SinkLink};
use crate::Result;
use crate::domain::{Millis, Scope};

/// Sinks' own records of tickets (PSA tickets): see `migrations/sqlite/0018`.
#[async_trait]
pub trait LinkStore {
    /// The newest link of `sink` to `ticket_id`, open or closed.
    async fn current_link(&self, sink: &str, ticket_id: i64) -> Result<Option<SinkLink>>;
    /// Stores a link a delivery made; adding the same `(sink, external_id)`
    /// again (a retried attempt whose answer was recorded) changes nothing.
    async fn add_link(&self, link: &NewSinkLink<'_>) -> Result<()>;
    /// Up to `limit` links of `sink` still open on the receiver's side,
    /// oldest first: what a sink that polls its receiver asks about.
    async fn open_links(&self, sink: &str, limit: u32) -> Result<Vec<SinkLink>>;
    /// Every link of a ticket in scope, oldest first.
    async fn ticket_links(&self, scope: &Scope, ticket_id: i64) -> Result<Vec<SinkLink>>;
}

#[async_trait]
pub trait LinkTx {
    /// Marks `sink`'s link `external_id` closed by `by` at `at`; the link as
    /// it was, or `None` (nothing written) if it is unknown or closed already,
    /// so of two replicas seeing the same close only one records it.
    async fn close_link(
        &mut self,
        sink: &str,
        external_id: &str,
        by: &str,
        at: Millis,
    ) -> Result<Option<SinkLink>>;
    /// Current links (the newest per sink and ticket) closed on the
    /// receiver's side at or before `closed_before`, whose ticket is still
    /// open and has had no `still_failing` event since the close.
    async fn closed_links_of_open_tickets(
        &mut self,
        closed_before: Millis,
        limit: i64,
    ) -> Result<Vec<SinkLink>>;
    /// Open, unacknowledged tickets whose last notifying firing event
    /// (`opened`, `reopened`, `updated`, `escalated`, `reminder`,
    /// `still_failing`) is at or before `last_before`, oldest first.
    async fn reminder_candidates(
        &mut self,
        last_before: Millis,
        limit: i64,
    ) -> Result<Vec<ReminderCandidate>>;
}

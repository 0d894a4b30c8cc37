//! The dashboard's reads (a trait of [`super::Storage`]), apart from the
//! API's so each stays small; the SQL is in `sql/dashboard.rs`.

use async_trait::async_trait;

use super::{AuditFilter, HostCheckRow, HostTicketCount, OutboxEntry};
use crate::Result;
use crate::domain::{AuditEntry, Millis, Scope};

/// The dashboard's reads: filtered and paged lists, and per-ticket and
/// per-tenant views the JSON lists do not give (they would mean reading
/// every row and filtering above). Every read takes the caller's scope.
#[async_trait]
pub trait DashboardStore {
    /// Outbox rows of one ticket in scope, oldest first (its notifications
    /// and their delivery state, for the ticket's timeline).
    async fn ticket_outbox(&self, scope: &Scope, ticket_id: i64) -> Result<Vec<OutboxEntry>>;
    /// Tickets opened in `[from, to)` per host of `tenant_id` (in scope),
    /// most first, at most `limit`; site and group tickets (no host) left out.
    async fn tickets_per_host(
        &self,
        scope: &Scope,
        tenant_id: &str,
        from: Millis,
        to: Millis,
        limit: u32,
    ) -> Result<Vec<HostTicketCount>>;
    /// Current state rows of the check kinds `checks` on the hosts of
    /// `tenant_id` (in scope, revoked agents left out), by host then item.
    async fn check_states_of(
        &self,
        scope: &Scope,
        tenant_id: &str,
        checks: &[&str],
    ) -> Result<Vec<HostCheckRow>>;
    /// Audit entries in scope matching `filter`, newest first; `offset`
    /// rows skipped, at most `limit` (≤ 1000) returned.
    async fn audit_page(
        &self,
        scope: &Scope,
        filter: &AuditFilter,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<AuditEntry>>;
}

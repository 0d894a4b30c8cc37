//! Filters and pages of the list reads (API lists, CLI listings).
//!
//! A filter narrows a list inside the caller's [`super::Scope`] (a tenant
//! filter naming another tenant than a tenant-scoped caller's matches
//! nothing); a [`Page`] cuts the filtered, ordered list. Both are applied in
//! SQL, so a page costs a page, not the whole table.

use super::TicketState;

/// One page of an ordered list: at most `limit` rows after skipping
/// `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u64,
    pub offset: u64,
}

impl Page {
    /// The first `limit` rows.
    pub fn first(limit: u64) -> Self {
        Page { limit, offset: 0 }
    }

    /// Every row (internal callers that need the whole set).
    pub fn everything() -> Self {
        // i64::MAX: both backends take LIMIT as a signed 64-bit integer.
        Page::first(i64::MAX.unsigned_abs())
    }

    /// The limit as SQL binds it.
    pub fn sql_limit(self) -> i64 {
        i64::try_from(self.limit).unwrap_or(i64::MAX)
    }

    /// The offset as SQL binds it.
    pub fn sql_offset(self) -> i64 {
        i64::try_from(self.offset).unwrap_or(i64::MAX)
    }
}

/// The order of a ticket list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TicketSort {
    /// Newest first (by id).
    #[default]
    Newest,
    /// The work queue: priority (P1 first), then the SLA due time that
    /// applies now (acknowledge while unacknowledged, then resolve), then
    /// oldest first.
    Priority,
}

/// Which tickets a list shows; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFilter {
    pub state: Option<TicketState>,
    pub tenant_id: Option<String>,
    pub agent_id: Option<String>,
    /// Exact hostname.
    pub host: Option<String>,
    pub tier: Option<u8>,
    /// Check kind (`disk`, `agent`, …).
    pub check: Option<String>,
    pub sort: TicketSort,
}

/// Which agents a list shows; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentFilter {
    pub tenant_id: Option<String>,
    pub site: Option<String>,
    /// Case-insensitive substring of the hostname.
    pub hostname_contains: Option<String>,
    /// `enrolled`, `online`, `disconnected` or `offline`.
    pub status: Option<String>,
    pub overdue: Option<bool>,
}

//! Reads for the fleet view, and change notifications between the
//! processes sharing a store. Both are storage primitives: the fleet rows
//! are counts grouped as stored (which state is "worst" is decided in the
//! dashboard), and the store relays notifications without deciding what
//! is worth sending (`crate::live` does).

use async_trait::async_trait;

use crate::Result;
use crate::domain::Scope;

/// How many of an agent's checks of one kind are in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetCheckCount {
    pub agent_id: String,
    pub check: String,
    /// As stored: `ok`, `warn`, `crit` or `unknown`.
    pub state: String,
    pub count: i64,
}

/// An agent's open tickets (`agent_id` empty for site and group tickets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetTicketCount {
    pub agent_id: String,
    pub open: i64,
    /// Open tickets past an SLA due time (acknowledge or resolve).
    pub breached: i64,
}

/// What the fleet view needs beyond the agent rows, for every agent of a
/// scope in two grouped queries (no query per host).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetRows {
    pub checks: Vec<FleetCheckCount>,
    pub tickets: Vec<FleetTicketCount>,
}

/// Fleet reads.
#[async_trait]
pub trait FleetStore {
    /// Check states counted by (agent, check kind, state), and open tickets
    /// counted by agent, within `scope`.
    async fn fleet_rows(&self, scope: &Scope) -> Result<FleetRows>;
}

/// Notifications that reach every process sharing the store (PostgreSQL
/// `LISTEN`/`NOTIFY`). A store one process owns (SQLite) has none: its
/// process tells itself, in memory.
#[async_trait]
pub trait NotifyStore {
    /// Whether [`NotifyStore::notify`] reaches other processes.
    fn shares_notifications(&self) -> bool;
    /// Sends `payload` to every listener of `channel` (a no-op where
    /// notifications are not shared).
    async fn notify(&self, channel: &str, payload: &str) -> Result<()>;
    /// Listens on `channel` on a connection of its own; `None` where
    /// notifications are not shared.
    async fn listen(&self, channel: &str) -> Result<Option<Box<dyn Notifications>>>;
}

/// A listening connection.
#[async_trait]
pub trait Notifications: Send {
    /// The next payload. After a lost connection it reconnects by itself;
    /// what was sent meanwhile is lost (the caller may treat an error as
    /// "anything may have changed").
    async fn recv(&mut self) -> Result<String>;
}

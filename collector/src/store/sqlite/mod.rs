//! Embedded SQLite store (WAL), the zero-config default.
//!
//! Writes run in `BEGIN IMMEDIATE` transactions, so a read-then-write never
//! deadlocks on lock upgrade, and SQLite's single writer makes row locks
//! (`for_update!`) and the sweeper lease no-ops. `synchronous = FULL`, so
//! an acknowledged report survives power loss, not only a crash. The
//! queries are the shared ones in `../sql/`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Row};

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::domain::{
    Agent, AgentAuth, AgentDetail, AuditEntry, CheckState, CheckStateRow, EnrollmentToken, Millis,
    NewAgent, NewApiKey, NewEnrollmentToken, Scope, Tenant, Ticket, TicketDetail, TicketEvent,
    TicketSort, TicketState,
};
use crate::{Error, Result};

type Db = sqlx::Sqlite;
type DbRow = sqlx::sqlite::SqliteRow;
type Pooled = SqliteStore;

/// No row locks under SQLite's single writer.
macro_rules! for_update {
    ($($table:literal)?) => {
        ""
    };
}

/// Nothing to skip under SQLite's single writer: a claim is one statement.
macro_rules! skip_locked {
    () => {
        ""
    };
}

include!("../sql/map.rs");
include!("../sql/pool.rs");
include!("../sql/access.rs");
include!("../sql/agents.rs");
include!("../sql/problems.rs");
include!("../sql/tickets.rs");
include!("../sql/grouping.rs");
include!("../sql/outbox.rs");
include!("../sql/links.rs");
include!("../sql/dashboard.rs");
include!("../sql/ca.rs");
include!("../sql/lease.rs");
include!("../sql/retention.rs");
include!("../sql/metrics.rs");
include!("../sql/backend.rs");
include!("../sql/fleet.rs");

const BACKEND: &str = "sqlite";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite-backed [`Storage`].
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// One SQLite write transaction (`BEGIN IMMEDIATE`).
pub struct Tx {
    tx: sqlx::Transaction<'static, Db>,
}

async fn begin_write(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, Db>> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

// === impl SqliteStore ===

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub async fn open(path: &Path) -> Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // A transaction that fails at a bad moment (a full disk: SQLite
            // rolls back by itself, then the ROLLBACK sqlx sends fails)
            // leaves sqlx counting the connection as inside a transaction;
            // every later BEGIN on it would fail, so one full-disk moment
            // would stop all writes for good. Flush the pending rollback and
            // retire a connection that still claims a transaction.
            .after_release(|conn, _meta| {
                Box::pin(async move {
                    conn.ping().await?;
                    Ok(!conn.is_in_transaction())
                })
            })
            .connect_with(opts)
            .await?;
        super::url::migrate(&MIGRATOR, &pool, "SQLite").await?;
        Ok(Self { pool })
    }

    /// An in-memory database, for tests.
    pub async fn in_memory() -> Result<Self> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// The pool, for tests and the copy command.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// `BEGIN IMMEDIATE` already made this transaction the only writer.
async fn sweeper_lease(_tx: &mut sqlx::Transaction<'static, Db>) -> Result<bool> {
    Ok(true)
}

/// Likewise for retention.
async fn retention_lease(_tx: &mut sqlx::Transaction<'static, Db>) -> Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests;

/// One process owns a SQLite store: it tells itself of changes in memory.
#[async_trait]
impl NotifyStore for SqliteStore {
    fn shares_notifications(&self) -> bool {
        false
    }

    async fn notify(&self, _channel: &str, _payload: &str) -> Result<()> {
        Ok(())
    }

    async fn listen(&self, _channel: &str) -> Result<Option<Box<dyn Notifications>>> {
        Ok(None)
    }
}

//! PostgreSQL store, for many agents and several collectors on one
//! database. The queries are the shared ones in `../sql/`; this module adds
//! the connection, the migrations, row locks (`SELECT … FOR UPDATE`) and the
//! sweeper lease (a transaction-scoped advisory lock), so decisions taken by
//! several replicas at once stay single.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, Row};

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::domain::{
    Agent, AgentAuth, AgentDetail, AuditEntry, CheckState, CheckStateRow, EnrollmentToken, Millis,
    NewAgent, NewApiKey, NewEnrollmentToken, Scope, Tenant, Ticket, TicketDetail, TicketEvent,
    TicketSort, TicketState,
};
use crate::{Error, Result};

type Db = sqlx::Postgres;
type DbRow = sqlx::postgres::PgRow;
type Pooled = PostgresStore;

/// Row locks for the rest of the transaction (`OF table` when joined).
macro_rules! for_update {
    () => {
        " FOR UPDATE"
    };
    ($table:literal) => {
        concat!(" FOR UPDATE OF ", $table)
    };
}

/// Locks the rows a claim takes, skipping rows another replica is claiming
/// at this moment (so concurrent claims never wait for, nor get, each
/// other's rows).
macro_rules! skip_locked {
    () => {
        " FOR UPDATE SKIP LOCKED"
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

const BACKEND: &str = "postgres";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The advisory lock key of the sweeper lease ("forewarn" in ASCII).
const SWEEPER_LEASE: i64 = 0x666f_7265_7761_726e;
/// The advisory lock key of the retention lease ("retain" + 2 in ASCII).
const RETENTION_LEASE: i64 = 0x7265_7461_696e_0002;

/// The PostgreSQL-backed [`Storage`].
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

/// One PostgreSQL write transaction (READ COMMITTED, with row locks).
pub struct Tx {
    tx: sqlx::Transaction<'static, Db>,
}

async fn begin_write(pool: &PgPool) -> Result<sqlx::Transaction<'static, Db>> {
    Ok(pool.begin().await?)
}

// === impl PostgresStore ===

impl PostgresStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/db`) and
    /// migrates the database. An unreachable server is an error that names
    /// its host and port.
    pub async fn open(url: &str) -> Result<Self> {
        let opts: PgConnectOptions = url
            .parse()
            .map_err(|e| Error::Config(format!("[store] url: not a PostgreSQL url: {e}")))?;
        let (host, port) = (opts.get_host().to_string(), opts.get_port());
        let unreachable = |e: sqlx::Error| {
            Error::Unavailable(format!(
                "cannot reach PostgreSQL at {host}:{port} ([store] url): {e}"
            ))
        };
        // One connection first: a wrong host, port or password fails at
        // once with the server's reason instead of after the pool's retries.
        sqlx::PgConnection::connect_with(&opts)
            .await
            .map_err(unreachable)?
            .close()
            .await
            .map_err(unreachable)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await
            .map_err(unreachable)?;
        super::url::migrate(&MIGRATOR, &pool, "PostgreSQL").await?;
        Ok(Self { pool })
    }

    /// The pool, for tests and the copy command.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// `LISTEN`/`NOTIFY`: a change committed through one replica reaches the
/// others (each listens on a connection of its own, outside the pool).
#[async_trait]
impl NotifyStore for PostgresStore {
    fn shares_notifications(&self) -> bool {
        true
    }

    async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn listen(&self, channel: &str) -> Result<Option<Box<dyn Notifications>>> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(channel).await?;
        Ok(Some(Box::new(PgNotifications(listener))))
    }
}

struct PgNotifications(sqlx::postgres::PgListener);

#[async_trait]
impl Notifications for PgNotifications {
    async fn recv(&mut self) -> Result<String> {
        Ok(self.0.recv().await?.payload().to_string())
    }
}

/// A transaction-scoped advisory lock: one replica sweeps at a time.
async fn sweeper_lease(tx: &mut sqlx::Transaction<'static, Db>) -> Result<bool> {
    try_lease(tx, SWEEPER_LEASE).await
}

/// Another advisory lock: one replica prunes at a time, and never holds up
/// the sweep.
async fn retention_lease(tx: &mut sqlx::Transaction<'static, Db>) -> Result<bool> {
    try_lease(tx, RETENTION_LEASE).await
}

async fn try_lease(tx: &mut sqlx::Transaction<'static, Db>, key: i64) -> Result<bool> {
    Ok(sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(key)
        .fetch_one(&mut **tx)
        .await?)
}

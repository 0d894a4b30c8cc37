//! One factory per storage backend: a fresh, migrated store wrapped in a
//! [`Service`], and what keeps it alive for the test.
//!
//! PostgreSQL's factory creates a database of its own on the server that
//! `FOREWARN_TEST_POSTGRES_URL` names (the README's test command starts a
//! private one and sets it). Without that variable the PostgreSQL tests
//! fail and say so: they are never skipped silently.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sqlx::Connection;

use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::tickets::Service;

/// Keeps a backend's resources (temp dir, database) alive for a test.
pub type Guard = Box<dyn std::any::Any + Send>;
/// A fresh store and what keeps it alive.
pub type NewStore = Pin<Box<dyn Future<Output = (Service, Guard)> + Send>>;

/// The variable that names the test PostgreSQL server.
pub const POSTGRES_URL_VAR: &str = "FOREWARN_TEST_POSTGRES_URL";

/// A fresh SQLite file store, its service set up by `with`.
pub fn sqlite_with(with: impl FnOnce(Service) -> Service + Send + 'static) -> NewStore {
    Box::pin(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open sqlite");
        (with(Service::new(Arc::new(store))), Box::new(dir) as Guard)
    })
}

/// A fresh PostgreSQL database's store, its service set up by `with`.
pub fn postgres_with(with: impl FnOnce(Service) -> Service + Send + 'static) -> NewStore {
    Box::pin(async move {
        let url = fresh_postgres_database().await;
        let store = PostgresStore::open(&url).await.expect("open postgres");
        (with(Service::new(Arc::new(store))), Box::new(()) as Guard)
    })
}

/// Creates an empty database on the test server; its url.
pub async fn fresh_postgres_database() -> String {
    let admin = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VAR} is not set: the PostgreSQL tests need a server. Run \
             ./tests/run-all.sh, or `source tests/postgres.sh` first"
        )
    });
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL at {admin}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let (base, _) = admin.rsplit_once('/').expect("url with a database");
    format!("{base}/{name}")
}

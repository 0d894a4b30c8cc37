//! The SQLite side of a copy: its catalog, a snapshot to read from, and a
//! write transaction to fill.

use sqlx::Row;
use sqlx::sqlite::SqlitePool;

use super::Value;
use super::schema::{Column, Kind, Table, ident, kind};
use crate::{Error, Result};

type Db = sqlx::Sqlite;
type Conn = sqlx::SqliteConnection;

include!("shared.rs");

/// Every table but SQLite's own and sqlx's migration log, in creation order.
pub(super) async fn schema(conn: &mut Conn) -> Result<Vec<Table>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> '_sqlx_migrations' \
         ORDER BY rowid",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut tables = Vec::with_capacity(names.len());
    for name in names {
        let mut columns = Vec::new();
        let mut key: Vec<(i64, String)> = Vec::new();
        let rows = sqlx::query("SELECT name, type, pk FROM pragma_table_info($1) ORDER BY cid")
            .bind(&name)
            .fetch_all(&mut *conn)
            .await?;
        for r in rows {
            let column: String = r.try_get("name")?;
            let declared: String = r.try_get("type")?;
            let pk: i64 = r.try_get("pk")?;
            if pk > 0 {
                key.push((pk, column.clone()));
            }
            columns.push(Column {
                kind: kind(&name, &column, &declared)?,
                name: column,
            });
        }
        key.sort();
        let refs = sqlx::query_as::<_, (String, String)>(
            "SELECT \"from\", \"table\" FROM pragma_foreign_key_list($1) ORDER BY id, seq",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        tables.push(Table {
            name,
            columns,
            key: key.into_iter().map(|(_, c)| c).collect(),
            refs,
        });
    }
    Ok(tables)
}

/// A read transaction: in WAL mode it sees one snapshot (taken at its
/// first read) while a running collector keeps writing.
pub(super) async fn begin_read(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, Db>> {
    Ok(pool.begin().await?)
}

/// The only writer until it commits.
pub(super) async fn begin_write(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, Db>> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

/// Nothing to prepare: `BEGIN IMMEDIATE` keeps other writers out, and the
/// series triggers are cheap here (one in-place update a row).
pub(super) async fn prepare(_conn: &mut Conn, _tables: &[Table]) -> Result<()> {
    Ok(())
}

/// Counters recounted; `AUTOINCREMENT` already follows the explicit ids.
pub(super) async fn finish(conn: &mut Conn, _tables: &[Table]) -> Result<()> {
    recount_series(conn).await
}

//! The PostgreSQL side of a copy: its catalog (the current schema), a
//! snapshot to read from, and a write transaction to fill, with the tables
//! locked, row triggers paused and identity sequences moved past the
//! copied ids.

use sqlx::Row;
use sqlx::postgres::PgPool;

use super::Value;
use super::schema::{Column, Kind, Table, ident, kind};
use crate::{Error, Result};

type Db = sqlx::Postgres;
type Conn = sqlx::PgConnection;

include!("shared.rs");

/// Every table of the current schema but sqlx's migration log, in creation
/// (oid) order.
pub(super) async fn schema(conn: &mut Conn) -> Result<Vec<Table>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
         AND c.relname <> '_sqlx_migrations' ORDER BY c.oid",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut tables = Vec::with_capacity(names.len());
    for name in names {
        let mut columns = Vec::new();
        let rows = sqlx::query(
            "SELECT a.attname::text AS name, format_type(a.atttypid, NULL) AS type \
             FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = r.relnamespace \
             WHERE n.nspname = current_schema() AND r.relname = $1 \
             AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            let column: String = r.try_get("name")?;
            let declared: String = r.try_get("type")?;
            columns.push(Column {
                kind: kind(&name, &column, &declared)?,
                name: column,
            });
        }
        let key: Vec<String> = sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_class r ON r.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = r.relnamespace \
             JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = ANY (i.indkey) \
             WHERE i.indisprimary AND n.nspname = current_schema() AND r.relname = $1 \
             ORDER BY array_position(i.indkey::int2[], a.attnum)",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        let refs = sqlx::query_as::<_, (String, String)>(
            "SELECT a.attname::text, f.relname::text FROM pg_constraint c \
             JOIN pg_class r ON r.oid = c.conrelid \
             JOIN pg_namespace n ON n.oid = r.relnamespace \
             JOIN pg_class f ON f.oid = c.confrelid \
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) \
             WHERE c.contype = 'f' AND n.nspname = current_schema() AND r.relname = $1 \
             ORDER BY c.conname, a.attnum",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        tables.push(Table {
            name,
            columns,
            key,
            refs,
        });
    }
    Ok(tables)
}

/// One snapshot of the whole database for every table read.
pub(super) async fn begin_read(pool: &PgPool) -> Result<sqlx::Transaction<'static, Db>> {
    Ok(pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?)
}

pub(super) async fn begin_write(pool: &PgPool) -> Result<sqlx::Transaction<'static, Db>> {
    Ok(pool.begin().await?)
}

/// Tables with row triggers of their own (not the foreign-key checks).
async fn triggered(conn: &mut Conn, tables: &[Table]) -> Result<Vec<String>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT r.relname::text FROM pg_trigger t \
         JOIN pg_class r ON r.oid = t.tgrelid \
         JOIN pg_namespace n ON n.oid = r.relnamespace \
         WHERE NOT t.tgisinternal AND n.nspname = current_schema() ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(names
        .into_iter()
        .filter(|n| tables.iter().any(|t| t.name == *n))
        .collect())
}

/// Locks every table against writers (a collector started on this database
/// meanwhile waits instead of writing between the emptiness check and the
/// commit) and pauses the row triggers: the `check_states` ones update the
/// same agent and tenant rows once per inserted row, and one transaction
/// updating a row N times costs O(N²) in PostgreSQL (each update walks
/// the row's versions); 20,000 series took 7.7 s with them, 0.16 s
/// without. Both undo themselves if the copy rolls back.
pub(super) async fn prepare(conn: &mut Conn, tables: &[Table]) -> Result<()> {
    if tables.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = tables.iter().map(|t| ident(&t.name)).collect();
    let sql = format!("LOCK TABLE {} IN EXCLUSIVE MODE", names.join(", "));
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await?;
    for table in triggered(conn, tables).await? {
        let sql = format!("ALTER TABLE {} DISABLE TRIGGER USER", ident(&table));
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await
            .map_err(|e| {
                Error::Config(format!(
                    "pausing the triggers of {table} while it is filled: {e} (the copy needs \
                     the role that owns the tables, the one the collector migrates them with)"
                ))
            })?;
    }
    Ok(())
}

/// Triggers back on, counters recounted, and every identity sequence set
/// so the next id is the largest copied one + 1.
pub(super) async fn finish(conn: &mut Conn, tables: &[Table]) -> Result<()> {
    for table in triggered(conn, tables).await? {
        let sql = format!("ALTER TABLE {} ENABLE TRIGGER USER", ident(&table));
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await?;
    }
    recount_series(conn).await?;
    for table in tables {
        let [key] = table.key.as_slice() else {
            continue;
        };
        let sequence: Option<String> = sqlx::query_scalar("SELECT pg_get_serial_sequence($1, $2)")
            .bind(ident(&table.name))
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
        let Some(sequence) = sequence else {
            continue;
        };
        let sql = format!(
            "SELECT setval($1::regclass, COALESCE((SELECT MAX({}) FROM {}), 0) + 1, false)",
            ident(key),
            ident(&table.name)
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(sequence)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

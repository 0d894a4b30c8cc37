//! `store copy`: every row of one store into a new, empty one, e.g. a live
//! SQLite install into PostgreSQL.
//!
//! - Both stores open through the store's backends (`SqliteStore::open`,
//!   `PostgresStore::open`), so the destination is migrated to the same
//!   schema; the tables to copy, their columns,
//!   keys and foreign keys come from the two catalogs ([`schema`]), which
//!   must agree. sqlx's `_sqlx_migrations` is each side's own.
//! - The source is read in one read transaction (a consistent snapshot,
//!   also of a SQLite file a running collector writes to); the destination
//!   is filled in one write transaction, parents first, ids kept, and
//!   committed only if every table arrived whole, so a failed copy leaves
//!   it empty.
//! - A destination that holds any row is refused: copying into a store in
//!   use would merge two installs.
//! - Values are i64, TEXT or NULL on both sides, read by the column's
//!   declared kind; self-references (`tickets.parent_id`) are set after
//!   their table is in; the counters the `check_states` triggers keep are
//!   recounted, and PostgreSQL's identity sequences moved past the ids.

mod cli;
mod postgres;
mod schema;
mod sqlite;
#[cfg(test)]
pub(crate) mod tests;

use std::time::{Duration, Instant};

pub use cli::{StoreCommand, run};

use self::schema::Table;
use super::StoreUrl;
use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use crate::{Error, Result};

/// Bound parameters per INSERT: under SQLite's 32,766 and PostgreSQL's 65,535.
const PARAMS_PER_INSERT: usize = 30_000;
/// Rows per INSERT at most (narrow tables would otherwise make huge
/// statements); tiny in tests, so every table there spans several.
const ROWS_PER_INSERT: usize = if cfg!(test) { 2 } else { 1_000 };
/// Rows read per query (in key order, after the last page's last key);
/// tiny in tests, so they page through every table.
const PAGE_ROWS: usize = if cfg!(test) { 3 } else { 5_000 };
/// A progress report every this many rows of a table.
const PROGRESS_EVERY: u64 = 100_000;

/// One column value: both schemas hold only integers and text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

impl Value {
    /// Takes the value out, leaving NULL of the same kind.
    fn take(&mut self) -> Value {
        match self {
            Value::Int(v) => Value::Int(v.take()),
            Value::Text(v) => Value::Text(v.take()),
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Value::Int(None) | Value::Text(None))
    }
}

/// Where a copy is: `rows` of `table` so far, `done` once it is whole.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    pub table: &'a str,
    pub rows: u64,
    pub done: bool,
    /// Since this table started.
    pub elapsed: Duration,
}

/// One table copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub table: String,
    pub rows: u64,
}

/// What a finished copy moved, in the order it did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub tables: Vec<Copied>,
    pub elapsed: Duration,
}

impl Summary {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// Copies every row of `from` into `to`, which must be empty (it is
/// created and migrated if needed); `progress` hears about each table.
pub async fn copy(
    from: &StoreUrl,
    to: &StoreUrl,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Summary> {
    let started = Instant::now();
    if same_store(from, to) {
        return Err(Error::InvalidArgument(format!(
            "--from and --to both name {}",
            from.display()
        )));
    }
    if let StoreUrl::Sqlite(path) = from
        && !path.is_file()
    {
        // Opening would create an empty database there.
        return Err(Error::NotFound(format!(
            "no SQLite database at {} (--from)",
            path.display()
        )));
    }
    let source = Store::open(from).await?;
    let dest = Store::open(to).await?;
    let mut src = source.begin_read().await?;
    let mut dst = dest.begin_write().await?;
    let tables = schema::plan(&src.schema().await?, dst.schema().await?)?;
    dst.prepare(&tables).await?;
    refuse_unless_empty(&mut dst, &tables, to).await?;

    let mut copied = Vec::with_capacity(tables.len());
    for table in &tables {
        let rows = copy_table(&mut src, &mut dst, table, progress).await?;
        copied.push(Copied {
            table: table.name.clone(),
            rows,
        });
    }
    dst.finish(&tables).await?;
    // Every row read, every row written: both sides counted in their
    // transactions, against what went through.
    for (table, c) in tables.iter().zip(&copied) {
        let (read, written) = (src.count(table).await?, dst.count(table).await?);
        if [read, written] != [i64::try_from(c.rows).unwrap_or(-1); 2] {
            return Err(Error::Corrupt(format!(
                "{}: {read} rows in the source, {} copied, {written} in the destination",
                table.name, c.rows
            )));
        }
    }
    dst.commit().await?;
    Ok(Summary {
        tables: copied,
        elapsed: started.elapsed(),
    })
}

/// One table, in batches; its row count.
async fn copy_table(
    src: &mut Tx,
    dst: &mut Tx,
    table: &Table,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<u64> {
    let started = Instant::now();
    let report = |rows, done| Progress {
        table: &table.name,
        rows,
        done,
        elapsed: started.elapsed(),
    };
    progress(report(0, false));
    let self_refs = table.self_refs();
    let key = table.key_positions();
    if !self_refs.is_empty() && key.is_empty() {
        return Err(Error::Config(format!(
            "{} references itself but has no primary key to set the references by",
            table.name
        )));
    }
    // Per self-referencing column: (key, value) to set once all rows are in.
    let mut deferred: Vec<Vec<(Vec<Value>, Value)>> = vec![Vec::new(); self_refs.len()];
    let per_insert = (PARAMS_PER_INSERT / table.columns.len().max(1)).clamp(1, ROWS_PER_INSERT);
    let mut rows = 0u64;
    let mut after = None;
    loop {
        let mut page = src.page(table, after.take(), PAGE_ROWS).await?;
        let last_page = key.is_empty() || page.len() < PAGE_ROWS;
        if let Some(last) = page.last() {
            after = Some(key.iter().map(|&k| last[k].clone()).collect());
        }
        for row in &mut page {
            for (d, &c) in deferred.iter_mut().zip(&self_refs) {
                if !row[c].is_null() {
                    let k = key.iter().map(|&k| row[k].clone()).collect();
                    d.push((k, row[c].take()));
                }
            }
        }
        let before = rows;
        rows += page.len() as u64;
        let mut page = page.into_iter();
        loop {
            let batch: Vec<Vec<Value>> = page.by_ref().take(per_insert).collect();
            if batch.is_empty() {
                break;
            }
            dst.insert(table, batch).await?;
        }
        if rows / PROGRESS_EVERY > before / PROGRESS_EVERY {
            progress(report(rows, false));
        }
        if last_page {
            break;
        }
    }
    for (updates, &c) in deferred.into_iter().zip(&self_refs) {
        dst.set_column(table, c, updates).await?;
    }
    progress(report(rows, true));
    Ok(rows)
}

async fn refuse_unless_empty(dst: &mut Tx, tables: &[Table], to: &StoreUrl) -> Result<()> {
    let mut used = Vec::new();
    for t in tables {
        let n = dst.count(t).await?;
        if n > 0 {
            used.push(format!("{} {n}", t.name));
        }
    }
    if used.is_empty() {
        return Ok(());
    }
    Err(Error::Conflict(format!(
        "the destination {} already holds data ({}): copying into it would merge two \
         installs; point --to at a new, empty database (or drop and re-create this one if it \
         holds only an earlier trial copy)",
        to.display(),
        used.join(", ")
    )))
}

/// The same SQLite file or the same PostgreSQL url on both sides.
fn same_store(a: &StoreUrl, b: &StoreUrl) -> bool {
    match (a, b) {
        (StoreUrl::Sqlite(x), StoreUrl::Sqlite(y)) => {
            x == y
                || matches!(
                    (std::fs::canonicalize(x), std::fs::canonicalize(y)),
                    (Ok(x), Ok(y)) if x == y
                )
        }
        (StoreUrl::Postgres(x), StoreUrl::Postgres(y)) => x == y,
        _ => false,
    }
}

// === a store and its transactions, by backend ===

enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// The same async call on either backend's module.
macro_rules! on {
    ($tx:expr, $f:ident($($arg:expr),*)) => {
        match $tx {
            Tx::Sqlite(tx) => sqlite::$f(&mut **tx $(, $arg)*).await,
            Tx::Postgres(tx) => postgres::$f(&mut **tx $(, $arg)*).await,
        }
    };
}

impl Store {
    /// Opens (and migrates) the store `url` names.
    async fn open(url: &StoreUrl) -> Result<Self> {
        Ok(match url {
            StoreUrl::Sqlite(path) => Store::Sqlite(SqliteStore::open(path).await?),
            StoreUrl::Postgres(u) => Store::Postgres(PostgresStore::open(u).await?),
        })
    }

    async fn begin_read(&self) -> Result<Tx> {
        Ok(match self {
            Store::Sqlite(s) => Tx::Sqlite(sqlite::begin_read(s.pool()).await?),
            Store::Postgres(s) => Tx::Postgres(postgres::begin_read(s.pool()).await?),
        })
    }

    async fn begin_write(&self) -> Result<Tx> {
        Ok(match self {
            Store::Sqlite(s) => Tx::Sqlite(sqlite::begin_write(s.pool()).await?),
            Store::Postgres(s) => Tx::Postgres(postgres::begin_write(s.pool()).await?),
        })
    }
}

impl Tx {
    async fn schema(&mut self) -> Result<Vec<Table>> {
        on!(self, schema())
    }

    async fn page(
        &mut self,
        table: &Table,
        after: Option<Vec<Value>>,
        limit: usize,
    ) -> Result<Vec<Vec<Value>>> {
        on!(self, page(table, after, limit))
    }

    async fn insert(&mut self, table: &Table, rows: Vec<Vec<Value>>) -> Result<()> {
        on!(self, insert(table, rows))
    }

    async fn set_column(
        &mut self,
        table: &Table,
        column: usize,
        updates: Vec<(Vec<Value>, Value)>,
    ) -> Result<()> {
        on!(self, set_column(table, column, updates))
    }

    async fn count(&mut self, table: &Table) -> Result<i64> {
        on!(self, count(table))
    }

    async fn prepare(&mut self, tables: &[Table]) -> Result<()> {
        on!(self, prepare(tables))
    }

    async fn finish(&mut self, tables: &[Table]) -> Result<()> {
        on!(self, finish(tables))
    }

    async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

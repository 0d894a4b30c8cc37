// The reads and writes of a copy, written once with `$n` parameters (which
// SQLite reads too) and included by `sqlite.rs` and `postgres.rs`, which
// define `Db` and `Conn`.

/// Up to `limit` rows of `table` after the key `after` (from the start
/// without one), in key order, each column decoded as its kind (a value of
/// another type is an error naming the column). Pages keep each statement
/// short; a table without a key comes in one.
pub(super) async fn page(
    conn: &mut Conn,
    table: &Table,
    after: Option<Vec<Value>>,
    limit: usize,
) -> Result<Vec<Vec<Value>>> {
    let mut sql = format!("SELECT {} FROM {}", table.column_list(), ident(&table.name));
    if !table.key.is_empty() {
        let key: Vec<String> = table.key.iter().map(|k| ident(k)).collect();
        if let Some(after) = &after {
            let params: Vec<String> = (1..=after.len()).map(|i| format!("${i}")).collect();
            sql.push_str(&format!(
                " WHERE ({}) > ({})",
                key.join(", "),
                params.join(", ")
            ));
        }
        sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", key.join(", ")));
    }
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for v in after.into_iter().flatten() {
        q = match v {
            Value::Int(x) => q.bind(x),
            Value::Text(x) => q.bind(x),
        };
    }
    q.fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| decode(row, table))
        .collect()
}

fn decode(row: &<Db as sqlx::Database>::Row, table: &Table) -> Result<Vec<Value>> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let v = match c.kind {
                Kind::Int => row.try_get::<Option<i64>, _>(i).map(Value::Int),
                Kind::Text => row.try_get::<Option<String>, _>(i).map(Value::Text),
            };
            v.map_err(|e| Error::Corrupt(format!("{}.{}: {e}", table.name, c.name)))
        })
        .collect()
}

/// Inserts `rows` in one statement, ids and all.
pub(super) async fn insert(conn: &mut Conn, table: &Table, rows: Vec<Vec<Value>>) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let width = table.columns.len();
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ",
        ident(&table.name),
        table.column_list()
    );
    for r in 0..rows.len() {
        let params: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&params.join(", "));
        sql.push(')');
    }
    let expected = rows.len() as u64;
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for v in rows.into_iter().flatten() {
        q = match v {
            Value::Int(x) => q.bind(x),
            Value::Text(x) => q.bind(x),
        };
    }
    let inserted = q.execute(&mut *conn).await?.rows_affected();
    if inserted != expected {
        return Err(Error::Corrupt(format!(
            "{}: {inserted} of {expected} rows inserted",
            table.name
        )));
    }
    Ok(())
}

/// Sets column `column` of the rows with these keys (the deferred
/// self-references).
pub(super) async fn set_column(
    conn: &mut Conn,
    table: &Table,
    column: usize,
    updates: Vec<(Vec<Value>, Value)>,
) -> Result<()> {
    let wheres: Vec<String> = table
        .key
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{} = ${}", ident(k), i + 2))
        .collect();
    let sql = format!(
        "UPDATE {} SET {} = $1 WHERE {}",
        ident(&table.name),
        ident(&table.columns[column].name),
        wheres.join(" AND ")
    );
    for (key, value) in updates {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
        for v in std::iter::once(value).chain(key) {
            q = match v {
                Value::Int(x) => q.bind(x),
                Value::Text(x) => q.bind(x),
            };
        }
        if q.execute(&mut *conn).await?.rows_affected() != 1 {
            return Err(Error::Corrupt(format!(
                "{}: a row to set {} on is missing",
                table.name, table.columns[column].name
            )));
        }
    }
    Ok(())
}

pub(super) async fn count(conn: &mut Conn, table: &Table) -> Result<i64> {
    let sql = format!("SELECT COUNT(*) FROM {}", ident(&table.name));
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await?)
}

/// The counter the `check_states` triggers keep (`series_count` of agents;
/// a tenant's is their sum), recounted from the copied rows: whatever the triggers did
/// or did not add while the copied agents and tenants already carried their
/// counts, each ends up at its number of series, as the triggers keep it.
pub(super) async fn recount_series(conn: &mut Conn) -> Result<()> {
    sqlx::query(
        "UPDATE agents SET series_count = \
         (SELECT COUNT(*) FROM check_states c WHERE c.agent_id = agents.id)",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

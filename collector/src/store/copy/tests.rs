//! Copies between SQLite files, with rows written by hand at the edges
//! (forward self-references, NULLs, extreme integers, quotes and non-ASCII
//! text), and the refusals. The full install into PostgreSQL and back is
//! in `conformance/copy.rs`.

use std::collections::BTreeMap;
use std::path::Path;

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use super::{Summary, copy};
use crate::Error;
use crate::store::StoreUrl;
use crate::store::sqlite::SqliteStore;

/// Every table's column names and rows as text (NULL as `None`), columns
/// by name, rows sorted: the same on both backends when the data is.
pub(crate) type Dump = BTreeMap<String, (Vec<String>, Vec<Vec<Option<String>>>)>;

/// Reads every table of a SQLite store (not through the copy's code).
pub(crate) async fn dump_sqlite(pool: &SqlitePool) -> Dump {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .expect("tables");
    let mut dump = Dump::new();
    for t in tables {
        let cols: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY name")
                .bind(&t)
                .fetch_all(pool)
                .await
                .expect("columns");
        let list: Vec<String> = cols
            .iter()
            .map(|c| format!("CAST(\"{c}\" AS TEXT)"))
            .collect();
        let sql = format!("SELECT {} FROM \"{t}\"", list.join(", "));
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .expect("rows");
        let rows = as_text(&rows, cols.len());
        dump.insert(t, (cols, rows));
    }
    dump
}

/// Reads every table of a PostgreSQL store (not through the copy's code).
pub(crate) async fn dump_postgres(pool: &PgPool) -> Dump {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .expect("tables");
    let mut dump = Dump::new();
    for t in tables {
        let cols: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY column_name",
        )
        .bind(&t)
        .fetch_all(pool)
        .await
        .expect("columns");
        let list: Vec<String> = cols.iter().map(|c| format!("\"{c}\"::text")).collect();
        let sql = format!("SELECT {} FROM \"{t}\"", list.join(", "));
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .expect("rows");
        let rows = as_text(&rows, cols.len());
        dump.insert(t, (cols, rows));
    }
    dump
}

fn as_text<R: sqlx::Row>(rows: &[R], width: usize) -> Vec<Vec<Option<String>>>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut out: Vec<Vec<Option<String>>> = rows
        .iter()
        .map(|r| {
            (0..width)
                .map(|i| r.try_get::<Option<String>, _>(i).expect("text"))
                .collect()
        })
        .collect();
    out.sort();
    out
}

/// Asserts the two dumps hold the same tables, each with the same rows,
/// and that every table has some (so no table goes untested).
pub(crate) fn assert_same(a: &Dump, b: &Dump) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "tables"
    );
    for (table, (columns, rows)) in a {
        assert!(!rows.is_empty(), "table {table} has no rows to compare");
        let (other_columns, other) = &b[table];
        assert_eq!(columns, other_columns, "{table}: columns");
        assert_eq!(rows.len(), other.len(), "{table}: row count");
        for (x, y) in rows.iter().zip(other) {
            let differ: Vec<String> = columns
                .iter()
                .zip(x.iter().zip(y))
                .filter(|(_, (x, y))| x != y)
                .map(|(c, (x, y))| format!("{c}: {x:?} != {y:?}"))
                .collect();
            assert!(differ.is_empty(), "{table}: {}", differ.join(", "));
        }
    }
}

/// Writes one or more rows into every table by hand, at the edges of what
/// the columns hold. `tickets` 7 points at its parent 9, inserted after it.
pub(crate) async fn fill_edges(pool: &SqlitePool) {
    let big = i64::MAX;
    let small = i64::MIN;
    let odd = "quote ' double \" back \\ tab\t newline\n ünïcödé ✓ 日本";
    let statements = [
        "INSERT INTO tenants (id, name, created_at, time_zone) VALUES \
         ('e1', 'edge one', 0, 'Europe/Berlin'), ('e2', $1, -1, 'UTC')",
        "INSERT INTO enrollment_tokens (id, tenant_id, site, token_hash, expires_at, max_uses, \
         uses, created_at, role, revoked_at) VALUES \
         ('et1', 'e1', $1, 'eh1', $2, 5, 5, 0, 'server', NULL), \
         ('et2', 'e2', '', 'eh2', $3, 1, 0, 0, 'workstation', 7)",
        "INSERT INTO agents (id, tenant_id, site, hostname, memory_total_bytes, enrolled_at, \
         cert_not_after, revoked_at, boot_id, last_seen_at, snapshot, clock_offset_ms, \
         overdue, overdue_since, connected_at) VALUES \
         ('ea1', 'e1', 'hq', $1, $2, 0, $2, NULL, NULL, NULL, NULL, $3, 1, 5, NULL), \
         ('ea2', 'e2', '', 'h2', 0, 0, 0, 9, 'boot', 10, '{\"uptime_secs\":1}', NULL, 0, NULL, 11)",
        "INSERT INTO check_states (tenant_id, agent_id, check_kind, item, state, message, \
         metrics, since, observed_at, updated_at) VALUES \
         ('e1', 'ea1', 'disk', '/', 'crit', $1, '[]', 1, 2, 3), \
         ('e1', 'ea1', 'disk', '/data', 'ok', '', '[]', 1, 2, 3), \
         ('e2', 'ea2', 'plugin', $1, 'warn', '', '[{\"name\":\"x\"}]', $2, $3, 0)",
        "INSERT INTO tickets (id, tenant_id, site, agent_id, host, check_kind, item, \
         fingerprint, severity, summary, state, opened_at, updated_at, kind, parent_id) VALUES \
         (5, 'e1', 'hq', 'ea1', 'h1', 'disk', '/', 'fp5', 'crit', $1, 'open', 1, 2, 'check', \
          NULL), \
         (9, 'e1', 'hq', '', '', 'disk', '/', 'fp9', 'crit', 'group', 'open', 1, 2, 'group', NULL)",
        "INSERT INTO tickets (id, tenant_id, site, agent_id, host, check_kind, item, \
         fingerprint, severity, summary, state, opened_at, updated_at, resolved_at, kind, \
         parent_id, tier, flapping) VALUES \
         (7, 'e1', 'hq', 'ea1', 'h1', 'disk', '/data', 'fp7', 'warn', $1, 'resolved', 1, 2, $2, \
          'check', 9, 3, 1)",
        "INSERT INTO ticket_events (id, tenant_id, ticket_id, at, kind, detail, actor) VALUES \
         (100, 'e1', 5, 1, 'opened', $1, 'engine'), (101, 'e1', 7, $2, 'resolved', '', 'cli:me')",
        "INSERT INTO api_keys (id, tenant_id, name, key_hash, created_at, role, disabled_at, \
         revoked_at, last_used_at) VALUES \
         ('k1', NULL, $1, 'kh1', 0, 'msp-admin', NULL, NULL, $2), \
         ('k2', 'e2', 'viewer', 'kh2', 0, 'viewer', 5, 6, NULL)",
        "INSERT INTO operators (id, username, password_hash, totp_secret, role, created_at, \
         created_by, disabled_at, revoked_at, last_login_at) VALUES \
         ('o1', 'admin', $1, NULL, 'msp-admin', 1, 'collector', NULL, NULL, $2), \
         ('o2', 'tech', NULL, 'JBSWY3DPEHPK3PXP', 'technician', 2, 'admin', 3, NULL, NULL)",
        "INSERT INTO operator_tenants (operator_id, tenant_id) VALUES ('o2', 'e1'), ('o2', 'e2')",
        "INSERT INTO operator_sessions (id_hash, operator_id, csrf_token, created_at, \
         last_seen_at, source) VALUES ('sh1', 'o1', $1, 1, $2, '10.0.0.1')",
        "INSERT INTO setup_links (token_hash, operator_id, created_at, expires_at, used_at) \
         VALUES ('lh1', 'o2', 1, 9, NULL), ('lh2', 'o1', 1, 2, 2)",
        "INSERT INTO problems (tenant_id, fingerprint, agent_id, check_kind, item, engine, \
         message, observed_at, waiting, updated_at) VALUES \
         ('e1', 'fp5', 'ea1', 'disk', '/', '{\"phase\":\"open\"}', $1, $2, 1, $3)",
        "INSERT INTO audit_log (id, tenant_id, at, actor, action, target, detail, source) \
         VALUES (40, NULL, $3, 'cli:me', 'x', 'y', $1, 'cli'), (41, 'e1', $2, 'a', 'b', 'c', '', '')",
        "INSERT INTO outbox (id, key, tenant_id, sink, ticket_id, event_id, event, status, \
         payload, state, attempts, created_at, next_attempt_at, last_attempt_at, delivered_at, \
         last_error) VALUES \
         (3, 'ok1', 'e1', 'hook', 5, 100, 'opened', 'firing', $1, 'failed', 9, 0, $2, 1, NULL, \
          'HTTP 500')",
        "INSERT INTO maintenance_windows (id, tenant_id, kind, site, agent_id, check_kind, \
         start_at, end_at, weekdays, start_minute, duration_secs, reason, created_by, \
         created_at, rrule, dtstart) VALUES \
         (2, 'e1', 'weekly', 'hq', NULL, 'disk', NULL, NULL, 127, 1439, 60, $1, 'me', 0, NULL, \
          NULL), \
         (8, 'e2', 'once', NULL, 'ea2', NULL, $3, $2, NULL, NULL, NULL, '', 'me', 0, NULL, NULL), \
         (11, 'e1', 'rrule', NULL, NULL, NULL, NULL, NULL, NULL, 1320, 14400, '', 'me', 0, \
          'FREQ=MONTHLY;BYDAY=2TU', $1)",
        "INSERT INTO outbox (id, key, tenant_id, sink, ticket_id, event_id, event, status, \
         payload, created_at, next_attempt_at, claimed_by, claim_until) VALUES \
         (4, 'ok2', 'e1', 'hook', 5, 100, 'opened', 'firing', '{}', 0, 0, $1, $2)",
        "INSERT INTO ca (id, cert_pem, key_sealed, origin, created_at) VALUES \
         (1, $1, 'v1:', 'imported', $2)",
        "INSERT INTO leases (name, holder, expires_at) VALUES ('sweeper', $1, $2), ('x', '', $3)",
        "INSERT INTO delivered_reports (tenant_id, agent_id, boot_id, seq, received_at) VALUES \
         ('e1', 'ea1', 'b', $2, 0), ('e1', 'ea1', 'b', 0, $3), ('e2', 'ea2', $1, 1, 1)",
        "UPDATE agents SET last_sample_at = $2 WHERE id = 'ea1'",
        "INSERT INTO sink_links (id, sink, tenant_id, ticket_id, external_id, url, created_at, \
         closed_at, closed_by) VALUES \
         (6, 'psa', 'e1', 5, $1, NULL, $2, NULL, NULL), \
         (7, 'psa', 'e1', 5, '1234', 'https://psa.example/t/1234', 0, $3, $1)",
        "INSERT INTO metric_samples (tenant_id, agent_id, at, cpu_centipercent, \
         memory_used_bytes, memory_total_bytes, swap_used_bytes, swap_total_bytes, load1_milli, \
         load5_milli, load15_milli, disks) VALUES \
         ('e1', 'ea1', $2, 10000, $2, $2, NULL, NULL, 0, 1, 2, $1), \
         ('e1', 'ea1', $3, -1, 0, 0, $3, $2, $3, $2, 0, '[]'), \
         ('e2', 'ea2', 0, 0, 1, 2, 3, 4, 5, 6, 7, \
          '[{\"mount\":\"/\",\"used_bytes\":1,\"total_bytes\":2,\"full_at\":3}]')",
    ];
    for sql in statements {
        let mut q = sqlx::query(sql);
        // Bind only the parameters the statement names.
        if sql.contains("$1") {
            q = q.bind(odd);
        }
        if sql.contains("$2") {
            q = q.bind(big);
        }
        if sql.contains("$3") {
            q = q.bind(small);
        }
        q.execute(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

async fn filled(dir: &Path) -> (StoreUrl, SqliteStore) {
    let path = dir.join("source.db");
    let store = SqliteStore::open(&path).await.expect("open source");
    fill_edges(store.pool()).await;
    (StoreUrl::Sqlite(path), store)
}

async fn quiet(from: &StoreUrl, to: &StoreUrl) -> crate::Result<Summary> {
    copy(from, to, &mut |_| {}).await
}

#[tokio::test]
async fn sqlite_to_sqlite_keeps_every_row_id_and_counter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (from, source) = filled(dir.path()).await;
    let to_path = dir.path().join("dest.db");
    let to = StoreUrl::Sqlite(to_path.clone());
    let mut seen = Vec::new();
    let summary = copy(&from, &to, &mut |p| {
        if p.done {
            seen.push((p.table.to_string(), p.rows));
        }
    })
    .await
    .expect("copy");
    assert_eq!(summary.rows(), 42, "{:?}", summary.tables);
    let order: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    let pos = |t: &str| order.iter().position(|o| *o == t).expect(t);
    assert!(pos("tenants") < pos("agents") && pos("agents") < pos("check_states"));
    assert!(pos("tickets") < pos("ticket_events"));
    assert!(pos("operators") < pos("operator_tenants") && pos("operators") < pos("setup_links"));

    let dest = SqliteStore::open(&to_path).await.expect("open dest");
    let (a, b) = (
        dump_sqlite(source.pool()).await,
        dump_sqlite(dest.pool()).await,
    );
    assert_same(&a, &b);
    // The triggers counted the copied series once, as in the source.
    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT id, series_count FROM agents ORDER BY id")
            .fetch_all(dest.pool())
            .await
            .expect("counts");
    assert_eq!(counts, [("ea1".to_string(), 2), ("ea2".to_string(), 1)]);
    // New ids continue after the copied ones.
    let next: i64 = sqlx::query_scalar(
        "INSERT INTO audit_log (tenant_id, at, actor, action, target, detail) \
         VALUES (NULL, 0, 'a', 'b', 'c', 'd') RETURNING id",
    )
    .fetch_one(dest.pool())
    .await
    .expect("insert");
    assert_eq!(next, 42);
}

#[tokio::test]
async fn a_destination_with_data_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (from, _source) = filled(dir.path()).await;
    let to_path = dir.path().join("used.db");
    let used = SqliteStore::open(&to_path).await.expect("open");
    sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ('x', 'default', 0)")
        .execute(used.pool())
        .await
        .expect("tenant");
    let e = quiet(&from, &StoreUrl::Sqlite(to_path))
        .await
        .expect_err("refused");
    assert!(matches!(e, Error::Conflict(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("already holds data") && msg.contains("tenants 1"),
        "{msg}"
    );
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agents")
        .fetch_one(used.pool())
        .await
        .expect("count");
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_missing_source_or_the_same_store_twice_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("typo.db");
    let e = quiet(
        &StoreUrl::Sqlite(missing.clone()),
        &StoreUrl::Sqlite(dir.path().join("dest.db")),
    )
    .await
    .expect_err("missing");
    assert!(matches!(e, Error::NotFound(_)), "{e}");
    assert!(!missing.exists(), "the copy created the missing source");
    assert!(!dir.path().join("dest.db").exists(), "nor a destination");

    let (from, _source) = filled(dir.path()).await;
    let e = quiet(&from, &from).await.expect_err("same");
    assert!(e.to_string().contains("both name"), "{e}");
}

#[tokio::test]
async fn a_value_of_the_wrong_type_is_an_error_naming_the_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (from, source) = filled(dir.path()).await;
    // SQLite keeps text that does not look like a number in an INTEGER column.
    sqlx::query("UPDATE agents SET cpu_count = 'many' WHERE id = 'ea1'")
        .execute(source.pool())
        .await
        .expect("update");
    let to_path = dir.path().join("dest.db");
    let e = quiet(&from, &StoreUrl::Sqlite(to_path.clone()))
        .await
        .expect_err("wrong type");
    assert!(e.to_string().contains("agents.cpu_count"), "{e}");
    // Nothing was committed.
    let dest = SqliteStore::open(&to_path).await.expect("open dest");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
        .fetch_one(dest.pool())
        .await
        .expect("count");
    assert_eq!(n, 0);
}

/// A collector writing to the source while it is copied: the copy is one
/// snapshot, so pages read later do not see rows committed after it began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_in_use_is_copied_as_one_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (from, source) = filled(dir.path()).await;
    let audit = "INSERT INTO audit_log (tenant_id, at, actor, action, target, detail) \
                 VALUES ('e1', 0, 'w', 'x', 'y', 'z')";
    for _ in 0..20 {
        sqlx::query(audit)
            .execute(source.pool())
            .await
            .expect("audit");
    }
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_log")
            .fetch_one(source.pool())
            .await
            .expect("count")
    };
    let before = count().await;
    // At the copy's first progress report (its snapshot taken, no row of
    // audit_log read yet), another connection commits 20 more rows.
    let path = dir.path().join("source.db");
    let mut wrote = false;
    let to_path = dir.path().join("dest.db");
    let summary = copy(&from, &StoreUrl::Sqlite(to_path.clone()), &mut |_| {
        if std::mem::replace(&mut wrote, true) {
            return;
        }
        let path = path.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let writer = SqliteStore::open(&path).await.expect("writer");
                for _ in 0..20 {
                    sqlx::query(audit)
                        .execute(writer.pool())
                        .await
                        .expect("write during the copy");
                }
            });
        })
        .join()
        .expect("writer thread");
    })
    .await
    .expect("copy of a store in use");
    assert!(wrote);
    assert_eq!(count().await, before + 20, "the writes landed");
    let copied = summary
        .tables
        .iter()
        .find(|c| c.table == "audit_log")
        .expect("audit_log")
        .rows;
    assert_eq!(
        i64::try_from(copied).expect("rows"),
        before,
        "the copy saw rows committed after its snapshot"
    );
}

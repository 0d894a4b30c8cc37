//! SQLite-only storage tests: its migrations.

use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

/// A database holding series from before migration 0008 gets its
/// counters filled in by it; from then on the triggers keep them.
#[tokio::test]
async fn migration_0008_counts_existing_series_and_triggers_keep_counting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("migrations");
    std::fs::create_dir(&old).expect("dir");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for e in std::fs::read_dir(&src).expect("migrations") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().to_string();
        if name.as_str() < "0008" {
            std::fs::copy(e.path(), old.join(&name)).expect("copy");
        }
    }
    let db = dir.path().join("t.db");
    let mut conn = SqliteConnectOptions::new()
        .filename(&db)
        .create_if_missing(true)
        .connect()
        .await
        .expect("connect");
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .expect("old migrator")
        .run(&mut conn)
        .await
        .expect("migrate to 0007");
    for stmt in [
        "INSERT INTO tenants (id, name, created_at) VALUES ('t1', 'acme', 0), ('t2', 'other', 0)",
        "INSERT INTO agents (id, tenant_id, hostname, enrolled_at, cert_not_after)
         VALUES ('a1', 't1', 'h1', 0, 0), ('a2', 't1', 'h2', 0, 0), ('b1', 't2', 'h3', 0, 0)",
        "INSERT INTO check_states (tenant_id, agent_id, check_kind, item, state, message, metrics, since, observed_at, updated_at)
         VALUES ('t1', 'a1', 'disk', '/', 'ok', '', '[]', 0, 0, 0),
                ('t1', 'a1', 'disk', '/var', 'ok', '', '[]', 0, 0, 0),
                ('t1', 'a2', 'cpu', '', 'ok', '', '[]', 0, 0, 0),
                ('t2', 'b1', 'cpu', '', 'ok', '', '[]', 0, 0, 0)",
    ] {
        sqlx::query(stmt).execute(&mut conn).await.expect(stmt);
    }
    drop(conn);

    let store = super::SqliteStore::open(&db).await.expect("migrate");
    let counts = |sql: &'static str| {
        let pool = store.pool.clone();
        async move {
            sqlx::query_as::<_, (String, i64)>(sql)
                .fetch_all(&pool)
                .await
                .expect("counts")
        }
    };
    let agents = "SELECT id, series_count FROM agents ORDER BY id";
    let tenants =
        "SELECT tenant_id, SUM(series_count) FROM agents GROUP BY tenant_id ORDER BY tenant_id";
    let pairs = |v: &[(&str, i64)]| -> Vec<(String, i64)> {
        v.iter().map(|(k, n)| ((*k).to_string(), *n)).collect()
    };
    assert_eq!(
        counts(agents).await,
        pairs(&[("a1", 2), ("a2", 1), ("b1", 1)])
    );
    assert_eq!(counts(tenants).await, pairs(&[("t1", 3), ("t2", 1)]));

    // An upsert of an existing series counts nothing; a new one counts
    // once, for its agent and its tenant; a removed one uncounts.
    for stmt in [
        "INSERT INTO check_states (tenant_id, agent_id, check_kind, item, state, message, metrics, since, observed_at, updated_at)
         VALUES ('t1', 'a1', 'disk', '/', 'crit', '', '[]', 1, 1, 1), ('t1', 'a2', 'disk', '/', 'ok', '', '[]', 1, 1, 1)
         ON CONFLICT (agent_id, check_kind, item) DO UPDATE SET state = excluded.state",
        "DELETE FROM check_states WHERE agent_id = 'b1'",
    ] {
        sqlx::query(stmt).execute(&store.pool).await.expect(stmt);
    }
    assert_eq!(
        counts(agents).await,
        pairs(&[("a1", 2), ("a2", 2), ("b1", 0)])
    );
    assert_eq!(counts(tenants).await, pairs(&[("t1", 4), ("t2", 0)]));
}

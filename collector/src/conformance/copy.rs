//! `store copy` of an install the collector itself filled: SQLite into a
//! fresh PostgreSQL database and back into a new SQLite file, every table
//! compared row by row; then the copy serves: the open ticket resolves,
//! resent reports stay duplicates, new ids follow the copied ones, and a
//! second copy into the now used database is refused.

use std::sync::Arc;
use std::time::Instant;

use super::backends::fresh_postgres_database;
use super::{NOW, admin, changes, disk, start_session, tenant_with_agent};
use crate::Error;
use crate::domain::{
    CheckResult, CheckState, HostFacts, HostSnapshot, NewApiKey, Report, ReportPayload, Scope,
    TicketAction, TicketState,
};
use crate::maintenance::{Kind, NewWindow, Schedule, Target};
use crate::sinks::SinkRoute;
use crate::store::StoreUrl;
use crate::store::copy::copy;
use crate::store::copy::tests::{assert_same, dump_postgres, dump_sqlite, fill_edges};
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::tickets::Service;

fn result(check: &str, item: &str, state: CheckState) -> CheckResult {
    CheckResult {
        check: check.into(),
        item: item.into(),
        state,
        message: format!("{check} {item} is {state:?}"),
        metrics: vec![],
        since: NOW,
    }
}

/// Rows in every table, as a running collector writes them (plus the
/// hand-written edge rows of `store/copy/tests.rs`).
async fn fill(store: &SqliteStore) {
    fill_edges(store.pool()).await;
    let svc = Service::new(Arc::new(store.clone()));
    svc.set_sink_routes(&[SinkRoute {
        name: "hook".into(),
        kind: "webhook".into(),
        tenants: vec![],
        tiers: vec![],
    }]);
    let acme = tenant_with_agent(&svc, "acme", "a1").await;
    let globex = tenant_with_agent(&svc, "globex", "b1").await;
    let facts = HostFacts {
        hostname: "host-a1".into(),
        os_name: "Debian".into(),
        ..HostFacts::default()
    };
    start_session(&svc, &acme, "a1", "boot-1", &facts, 15, Some(-40), NOW)
        .await
        .expect("session");
    let beat = Report {
        boot_id: "boot-1".into(),
        seq: 1,
        observed_at: NOW,
        payload: ReportPayload::Heartbeat {
            snapshot: HostSnapshot {
                uptime_secs: 42,
                ..HostSnapshot::default()
            },
            checks: vec![
                disk(CheckState::Crit, 99.0),
                result("memory", "", CheckState::Warn),
                result("cpu", "", CheckState::Ok),
            ],
        },
    };
    let o = svc
        .apply_report(&acme, "a1", &beat, NOW)
        .await
        .expect("beat");
    assert_eq!(o.opened, 2, "{o:?}");
    let o = svc
        .apply_report(
            &acme,
            "a1",
            &changes(2, NOW + 1, vec![result("memory", "", CheckState::Ok)]),
            NOW + 1,
        )
        .await
        .expect("memory ok");
    assert_eq!(o.resolved, 1, "{o:?}");
    let disk_ticket = svc
        .store()
        .list_tickets(&Scope::Tenant(acme.clone()), Some(TicketState::Open))
        .await
        .expect("open")[0]
        .id;
    svc.ticket_action(&admin(), disk_ticket, &TicketAction::Acknowledge, NOW + 2)
        .await
        .expect("ack");
    svc.ticket_action(
        &admin(),
        disk_ticket,
        &TicketAction::Note("moving to PostgreSQL".into()),
        NOW + 3,
    )
    .await
    .expect("note");
    svc.create_maintenance(
        &admin(),
        &NewWindow {
            tenant_id: globex.clone(),
            kind: Kind::Once,
            target: Target {
                agent_id: Some("b1".into()),
                ..Target::default()
            },
            schedule: Schedule::Between {
                start: NOW,
                end: NOW + 3_600_000,
            },
            reason: "patching".into(),
        },
        NOW,
    )
    .await
    .expect("window");
    for (id, tenant) in [("k-msp", None), ("k-acme", Some(acme.clone()))] {
        svc.store()
            .create_api_key(&NewApiKey {
                id: id.into(),
                tenant_id: tenant,
                name: id.into(),
                key_hash: format!("hash-{id}"),
                role: crate::domain::Role::Viewer,
            })
            .await
            .expect("api key");
    }
    // Replicas: a claimed outbox row and the shared CA's row.
    let claimed = svc
        .store()
        .outbox_claim("hook", "replica-1", NOW + 100_000, NOW + 700_000, 1)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    svc.store()
        .store_ca_if_absent(&crate::store::StoredCa {
            cert_pem: "-----BEGIN CERTIFICATE-----\n...\n".into(),
            key_sealed: "v1:AAAA".into(),
            origin: "generated".into(),
            created_at: NOW,
        })
        .await
        .expect("ca");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_copied_to_postgres_and_back_is_the_same_row_for_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("forewarn.db");
    let sqlite = SqliteStore::open(&path).await.expect("open sqlite");
    fill(&sqlite).await;
    let original = dump_sqlite(sqlite.pool()).await;

    // SQLite -> PostgreSQL.
    let pg_url = fresh_postgres_database().await;
    let from = StoreUrl::Sqlite(path);
    let to = StoreUrl::Postgres(pg_url.clone());
    let started = Instant::now();
    let summary = copy(&from, &to, &mut |_| {})
        .await
        .expect("copy to postgres");
    eprintln!(
        "sqlite -> postgres: {} rows in {} tables in {:?}: {:?}",
        summary.rows(),
        summary.tables.len(),
        started.elapsed(),
        summary.tables
    );
    let pg = PostgresStore::open(&pg_url).await.expect("open postgres");
    assert_same(&original, &dump_postgres(pg.pool()).await);

    // PostgreSQL -> SQLite.
    let back = dir.path().join("back.db");
    let started = Instant::now();
    copy(&to, &StoreUrl::Sqlite(back.clone()), &mut |_| {})
        .await
        .expect("copy back");
    eprintln!("postgres -> sqlite: {:?}", started.elapsed());
    let back = SqliteStore::open(&back).await.expect("open copy");
    assert_same(&original, &dump_sqlite(back.pool()).await);

    // A second copy into the used database is refused; nothing changes.
    let e = copy(&from, &to, &mut |_| {})
        .await
        .expect_err("used destination");
    assert!(matches!(e, Error::Conflict(_)), "{e}");
    assert_same(&original, &dump_postgres(pg.pool()).await);

    // The copy serves.
    serves(&sqlite, &pg).await;
}

/// The collector's decisions carry on on the copy as on the original.
async fn serves(sqlite: &SqliteStore, pg: &PostgresStore) {
    let old = Service::new(Arc::new(sqlite.clone()));
    let new = Service::new(Arc::new(pg.clone()));
    let acme = new
        .store()
        .tenant_by_name("acme")
        .await
        .expect("tenant")
        .expect("acme copied")
        .id;
    let open = new
        .store()
        .list_tickets(&Scope::Tenant(acme.clone()), Some(TicketState::Open))
        .await
        .expect("open");
    assert_eq!(open.len(), 1, "{open:?}");
    let id = open[0].id;
    assert_eq!(
        new.store().get_ticket(&Scope::All, id).await.expect("get"),
        old.store().get_ticket(&Scope::All, id).await.expect("get"),
        "the ticket and its timeline"
    );
    assert_eq!(
        new.get_agent(&Scope::All, "a1").await.expect("agent"),
        old.get_agent(&Scope::All, "a1").await.expect("agent"),
    );

    // A report the old store committed is a duplicate on the new one.
    let resent = new
        .apply_report(
            &acme,
            "a1",
            &changes(2, NOW + 1, vec![disk(CheckState::Ok, 1.0)]),
            NOW + 10,
        )
        .await
        .expect("resent");
    assert!(resent.duplicate, "{resent:?}");
    // The failure clears: the copied ticket resolves, no other opens.
    let o = new
        .apply_report(
            &acme,
            "a1",
            &changes(3, NOW + 20, vec![disk(CheckState::Ok, 10.0)]),
            NOW + 20,
        )
        .await
        .expect("clear");
    assert_eq!((o.resolved, o.opened), (1, 0), "{o:?}");
    let t = new
        .store()
        .get_ticket(&Scope::All, id)
        .await
        .expect("get")
        .expect("ticket");
    assert_eq!(t.ticket.state, TicketState::Resolved);

    // New rows take ids after the copied ones; a new series counts once.
    let max_id: i64 = sqlx::query_scalar("SELECT MAX(id) FROM tickets")
        .fetch_one(sqlite.pool())
        .await
        .expect("max");
    let globex = new
        .store()
        .tenant_by_name("globex")
        .await
        .expect("tenant")
        .expect("globex")
        .id;
    let before: i64 = sqlx::query_scalar(
        "SELECT CAST(SUM(series_count) AS BIGINT) FROM agents WHERE tenant_id = $1",
    )
    .bind(&acme)
    .fetch_one(pg.pool())
    .await
    .expect("count");
    assert_eq!(before, 3, "disk, memory and cpu of a1");
    new.apply_report(
        &acme,
        "a1",
        &changes(
            4,
            NOW + 30,
            vec![result("backup", "nightly", CheckState::Crit)],
        ),
        NOW + 30,
    )
    .await
    .expect("new problem");
    let after: i64 = sqlx::query_scalar(
        "SELECT CAST(SUM(series_count) AS BIGINT) FROM agents WHERE tenant_id = $1",
    )
    .bind(&acme)
    .fetch_one(pg.pool())
    .await
    .expect("count");
    assert_eq!(after, before + 1);
    let new_ids: Vec<i64> = new
        .store()
        .list_tickets(&Scope::Tenant(acme), Some(TicketState::Open))
        .await
        .expect("open")
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(new_ids, [max_id + 1]);
    // The window copied with its tenant still holds b1.
    assert!(
        new.list_maintenance(&Scope::Tenant(globex), &[Kind::Once])
            .await
            .expect("windows")
            .iter()
            .any(|w| w.target.agent_id.as_deref() == Some("b1"))
    );
}

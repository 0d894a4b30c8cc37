//! The store conformance suite: every backend runs these same tests through
//! the [`Store`] trait (`store_conformance!(backend, factory)`).

use std::sync::Arc;

use super::Store;
use crate::Error;
use crate::domain::{
    CheckResult, CheckState, HostFacts, HostSnapshot, Millis, NewAgent, NewApiKey,
    NewEnrollmentToken, Report, ReportPayload, Scope, TicketState,
};

const NOW: Millis = 1_800_000_000_000;

pub async fn tenant_with_agent(store: &dyn Store, tenant: &str, agent: &str) -> String {
    let t = store.create_tenant(tenant).await.expect("tenant");
    let hash = format!("hash-{agent}");
    store
        .create_enrollment_token(&NewEnrollmentToken {
            id: format!("tok-{agent}"),
            tenant_id: t.id.clone(),
            site: "hq".into(),
            token_hash: hash.clone(),
            expires_at: NOW + 1000,
            max_uses: 1,
        })
        .await
        .expect("token");
    store
        .enroll_agent(&hash, NOW, &new_agent(agent, &t.id))
        .await
        .expect("enroll");
    t.id
}

fn new_agent(id: &str, tenant_id: &str) -> NewAgent {
    NewAgent {
        id: id.into(),
        tenant_id: tenant_id.into(),
        site: "hq".into(),
        facts: HostFacts {
            hostname: format!("host-{id}"),
            ..HostFacts::default()
        },
        cert_not_after: NOW + 86_400_000,
    }
}

pub fn disk(state: CheckState, pct: f64) -> CheckResult {
    CheckResult {
        check: "disk".into(),
        item: "/data".into(),
        state,
        message: format!("/data {pct}% used"),
        metrics: vec![],
        since: NOW,
    }
}

pub fn changes(seq: u64, observed_at: Millis, results: Vec<CheckResult>) -> Report {
    Report {
        boot_id: "boot-1".into(),
        seq,
        observed_at,
        payload: ReportPayload::StateChanges(results),
    }
}

pub async fn tenants_are_unique_and_scoped(store: Arc<dyn Store>) {
    let a = store.create_tenant("acme").await.expect("create");
    assert!(matches!(
        store.create_tenant("acme").await,
        Err(Error::Conflict(_))
    ));
    let b = store.create_tenant("globex").await.expect("create");
    assert_eq!(
        store.list_tenants(&Scope::All).await.expect("list").len(),
        2
    );
    let only_a = store
        .list_tenants(&Scope::Tenant(a.id.clone()))
        .await
        .expect("list");
    assert_eq!(only_a, vec![a.clone()]);
    assert_eq!(
        store.tenant_by_name("globex").await.expect("by name"),
        Some(b)
    );
}

pub async fn enrollment_tokens_expire_and_run_out(store: Arc<dyn Store>) {
    let t = store.create_tenant("acme").await.expect("tenant");
    store
        .create_enrollment_token(&NewEnrollmentToken {
            id: "t1".into(),
            tenant_id: t.id.clone(),
            site: "hq".into(),
            token_hash: "h1".into(),
            expires_at: NOW + 1000,
            max_uses: 2,
        })
        .await
        .expect("token");
    assert!(matches!(
        store.check_enrollment_token("nope", NOW).await,
        Err(Error::Unauthenticated(_))
    ));
    assert!(matches!(
        store.check_enrollment_token("h1", NOW + 1000).await,
        Err(Error::Unauthenticated(_))
    ));
    let grant = store
        .check_enrollment_token("h1", NOW)
        .await
        .expect("valid");
    assert_eq!(grant.tenant_id, t.id);
    assert_eq!(grant.site, "hq");
    store
        .enroll_agent("h1", NOW, &new_agent("a1", &t.id))
        .await
        .expect("1st");
    store
        .enroll_agent("h1", NOW, &new_agent("a2", &t.id))
        .await
        .expect("2nd");
    assert!(matches!(
        store.enroll_agent("h1", NOW, &new_agent("a3", &t.id)).await,
        Err(Error::PermissionDenied(_))
    ));
    // Expired refusal leaves no agent behind either.
    assert!(
        store
            .enroll_agent("h1", NOW + 5000, &new_agent("a4", &t.id))
            .await
            .is_err()
    );
    let agents = store.list_agents(&Scope::All).await.expect("agents");
    let ids: Vec<_> = agents.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(store.agent_auth("a3").await.expect("auth").is_none());
    assert!(store.agent_auth("a4").await.expect("auth").is_none());
}

pub async fn tickets_open_update_resolve_and_reopen(store: Arc<dyn Store>) {
    let tenant = tenant_with_agent(store.as_ref(), "acme", "a1").await;
    let o = store
        .apply_report(
            &tenant,
            "a1",
            &changes(1, NOW, vec![disk(CheckState::Warn, 90.0)]),
            NOW,
        )
        .await
        .expect("apply");
    assert_eq!((o.opened, o.duplicate), (1, false));
    // Same seq again: a duplicate, nothing changes.
    let dup = store
        .apply_report(
            &tenant,
            "a1",
            &changes(1, NOW, vec![disk(CheckState::Crit, 99.0)]),
            NOW,
        )
        .await
        .expect("dup");
    assert!(dup.duplicate);
    let o = store
        .apply_report(
            &tenant,
            "a1",
            &changes(2, NOW + 1, vec![disk(CheckState::Crit, 97.0)]),
            NOW + 1,
        )
        .await
        .expect("apply");
    assert_eq!((o.opened, o.updated), (0, 1));
    let open = store
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].severity, CheckState::Crit);
    assert_eq!(open[0].item, "/data");
    assert_eq!(open[0].host, "host-a1");
    assert_eq!(open[0].site, "hq");
    let first_id = open[0].id;

    let o = store
        .apply_report(
            &tenant,
            "a1",
            &changes(3, NOW + 2, vec![disk(CheckState::Ok, 20.0)]),
            NOW + 2,
        )
        .await
        .expect("apply");
    assert_eq!(o.resolved, 1);
    let t = store
        .get_ticket(&Scope::All, first_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(t.ticket.state, TicketState::Resolved);
    assert_eq!(t.ticket.resolved_at, Some(NOW + 2));
    let kinds: Vec<_> = t.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "updated", "resolved"]);

    // A new failure after resolution is a new episode.
    store
        .apply_report(
            &tenant,
            "a1",
            &changes(4, NOW + 3, vec![disk(CheckState::Crit, 99.0)]),
            NOW + 3,
        )
        .await
        .expect("apply");
    let all = store.list_tickets(&Scope::All, None).await.expect("list");
    assert_eq!(all.len(), 2);
    assert_ne!(all[0].id, first_id);
}

pub async fn stale_results_do_not_roll_back(store: Arc<dyn Store>) {
    let tenant = tenant_with_agent(store.as_ref(), "acme", "a1").await;
    store
        .apply_report(
            &tenant,
            "a1",
            &changes(2, NOW + 10, vec![disk(CheckState::Crit, 99.0)]),
            NOW,
        )
        .await
        .expect("apply");
    // An older report arriving late (resend) must not resolve the ticket.
    store
        .apply_report(
            &tenant,
            "a1",
            &changes(1, NOW, vec![disk(CheckState::Ok, 10.0)]),
            NOW,
        )
        .await
        .expect("apply");
    let open = store
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list");
    assert_eq!(open.len(), 1);
}

pub async fn reads_are_tenant_scoped(store: Arc<dyn Store>) {
    let ta = tenant_with_agent(store.as_ref(), "acme", "a1").await;
    let tb = tenant_with_agent(store.as_ref(), "globex", "b1").await;
    store
        .apply_report(
            &ta,
            "a1",
            &changes(1, NOW, vec![disk(CheckState::Crit, 99.0)]),
            NOW,
        )
        .await
        .expect("apply");
    // Tenant B writing for A's agent id finds nothing to write to.
    assert!(
        store
            .apply_report(
                &tb,
                "a1",
                &changes(1, NOW, vec![disk(CheckState::Crit, 99.0)]),
                NOW
            )
            .await
            .is_err()
    );
    let a_scope = Scope::Tenant(ta.clone());
    let b_scope = Scope::Tenant(tb.clone());
    let ticket = store
        .list_tickets(&a_scope, None)
        .await
        .expect("list")
        .remove(0);
    assert!(
        store
            .list_tickets(&b_scope, None)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(
        store
            .get_ticket(&b_scope, ticket.id)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .get_agent(&b_scope, "a1")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .get_agent(&a_scope, "a1")
            .await
            .expect("get")
            .is_some()
    );
    let b_agents = store.list_agents(&b_scope).await.expect("agents");
    assert_eq!(b_agents.len(), 1);
    assert_eq!(b_agents[0].id, "b1");
}

pub async fn sessions_and_snapshots(store: Arc<dyn Store>) {
    let t = tenant_with_agent(store.as_ref(), "acme", "a1").await;
    let facts = HostFacts {
        hostname: "renamed".into(),
        os_name: "Debian".into(),
        ..HostFacts::default()
    };
    store
        .start_session(&t, "a1", "boot-1", &facts, NOW)
        .await
        .expect("start");
    let snapshot = HostSnapshot {
        uptime_secs: 42,
        ..HostSnapshot::default()
    };
    store
        .apply_report(
            &t,
            "a1",
            &Report {
                boot_id: "boot-1".into(),
                seq: 1,
                observed_at: NOW,
                payload: ReportPayload::Heartbeat {
                    snapshot: snapshot.clone(),
                    checks: vec![disk(CheckState::Ok, 10.0)],
                },
            },
            NOW + 5,
        )
        .await
        .expect("heartbeat");
    let a = store
        .get_agent(&Scope::All, "a1")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(a.agent.hostname, "renamed");
    assert_eq!(a.agent.status, "online");
    assert_eq!(a.agent.last_seen_at, Some(NOW + 5));
    assert_eq!(a.agent.snapshot, Some(snapshot));
    assert_eq!(a.checks.len(), 1);
    assert_eq!(a.checks[0].state, CheckState::Ok);
    store
        .end_session(&t, "a1", true, NOW + 10)
        .await
        .expect("end");
    let a = store
        .get_agent(&Scope::All, "a1")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(a.agent.status, "offline");
}

pub async fn api_keys_grant_their_scope(store: Arc<dyn Store>) {
    let t = store.create_tenant("acme").await.expect("tenant");
    store
        .create_api_key(&NewApiKey {
            id: "k1".into(),
            tenant_id: Some(t.id.clone()),
            name: "acme-tech".into(),
            key_hash: "kh1".into(),
        })
        .await
        .expect("key");
    store
        .create_api_key(&NewApiKey {
            id: "k2".into(),
            tenant_id: None,
            name: "msp-admin".into(),
            key_hash: "kh2".into(),
        })
        .await
        .expect("key");
    assert_eq!(
        store.api_key_scope("kh1").await.expect("scope"),
        Some(Scope::Tenant(t.id))
    );
    assert_eq!(
        store.api_key_scope("kh2").await.expect("scope"),
        Some(Scope::All)
    );
    assert_eq!(store.api_key_scope("nope").await.expect("scope"), None);
}

/// Many writers race to report the same failure; the database must end with
/// exactly one open ticket.
pub async fn one_open_ticket_under_concurrent_writers(store: Arc<dyn Store>) {
    let tenant = tenant_with_agent(store.as_ref(), "acme", "a1").await;
    let mut tasks = Vec::new();
    for seq in 1..=16u64 {
        let store = store.clone();
        let tenant = tenant.clone();
        tasks.push(tokio::spawn(async move {
            let state = if seq % 2 == 0 {
                CheckState::Crit
            } else {
                CheckState::Warn
            };
            store
                .apply_report(
                    &tenant,
                    "a1",
                    &changes(seq, NOW, vec![disk(state, 99.0)]),
                    NOW,
                )
                .await
        }));
    }
    let mut opened = 0;
    for t in tasks {
        opened += t.await.expect("join").expect("apply").opened;
    }
    assert_eq!(opened, 1);
    let open = store
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list");
    assert_eq!(open.len(), 1);
}

pub async fn prune_forgets_old_deliveries(store: Arc<dyn Store>) {
    let tenant = tenant_with_agent(store.as_ref(), "acme", "a1").await;
    store
        .apply_report(&tenant, "a1", &changes(1, NOW, vec![]), NOW)
        .await
        .expect("apply");
    assert_eq!(store.prune_delivered(NOW - 1).await.expect("prune"), 0);
    assert_eq!(store.prune_delivered(NOW + 1).await.expect("prune"), 1);
    store.ping().await.expect("ping");
}

/// Runs the whole suite against a backend: `store_conformance!(name, async factory)`.
macro_rules! store_conformance {
    ($backend:ident, $factory:expr) => {
        mod $backend {
            use super::*;
            store_conformance!(@tests $factory;
                tenants_are_unique_and_scoped,
                enrollment_tokens_expire_and_run_out,
                tickets_open_update_resolve_and_reopen,
                stale_results_do_not_roll_back,
                reads_are_tenant_scoped,
                sessions_and_snapshots,
                api_keys_grant_their_scope,
                one_open_ticket_under_concurrent_writers,
                prune_forgets_old_deliveries,
            );
        }
    };
    (@tests $factory:expr; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let (store, _guard) = $factory.await;
                super::$test(store).await;
            }
        )*
    };
}

async fn sqlite_file() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = super::sqlite::SqliteStore::open(&dir.path().join("t.db"))
        .await
        .expect("open");
    (Arc::new(store), dir)
}

store_conformance!(sqlite, sqlite_file());

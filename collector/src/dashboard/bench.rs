//! Page-load figures at scale (a benchmark that prints, never asserts a
//! time): 1,000 hosts in 5 tenants and 10,000 open tickets on SQLite, the
//! real router on loopback, every dashboard page's (and the main API
//! lists') first response and the median of five. Run:
//! `cargo nextest run -p forewarn-collector --run-ignored only -E 'test(pages_at_scale)' --no-capture`

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conformance::{NOW, changes, enroll, new_agent, session_at_now};
use crate::domain::{ApiCaller, CheckResult, CheckState, Role, Scope};
use crate::tickets::Service;
use crate::tickets::writer::{Write, Writer};

const TENANTS: usize = 5;
const HOSTS: usize = 1000;
const TICKETS_PER_HOST: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: prints figures"]
async fn pages_at_scale() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        crate::store::sqlite::SqliteStore::open(&dir.path().join("b.db"))
            .await
            .expect("open"),
    );
    let svc = Service::new(store.clone());
    let started = Instant::now();
    let mut tenants = Vec::new();
    for t in 0..TENANTS {
        tenants.push(
            svc.store()
                .create_tenant(&format!("tenant-{t}"))
                .await
                .expect("tenant")
                .id,
        );
    }
    let writer = Writer::start(&svc, 1);
    let mut first_agent = String::new();
    for h in 0..HOSTS {
        let tenant = &tenants[h % TENANTS];
        let id = format!("agent-{h:04}");
        let mut agent = new_agent(&id, tenant);
        agent.site = format!("site-{}", h % 10);
        enroll(&svc, &agent).await;
        session_at_now(&svc, tenant, &id).await;
        if h == 0 {
            first_agent.clone_from(&id);
        }
    }
    // Reports queued together commit in batches (group commit).
    let mut pending = Vec::new();
    for h in 0..HOSTS {
        let results: Vec<CheckResult> = (0..TICKETS_PER_HOST)
            .map(|i| CheckResult {
                check: "disk".into(),
                item: format!("/d{i}"),
                state: if h % 3 == 0 {
                    CheckState::Crit
                } else {
                    CheckState::Warn
                },
                message: "full".into(),
                metrics: vec![],
                since: NOW,
            })
            .collect();
        let w = writer.clone();
        let tenant = tenants[h % TENANTS].clone();
        pending.push(tokio::spawn(async move {
            w.apply(Write::Report {
                tenant_id: tenant,
                agent_id: format!("agent-{h:04}"),
                report: changes(1, NOW + 1, results),
                now: NOW + 1,
            })
            .await
        }));
    }
    for p in pending {
        p.await.expect("join").expect("report");
    }
    let open = svc
        .store()
        .fleet_rows(&Scope::All)
        .await
        .expect("rows")
        .tickets
        .iter()
        .map(|t| t.open)
        .sum::<i64>();
    eprintln!(
        "loaded {HOSTS} hosts, {open} open tickets in {:?}",
        started.elapsed()
    );

    let access = crate::access::Access::new(store.clone(), Duration::from_secs(3600));
    let admin = ApiCaller {
        scope: Scope::All,
        name: "bench".into(),
        role: Role::MspAdmin,
        source: "bench".into(),
    };
    let key = access
        .create_key(&admin, "bench", None, Role::MspAdmin, NOW)
        .await
        .expect("key")
        .secret;
    let app = crate::api::router(svc.clone(), access);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let month = crate::domain::rfc3339::format(NOW)[..7].to_string();
    for path in [
        "/".to_string(),
        "/?state=crit".to_string(),
        "/noc".to_string(),
        format!("/hosts/{first_agent}"),
        "/tickets".to_string(),
        "/tickets?tier=1&page=20".to_string(),
        "/tickets/1".to_string(),
        "/maintenance".to_string(),
        "/policies".to_string(),
        "/reports".to_string(),
        format!("/reports/tenant-0/{month}"),
        "/audit".to_string(),
        "/admin".to_string(),
        "/api/v1/tickets?state=open&sort=priority".to_string(),
        "/api/v1/agents".to_string(),
    ] {
        let path = path.as_str();
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let resp = http
                .get(format!("http://{addr}{path}"))
                .bearer_auth(&key)
                .send()
                .await
                .expect("GET");
            assert_eq!(resp.status().as_u16(), 200, "{path}");
            let body = resp.bytes().await.expect("body");
            times.push((t.elapsed(), body.len()));
        }
        let first = times[0];
        times.sort();
        eprintln!(
            "GET {path}: first {:?}, median {:?} ({} KiB)",
            first.0,
            times[2].0,
            first.1 / 1024
        );
    }
}

//! The ConnectWise PSA connector end to end, against the contract fake
//! (`common/vendors/connectwise.rs`): a real collector with a
//! `[[sinks.connectwise]]` and a real agent on a filling tmpfs.
//!
//! A fault opens a ConnectWise ticket on the mapped board, company and
//! priority; an acknowledge adds a note; a technician closing it in
//! ConnectWise is reflected back, and the problem still failing opens a
//! new ConnectWise ticket naming the closed one (which stays closed); the
//! resolve lands during a 30 s outage and arrives after it, once; rotated
//! keys park the next event with the reason. Secrets never show.
//!
//! The connector is also driven in-process (health, mapping, a tenant
//! without a company), and the fake's own checks are tested against bad
//! requests.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::fake::Fake;
use common::vendors::connectwise::{self as cw, ConnectWise};
use common::{Backend, Collector, Store, eventually, on_each_backend};
use serde_json::Value;

const COMPANY: &str = "acme_msp";
const PUBLIC: &str = "e2e-public-key";
const PRIVATE: &str = "e2e-cw-private-9f3ac1";
const CLIENT_ID: &str = "e2e-cw-client-5b1c77d2";
/// The closed status the sink sets, on board 1 ("Help Desk") of the fake.
const CLOSED: i64 = 13;

fn fake_site() -> ConnectWise {
    ConnectWise::new(COMPANY, PUBLIC, PRIVATE, CLIENT_ID)
}

fn sink_table(url: &str, private_key: &str) -> String {
    format!(
        "[[sinks.connectwise]]\nname = \"cw\"\nurl = \"{url}\"\ncompany_id = \"{COMPANY}\"\n\
         public_key = \"{PUBLIC}\"\nprivate_key = {private_key}\nclient_id = \"{CLIENT_ID}\"\n\
         board = \"Help Desk\"\nclosed_status = \"Closed (resolved)\"\npoll_secs = 1\n\
         timeout_ms = 2000\nretry_initial_ms = 100\nretry_max_ms = 1000\n\
         companies.default = \"AcmeCorp\"\ncompanies.globex = \"Globex\"\nboards.globex = \"Servers\"\n"
    )
}

fn collector_config(data: &Path, key_file: &Path, url: &str) -> String {
    format!(
        "data_dir = {data:?}\n[grpc]\nlisten_addr = \"127.0.0.1:0\"\n[http]\nlisten_addr = \"127.0.0.1:0\"\n\
         [tickets]\nstill_failing_after_mins = 0.05\n{}",
        sink_table(url, &format!("{{ file = {key_file:?} }}"))
    )
}

/// `sink_links` rows of a ticket: (external_id, url, closed_by), oldest
/// first, read with sqlx on either backend (the API does not show links).
async fn links(store: &Store, ticket_id: i64) -> Vec<(String, Option<String>, Option<String>)> {
    use sqlx::ConnectOptions as _;
    use sqlx::Connection as _;
    const QUERY: &str =
        "SELECT external_id, url, closed_by FROM sink_links WHERE ticket_id = $1 ORDER BY id";
    match store {
        Store::Sqlite(db) => {
            let mut c = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(db)
                .busy_timeout(Duration::from_secs(10))
                .connect()
                .await
                .expect("open sqlite");
            let rows = sqlx::query_as(QUERY)
                .bind(ticket_id)
                .fetch_all(&mut c)
                .await;
            let _ = c.close().await;
            rows.expect("read sink_links")
        }
        Store::Postgres(url) => {
            let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
            let rows = sqlx::query_as(QUERY)
                .bind(ticket_id)
                .fetch_all(&mut c)
                .await;
            let _ = c.close().await;
            rows.expect("read sink_links")
        }
    }
}

/// GETs an API path, keeping the answer for the secrets check.
async fn api(c: &Collector, seen: &mut Vec<String>, path: &str) -> Value {
    let v = c.get(path).await;
    seen.push(v.to_string());
    v
}

fn cw_entries(outbox: &Value) -> Vec<Value> {
    outbox
        .as_array()
        .expect("outbox list")
        .iter()
        .filter(|e| e["sink"] == "cw")
        .cloned()
        .collect()
}

/// Write requests the fake accepted, oldest first.
fn writes(fake: &Fake<ConnectWise>) -> Vec<common::fake::Request> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method != axum::http::Method::GET && (200..300).contains(&r.status))
        .collect()
}

on_each_backend!(connectwise_ticket_follows_the_forewarn_ticket_both_ways);
async fn connectwise_ticket_follows_the_forewarn_ticket_both_ways(backend: Backend) {
    let fake = Fake::start(fake_site()).await;
    let site = fake.vendor();
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("cw.key");
    std::fs::write(&key_file, format!("{PRIVATE}\n")).expect("key file");
    let config = dir.path().join("collector.toml");
    let text = collector_config(&dir.path().join("data"), &key_file, &fake.url());
    std::fs::write(&config, text).expect("config");
    let collector = Collector::start_with_on(backend, dir, config);
    let mut seen = Vec::new();

    let host = common::disk_host::DiskHost::start(&collector, "default").await;
    let item = host.item.clone();
    let fill = || host.fill();
    let drain = || host.drain();

    // --- A fault: a ticket on the mapped board, company and priority. ---
    fill();
    let t1 = eventually(Duration::from_secs(20), "a ConnectWise ticket", || async {
        site.tickets().into_iter().next()
    })
    .await;
    let outbox = api(&collector, &mut seen, "/api/v1/outbox").await;
    let opened = cw_entries(&outbox)
        .into_iter()
        .find(|e| e["event"] == "opened")
        .expect("the opened event in the outbox");
    let id = opened["ticket_id"].as_i64().expect("ticket id");
    let ticket = api(&collector, &mut seen, &format!("/api/v1/tickets/{id}")).await;
    let prio = ticket["priority"].as_str().expect("priority");
    let want_prio = match prio {
        "P1" => 15,
        "P2" => 8,
        "P3" => 4,
        _ => 7,
    };
    assert_eq!(
        (t1.board, t1.company, t1.priority),
        (1, 250, Some(want_prio))
    );
    assert_eq!(t1.external_xref, opened["key"].as_str().expect("key"));
    assert!(
        t1.summary.starts_with("CRIT [P") && t1.summary.contains(&item),
        "{}",
        t1.summary
    );
    assert!(
        t1.initial_description.contains(&format!("/tickets/{id}"))
            && t1.initial_description.contains("Tenant:   default"),
        "{}",
        t1.initial_description
    );
    let stored = eventually(Duration::from_secs(10), "the link stored", || async {
        let l = links(&collector.store, id).await;
        (!l.is_empty()).then_some(l)
    })
    .await;
    assert_eq!(stored[0].0, t1.id.to_string());
    let url = stored[0].1.clone().expect("link url");
    assert!(
        url.contains(&format!("service_recid={}", t1.id)) && url.contains("companyName=acme_msp"),
        "{url}"
    );

    // --- Acknowledged through the API: a note. ---
    let ack = reqwest::Client::new()
        .post(format!(
            "http://{}/api/v1/tickets/{id}/acknowledge",
            collector.http
        ))
        .bearer_auth(&collector.api_key)
        .send()
        .await
        .expect("acknowledge");
    assert_eq!(ack.status().as_u16(), 200);
    let note = eventually(Duration::from_secs(10), "the acknowledge note", || async {
        site.ticket(t1.id)?.notes.into_iter().next()
    })
    .await;
    assert!(
        note.text.starts_with("Forewarn: acknowledged by"),
        "{}",
        note.text
    );
    assert!(note.detail && !note.internal && !note.resolution);

    // --- A technician closes it in ConnectWise; the disk still fails. ---
    site.close_as(t1.id, "jdoe");
    let detail = eventually(
        Duration::from_secs(10),
        "closed_remotely on the timeline",
        || async {
            let t = collector.get(&format!("/api/v1/tickets/{id}")).await;
            t["events"].as_array()?.iter().find_map(|e| {
                (e["kind"] == "closed_remotely")
                    .then(|| e["detail"].as_str().unwrap_or("").to_string())
            })
        },
    )
    .await;
    assert!(
        detail.contains("jdoe") && detail.contains(&t1.id.to_string()),
        "{detail}"
    );
    let t2 = eventually(
        Duration::from_secs(20),
        "a new ConnectWise ticket",
        || async { site.tickets().into_iter().find(|t| t.id != t1.id) },
    )
    .await;
    assert!(
        t2.initial_description
            .contains(&format!("ConnectWise ticket {} was closed by jdoe", t1.id))
            && t2.initial_description.contains("not reopened"),
        "{}",
        t2.initial_description
    );
    assert_eq!((t2.board, t2.company), (1, 250));
    let old = site.ticket(t1.id).expect("t1");
    assert_eq!(
        (old.status, old.closed_by.as_deref()),
        (CLOSED, Some("jdoe"))
    );
    assert_eq!(old.notes.len(), 1, "nothing was added to the closed ticket");
    let timeline = api(&collector, &mut seen, &format!("/api/v1/tickets/{id}")).await;
    assert_eq!(timeline["state"], "open", "the Forewarn ticket stays open");

    // --- The resolve happens during a 30 s outage. ---
    fake.set_down(true);
    let outage_end = Instant::now() + Duration::from_secs(30);
    drain();
    eventually(Duration::from_secs(20), "the ticket to resolve", || async {
        (collector.get(&format!("/api/v1/tickets/{id}")).await["state"] == "resolved").then_some(())
    })
    .await;
    let retried = eventually(Duration::from_secs(20), "the resolve retried", || async {
        let p = collector.get("/api/v1/outbox?state=pending").await;
        cw_entries(&p).into_iter().find(|e| {
            e["event"] == "resolved"
                && e["attempts"].as_u64() >= Some(2)
                && e["last_error"].as_str().is_some_and(|s| s.contains("503"))
        })
    })
    .await;
    seen.push(retried.to_string());
    // The outage's length is the scenario, not a wait for a result.
    tokio::time::sleep_until(outage_end.into()).await;
    let t2_down = site.ticket(t2.id).expect("t2");
    assert!(t2_down.notes.is_empty() && t2_down.closed_by.is_none());
    fake.set_down(false);
    let closed = eventually(
        Duration::from_secs(20),
        "t2 closed after the outage",
        || async {
            site.ticket(t2.id)
                .filter(|t| t.status == CLOSED && !t.notes.is_empty())
        },
    )
    .await;
    assert_eq!(closed.closed_by.as_deref(), Some(cw::API_MEMBER));
    eventually(Duration::from_secs(10), "an empty outbox", || async {
        let p = collector.get("/api/v1/outbox?state=pending").await;
        cw_entries(&p).is_empty().then_some(())
    })
    .await;
    // Nothing lost, nothing twice.
    let all = site.tickets();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(site.ticket(t1.id).expect("t1").notes.len(), 1);
    let t2_notes = site.ticket(t2.id).expect("t2").notes;
    assert_eq!(t2_notes.len(), 1, "{t2_notes:?}");
    assert!(t2_notes[0].resolution && t2_notes[0].text.starts_with("Forewarn: resolved"));
    let patches = writes(&fake)
        .iter()
        .filter(|r| r.method == axum::http::Method::PATCH)
        .count();
    assert!(patches >= 1);

    // --- Keys rotated in ConnectWise: the next event parks, saying why. ---
    site.rotate_private_key("rotated-elsewhere");
    fill();
    let parked = eventually(Duration::from_secs(20), "a parked event", || async {
        let f = collector.get("/api/v1/outbox?state=failed").await;
        cw_entries(&f).into_iter().next()
    })
    .await;
    seen.push(parked.to_string());
    let reason = parked["last_error"].as_str().expect("last_error");
    assert!(
        reason.contains("ConnectWise refused the credentials"),
        "{reason}"
    );
    assert_eq!(site.tickets().len(), 2, "nothing created with refused keys");

    // --- Secrets never show. ---
    seen.push(
        api(&collector, &mut Vec::new(), "/api/v1/outbox")
            .await
            .to_string(),
    );
    let log = collector.proc.log_text();
    for secret in [PRIVATE, CLIENT_ID] {
        assert!(!log.contains(secret), "{secret} in the collector log");
        assert!(
            !seen.iter().any(|s| s.contains(secret)),
            "{secret} in an API answer"
        );
    }
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());

    // --- Latency: event time → the fake receiving the request. ---
    let delivered = collector.get("/api/v1/outbox?state=delivered").await;
    let mut rows: Vec<Value> = cw_entries(&delivered)
        .into_iter()
        .filter(|e| e["attempts"] == 1)
        .collect();
    rows.sort_by_key(|e| e["id"].as_i64());
    let mut reqs = writes(&fake).into_iter().peekable();
    let mut lat = Vec::new();
    for e in rows {
        let at = common::sim::ms(&e["created_at"]);
        while let Some(r) = reqs.peek() {
            let r_at = r.at_ms;
            reqs.next();
            if r_at >= at {
                lat.push(r_at - at);
                break;
            }
        }
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    eprintln!(
        "LATENCY sink=connectwise p50_ms={} p99_ms={} n={}",
        pct(0.5),
        pct(0.99),
        lat.len()
    );
}

/// The connector in-process against the fake: the health check, the
/// mapping of a configured and of an unconfigured tenant, and a tenant
/// with no company parks naming the key.
#[tokio::test]
async fn health_mapping_and_an_unmapped_tenant() {
    use forewarn_collector::sinks::{Delivery, Outcome, SinkContext};

    let fake = Fake::start(fake_site()).await;
    let text = sink_table(&fake.url(), &format!("{PRIVATE:?}"));
    let cfg = forewarn_collector::Config::parse(&text).expect("config");
    let ctx = SinkContext {
        public_url: "http://fw.example".into(),
    };
    let sink = forewarn_collector::sinks::build_all(&cfg.sinks, &ctx)
        .expect("built")
        .remove(0)
        .sink;
    let ok = sink.health().await.expect("healthy");
    assert!(ok.contains("v2024.1") && ok.contains("2 board(s)"), "{ok}");
    let m = sink.mapping("globex").await.expect("mapping");
    assert!(m.contains("Globex = \"Globex Inc\" (id 251)"), "{m}");
    assert!(
        m.contains("board: \"Servers\" (id 2, from boards.globex)"),
        "{m}"
    );
    assert!(
        m.contains("\"Closed (resolved)\" (id 23)  <- closed_status"),
        "{m}"
    );
    assert!(
        m.contains("P1 -> \"Priority 1 - Emergency Response\" (id 15)"),
        "{m}"
    );
    let m = sink.mapping("acme").await.expect("mapping");
    assert!(
        m.contains("2 candidate(s)") && m.contains("AcmeLabs"),
        "{m}"
    );
    assert!(m.contains("companies.acme = \"AcmeCorp\""), "{m}");

    let mut n: forewarn_collector::sinks::Notification =
        serde_json::from_value(serde_json::json!({
            "status": "firing", "event": "opened", "event_id": 1, "detail": "d", "actor": "engine",
            "at": 0, "ticket_id": 9, "tenant_id": "t-9", "tenant_name": "initech", "site": "",
            "host": "h", "agent_id": "a", "check": "disk", "item": "/", "severity": "crit",
            "priority": "P2", "tier": 1, "flapping": false, "state": "open", "summary": "s",
            "opened_at": 0, "acknowledged_at": null, "acknowledged_by": null, "assignee": null,
            "resolved_at": null, "resolved_by": null
        }))
        .expect("notification");
    fn d(n: &forewarn_collector::sinks::Notification) -> Delivery<'_> {
        Delivery {
            notification: n,
            key: "k-1",
            attempts: 0,
            link: None,
        }
    }
    let out = sink.deliver(&d(&n)).await;
    assert!(
        matches!(&out, Outcome::Park(r) if r.contains("\"initech\"") && r.contains("companies.initech")),
        "{out:?}"
    );
    // Globex's tickets go to its own board.
    n.tenant_name = "globex".into();
    assert!(matches!(sink.deliver(&d(&n)).await, Outcome::Linked { .. }));
    let t = fake.vendor().tickets().remove(0);
    assert_eq!((t.board, t.company, t.priority), (2, 251, Some(8)));
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());

    // Wrong keys: the health check says so, without the key.
    let wrong = sink_table(&fake.url(), "\"wrong-key\"");
    let cfg = forewarn_collector::Config::parse(&wrong).expect("config");
    let bad = forewarn_collector::sinks::build_all(&cfg.sinks, &ctx).expect("built");
    let err = bad[0].sink.health().await.expect_err("refused");
    assert!(
        err.contains("credentials") && !err.contains("wrong-key"),
        "{err}"
    );
}

/// The fake refuses what ConnectWise would: each bad request is a recorded
/// violation or the vendor's own error answer.
#[tokio::test]
async fn the_fake_checks_requests_like_connectwise() {
    use base64::Engine as _;

    let fake = Fake::start(fake_site()).await;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{COMPANY}+{PUBLIC}:{PRIVATE}"))
    );
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{}{p}", fake.url(), cw::PREFIX);
    let good = |rb: reqwest::RequestBuilder| {
        rb.header("Authorization", &auth)
            .header("clientId", CLIENT_ID)
            .header(
                "Accept",
                "application/vnd.connectwise.com+json; version=2022.1",
            )
    };
    let status = |rb: reqwest::RequestBuilder| async move {
        let r = rb.send().await.expect("send");
        let s = r.status().as_u16();
        (s, r.json::<Value>().await.unwrap_or(Value::Null))
    };

    // Good: a lookup with conditions.
    let (s, v) =
        status(good(http.get(url("/service/boards"))).query(&[("conditions", "name=\"Servers\"")]))
            .await;
    assert_eq!((s, v[0]["id"].as_i64()), (200, Some(2)));
    // Wrong private key: 401, as ConnectWise answers (not a violation).
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{COMPANY}+{PUBLIC}:nope"))
    );
    let (s, _) = status(
        http.get(url("/system/info"))
            .header("Authorization", wrong)
            .header("clientId", CLIENT_ID)
            .header(
                "Accept",
                "application/vnd.connectwise.com+json; version=2022.1",
            ),
    )
    .await;
    assert_eq!(s, 401);
    assert!(fake.violations().is_empty());
    // Unknown company: ConnectWise's InvalidObject.
    let body = serde_json::json!({"summary": "x", "company": {"id": 9}, "board": {"id": 1}});
    let (s, v) = status(good(http.post(url("/service/tickets"))).json(&body)).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("InvalidObject")));
    assert_eq!(v["errors"][0]["field"], "company");
    // A note on an unknown ticket: 404.
    let note = serde_json::json!({"text": "t", "detailDescriptionFlag": true});
    let (s, _) = status(good(http.post(url("/service/tickets/999/notes"))).json(&note)).await;
    assert_eq!(s, 404);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());

    // Contract violations, one each.
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "clientId",
            http.get(url("/system/info"))
                .header("Authorization", &auth)
                .header(
                    "Accept",
                    "application/vnd.connectwise.com+json; version=2022.1",
                ),
        ),
        (
            "Accept",
            http.get(url("/system/info"))
                .header("Authorization", &auth)
                .header("clientId", CLIENT_ID)
                .header("Accept", "application/json"),
        ),
        (
            "conditions",
            good(http.get(url("/service/boards"))).query(&[("conditions", "name=Help Desk")]),
        ),
        (
            "summary",
            good(http.post(url("/service/tickets")))
                .json(&serde_json::json!({"summary": 5, "company": {"id": 250}})),
        ),
        (
            "id",
            good(http.post(url("/service/tickets")))
                .json(&serde_json::json!({"summary": "s", "company": {"id": "250"}})),
        ),
        (
            "Content-Type",
            good(http.post(url("/service/tickets"))).body("{}"),
        ),
        (
            "JSON Patch",
            good(http.patch(url("/service/tickets/1001")))
                .json(&serde_json::json!({"status": {"id": 13}})),
        ),
        (
            "pageSize",
            good(http.get(url("/service/priorities"))).query(&[("pageSize", "5000")]),
        ),
        (
            "start with",
            good(http.get(format!("{}/v2020/service/boards", fake.url()))),
        ),
    ];
    let n = cases.len();
    for (what, rb) in cases {
        let (s, _) = status(rb).await;
        assert_eq!(s, 400, "{what}");
    }
    let v = fake.violations();
    assert_eq!(v.len(), n, "{v:?}");
    for (problem, what) in v.iter().zip([
        "clientId",
        "Accept",
        "conditions",
        "summary",
        "id",
        "Content-Type",
        "JSON Patch",
        "pageSize",
        "start with",
    ]) {
        assert!(problem.contains(what), "{problem:?} should mention {what}");
    }
}

#[test]
fn conditions_parse_like_connectwise() {
    use cw::conditions::{Lit, Op, parse};
    let c = parse("id in (1001, 1002) and closedFlag=true").expect("valid");
    assert_eq!(c.len(), 2);
    assert_eq!(
        (c[0].op, &c[0].value),
        (Op::In, &Lit::List(vec![Lit::Int(1001), Lit::Int(1002)]))
    );
    assert_eq!(c[1].value, Lit::Bool(true));
    let c = parse("name like \"%acme%\"").expect("valid");
    assert!(c[0].matches(&serde_json::json!({"name": "ACME Corporation"})));
    let c = parse("externalXRef=\"a \\\"b\\\"\"").expect("escaped");
    assert_eq!(c[0].value, Lit::Str("a \"b\"".into()));
    assert!(
        parse("status/name = \"New\"").expect("nested")[0]
            .matches(&serde_json::json!({"status": {"name": "new"}}))
    );
    for bad in [
        "name=Help Desk",
        "name = \"x",
        "id in 5",
        "name ~ \"x\"",
        "a=1 or b=2",
        "",
    ] {
        assert!(parse(bad).is_err(), "{bad:?} should not parse");
    }
}

//! The Autotask sink (`[[sinks.autotask]]`) against its contract fake: the
//! fake's own checks, the connector alone (health, mapping, a lost create
//! found again, a validation error parked), and the whole scenario of
//! [`common::psa_e2e`] on a real collector and agent (SQLite).

mod common;

use common::fake::Fake;
use common::psa_e2e::{self, Expect};
use common::vendors::autotask::{Autotask, COMPANIES, ZONE};
use forewarn_collector::sinks::Outcome;
use serde_json::{Value, json};

const USER: &str = "api-fw@msp.example";
const SECRET: &str = "at-secret-Zk41qPw";
const CODE: &str = "AT-INTEGRATION-7QX2LM";

fn fake_vendor() -> Autotask {
    Autotask::new(USER, SECRET, CODE)
}

/// The sink's table: the secret from a file, the integration code inline.
fn sink_toml(fake: &str, secret_file: &std::path::Path, company: i64) -> String {
    format!(
        "[[sinks.autotask]]\nusername = {USER:?}\nsecret = {{ file = {secret_file:?} }}\nintegration_code = {CODE:?}\n\
         zone_lookup_url = \"{fake}/atservicesrest\"\nqueue = \"Monitoring Alert\"\ncompanies.default = {company}\n"
    )
}

fn secret_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let p = dir.path().join("autotask.secret");
    std::fs::write(&p, format!("{SECRET}\n")).expect("secret file");
    p
}

async fn call(
    fake: &str,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{fake}{path}"))
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

const AUTH: [(&str, &str); 4] = [
    ("ApiIntegrationCode", CODE),
    ("UserName", USER),
    ("Secret", SECRET),
    ("Content-Type", "application/json"),
];

fn ticket() -> Value {
    json!({"companyID": COMPANIES[0].0, "title": "t", "description": "d", "status": 1, "priority": 4,
           "queueID": 29_683_481, "dueDateTime": "2027-01-15T12:00:00Z", "ticketType": 5, "source": 8})
}

#[tokio::test]
async fn the_fake_holds_requests_to_the_documented_contract() {
    use reqwest::Method;
    let fake = Fake::start(fake_vendor()).await;
    let u = fake.url();
    let tickets = format!("{ZONE}Tickets");
    // Before the zone lookup: a violation.
    assert_eq!(
        call(&u, Method::POST, &tickets, &AUTH, ticket()).await.0,
        400
    );
    assert_eq!(fake.violations().len(), 1, "{:?}", fake.violations());
    let (s, zone) = call(
        &u,
        Method::GET,
        "/atservicesrest/v1.0/zoneInformation?user=api-fw%40msp.example",
        &[],
        Value::Null,
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        zone["url"]
            .as_str()
            .is_some_and(|z| z.ends_with("/zone5/atservicesrest/")),
        "{zone}"
    );
    // A missing header breaks the contract; a wrong secret is a 401.
    assert_eq!(
        call(&u, Method::POST, &tickets, &AUTH[1..], ticket())
            .await
            .0,
        400
    );
    let mut wrong = AUTH;
    wrong[2] = ("Secret", "nope");
    assert_eq!(
        call(&u, Method::POST, &tickets, &wrong, ticket()).await.0,
        401
    );
    // Required fields, their JSON types and ISO 8601 due dates.
    let mut t = ticket();
    t.as_object_mut().expect("object").remove("dueDateTime");
    assert_eq!(call(&u, Method::POST, &tickets, &AUTH, t).await.0, 400);
    let mut t = ticket();
    t["dueDateTime"] = json!("tomorrow");
    assert_eq!(call(&u, Method::POST, &tickets, &AUTH, t).await.0, 400);
    let mut t = ticket();
    t["priority"] = json!("4");
    assert_eq!(call(&u, Method::POST, &tickets, &AUTH, t).await.0, 400);
    assert_eq!(fake.violations().len(), 5, "{:?}", fake.violations());
    // An inactive picklist value: refused as Autotask does (500, errors).
    let mut t = ticket();
    t["priority"] = json!(6);
    let (s, v) = call(&u, Method::POST, &tickets, &AUTH, t).await;
    assert_eq!(
        (s, v["errors"].as_array().map(Vec::len)),
        (500, Some(1)),
        "{v}"
    );
    assert_eq!(fake.vendor().refusals().len(), 1);
    // A good create answers its id.
    let (s, v) = call(&u, Method::POST, &tickets, &AUTH, ticket()).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["itemId"].is_i64(), "{v}");
    assert_eq!(fake.violations().len(), 5);
}

#[tokio::test]
async fn the_connector_checks_maps_finds_lost_creates_and_parks_refusals() {
    let fake = Fake::start(fake_vendor()).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = secret_file(&dir);
    let sink = psa_e2e::build(&sink_toml(&fake.url(), &file, COMPANIES[0].0));
    let health = sink.health().await.expect("healthy");
    assert!(health.contains("zone5"), "{health}");
    let map = sink.mapping("Acme").await.expect("mapping");
    for want in [
        "174  Acme Corporation",
        "companies.Acme = 174",
        "queue = 29683481",
        "P1 = 4",
        "5 Complete",
    ] {
        assert!(map.contains(want), "{want:?} not in:\n{map}");
    }
    // A create whose answer got lost: the retry finds it instead of making another.
    let n = psa_e2e::notification("P1");
    let key = "0d6f1e2a-93b4-4c55-8e6f-7a8b9c0d1e2f";
    let first = psa_e2e::deliver(sink.as_ref(), &n, key, 0).await;
    let Outcome::Linked { external_id, .. } = first else {
        panic!("{first:?}")
    };
    let again = psa_e2e::deliver(sink.as_ref(), &n, key, 1).await;
    assert!(
        matches!(&again, Outcome::Linked { external_id: e, .. } if *e == external_id),
        "{again:?}"
    );
    let creates = fake
        .requests()
        .iter()
        .filter(|r| r.method == axum::http::Method::POST && r.path.ends_with("/Tickets"))
        .count();
    assert_eq!(creates, 1);
    // A company Autotask does not know: 500 {"errors"} parks, not retried.
    let bad = psa_e2e::build(&sink_toml(&fake.url(), &file, 999));
    let parked =
        psa_e2e::deliver(bad.as_ref(), &n, "1d6f1e2a-93b4-4c55-8e6f-7a8b9c0d1e2f", 0).await;
    assert!(
        matches!(&parked, Outcome::Park(r) if r.contains("companyID 999")),
        "{parked:?}"
    );
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autotask_end_to_end() {
    let fake = Fake::start(fake_vendor()).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = secret_file(&dir);
    let expect = Expect {
        company: COMPANIES[0].0,
        queue: "29683481".into(),
        // Critical, High, Medium, Low (the defaults) in the fake's picklist.
        priority: |p| {
            match p {
                "P1" => "4",
                "P2" => "1",
                "P3" => "2",
                _ => "3",
            }
            .to_string()
        },
        secrets: vec![SECRET.into(), CODE.into()],
    };
    psa_e2e::run(
        common::Backend::Sqlite,
        &fake,
        &sink_toml(&fake.url(), &file, COMPANIES[0].0),
        expect,
        |_| {},
    )
    .await;
}

//! The HaloPSA sink (`[[sinks.halopsa]]`) against its contract fake: the
//! fake's own checks, the connector alone (health, mapping, a lost create
//! found again, token refresh on 401), and the whole scenario of
//! [`common::psa_e2e`] on a real collector and agent (PostgreSQL).

mod common;

use common::fake::Fake;
use common::psa_e2e::{self, Expect};
use common::vendors::halopsa::{CLIENTS, HaloPsa, TEAMS};
use forewarn_collector::sinks::Outcome;
use serde_json::{Value, json};

const CLIENT_ID: &str = "forewarn-app";
const CLIENT_SECRET: &str = "halo-secret-Qm83vT";

fn sink_toml(fake: &str, secret_file: &std::path::Path) -> String {
    format!(
        "[[sinks.halopsa]]\nurl = {fake:?}\nclient_id = {CLIENT_ID:?}\nclient_secret = {{ file = {secret_file:?} }}\n\
         ticket_type_id = 31\nteam = {:?}\nclients.default = {}\n",
        TEAMS[1].1, CLIENTS[0].0
    )
}

fn secret_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let p = dir.path().join("halo.secret");
    std::fs::write(&p, format!("{CLIENT_SECRET}\n")).expect("secret file");
    p
}

async fn token(fake: &str, form: &str, content_type: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{fake}/auth/token"))
        .header("content-type", content_type)
        .body(form.to_string())
        .send()
        .await
        .expect("token");
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

async fn post(fake: &str, path: &str, bearer: &str, body: &Value) -> u16 {
    reqwest::Client::new()
        .post(format!("{fake}{path}"))
        .bearer_auth(bearer)
        .json(body)
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

const FORM: &str = "grant_type=client_credentials&client_id=forewarn-app&client_secret=halo-secret-Qm83vT&scope=all";
const FORM_TYPE: &str = "application/x-www-form-urlencoded";

#[tokio::test]
async fn the_fake_holds_requests_to_the_documented_contract() {
    let fake = Fake::start(HaloPsa::new(CLIENT_ID, CLIENT_SECRET, 3600)).await;
    let u = fake.url();
    // The token request is a form with grant_type=client_credentials.
    assert_eq!(
        token(
            &u,
            &json!({"grant_type": "client_credentials"}).to_string(),
            "application/json"
        )
        .await
        .0,
        400
    );
    assert_eq!(
        token(
            &u,
            &FORM.replace("client_credentials", "password"),
            FORM_TYPE
        )
        .await
        .0,
        400
    );
    assert_eq!(
        token(&u, &FORM.replace("Qm83vT", "wrong"), FORM_TYPE)
            .await
            .0,
        401
    );
    let (s, t) = token(&u, FORM, FORM_TYPE).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    let bearer = t["access_token"].as_str().expect("token").to_string();
    assert_eq!(fake.violations().len(), 2, "{:?}", fake.violations());
    let ticket = json!({"summary": "s", "details": "d", "client_id": 12, "tickettype_id": 31, "priority_id": 1});
    // A token it never issued breaks the contract; the body must be an array; ids are integers.
    assert_eq!(
        post(&u, "/api/Tickets", "made-up", &json!([ticket])).await,
        400
    );
    assert_eq!(post(&u, "/api/Tickets", &bearer, &ticket).await, 400);
    let mut string_id = ticket.clone();
    string_id["client_id"] = json!("12");
    assert_eq!(
        post(&u, "/api/Tickets", &bearer, &json!([string_id])).await,
        400
    );
    assert_eq!(
        post(
            &u,
            "/api/Actions",
            &bearer,
            &json!([{"ticket_id": "1", "note": "n", "outcome": "o"}])
        )
        .await,
        400
    );
    assert_eq!(fake.violations().len(), 6, "{:?}", fake.violations());
    // A good create; then an expired token is refused with 401.
    assert_eq!(
        post(&u, "/api/Tickets", &bearer, &json!([ticket])).await,
        201
    );
    fake.vendor().expire_tokens();
    assert_eq!(
        post(&u, "/api/Tickets", &bearer, &json!([ticket])).await,
        401
    );
    assert_eq!(fake.violations().len(), 6);
}

#[tokio::test]
async fn the_connector_checks_maps_finds_lost_creates_and_renews_tokens() {
    let fake = Fake::start(HaloPsa::new(CLIENT_ID, CLIENT_SECRET, 3600)).await;
    let dir = tempfile::tempdir().expect("dir");
    let sink = psa_e2e::build(&sink_toml(&fake.url(), &secret_file(&dir)));
    let health = sink.health().await.expect("healthy");
    assert!(health.contains("Monitoring Alert"), "{health}");
    let map = sink.mapping("acme").await.expect("mapping");
    for want in [
        "12 Acme Corporation",
        "clients.acme = 12",
        "5 Monitoring",
        "9 Closed",
        "closed_status_id = 9",
    ] {
        assert!(map.contains(want), "{want:?} not in:\n{map}");
    }
    let n = psa_e2e::notification("P2");
    let key = "4e5f6a7b-93b4-4c55-8e6f-7a8b9c0d1e2f";
    let first = psa_e2e::deliver(sink.as_ref(), &n, key, 0).await;
    let Outcome::Linked { external_id, url } = first else {
        panic!("{first:?}")
    };
    assert!(url.is_some_and(|u| u.ends_with(&format!("/tickets?id={external_id}"))));
    // Tokens revoked: one 401, a new token, the call made again — and the
    // lost create is found, not made twice.
    let issued = fake.vendor().issued();
    fake.vendor().expire_tokens();
    let again = psa_e2e::deliver(sink.as_ref(), &n, key, 1).await;
    assert!(
        matches!(&again, Outcome::Linked { external_id: e, .. } if *e == external_id),
        "{again:?}"
    );
    assert_eq!(fake.vendor().issued(), issued + 1);
    let creates = fake
        .requests()
        .iter()
        .filter(|r| r.method == axum::http::Method::POST && r.path == "/api/Tickets")
        .count();
    assert_eq!(creates, 1);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halopsa_end_to_end_on_postgres() {
    let fake = Fake::start(HaloPsa::new(CLIENT_ID, CLIENT_SECRET, 3600)).await;
    let dir = tempfile::tempdir().expect("dir");
    let expect = Expect {
        company: CLIENTS[0].0,
        queue: TEAMS[1].1.into(),
        priority: |p| p.trim_start_matches('P').to_string(),
        secrets: vec![CLIENT_SECRET.into()],
    };
    // Tokens revoked just before the acknowledge: its note needs a new one.
    psa_e2e::run(
        common::Backend::Postgres,
        &fake,
        &sink_toml(&fake.url(), &secret_file(&dir)),
        expect,
        HaloPsa::expire_tokens,
    )
    .await;
}

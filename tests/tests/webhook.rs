//! The webhook sink end to end: a real local HTTP receiver verifies the
//! HMAC signature of every request; a real collector (with a
//! `[[sinks.webhook]]`) and a real agent on a filling tmpfs produce the
//! events. Then the receiver goes down (503) while the ticket relapses, is
//! acknowledged and resolves, the collector restarts, the receiver comes
//! back — and gets every event exactly once, in order.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{Backend, Collector, eventually, on_each_backend};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

const SECRET: &str = "e2e-webhook-secret";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    key: String,
    event_header: String,
    body: Value,
    /// Answered 2xx (true) or 503 while "down" (false).
    accepted: bool,
}

/// A webhook receiver on 127.0.0.1:0 that checks every signature.
#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    bad: Arc<Mutex<Vec<String>>>,
    down: Arc<AtomicBool>,
}

impl Receiver {
    async fn start() -> (Self, SocketAddr) {
        let r = Receiver::default();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, addr)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("lock").clone()
    }

    /// Accepted requests about one ticket episode, in arrival order.
    fn accepted(&self, key: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.accepted && h.body["key"] == key)
            .collect()
    }
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let sig = header("x-forewarn-signature");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(&body);
    let valid = sig
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .is_some_and(|raw| mac.verify_slice(&raw).is_ok());
    let key = header("idempotency-key");
    if !valid || key.is_empty() || header("content-type") != "application/json" {
        r.bad
            .lock()
            .expect("lock")
            .push(format!("sig={sig:?} key={key:?}"));
        return StatusCode::UNAUTHORIZED;
    }
    let accepted = !r.down.load(Ordering::SeqCst);
    r.hits.lock().expect("lock").push(Hit {
        key,
        event_header: header("x-forewarn-event"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        accepted,
    });
    if accepted {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

fn collector_config(data: &Path, key_file: &Path, hook: SocketAddr) -> String {
    format!(
        "data_dir = {data:?}\n[grpc]\nlisten_addr = \"127.0.0.1:0\"\n[http]\nlisten_addr = \"127.0.0.1:0\"\n\
         [[sinks.webhook]]\nname = \"e2e\"\nurl = \"http://{hook}/hook\"\nsecret_file = {key_file:?}\n\
         timeout_ms = 2000\nretry_initial_ms = 100\nretry_max_ms = 400\n"
    )
}

async fn ticket_state(c: &Collector, id: i64) -> Value {
    c.get(&format!("/api/v1/tickets/{id}")).await
}

on_each_backend!(webhook_gets_every_ticket_event_signed_once_and_in_order);
async fn webhook_gets_every_ticket_event_signed_once_and_in_order(backend: Backend) {
    let (receiver, hook) = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("hook.key");
    std::fs::write(&key_file, format!("{SECRET}\n")).expect("key file");
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        collector_config(&dir.path().join("data"), &key_file, hook),
    )
    .expect("config");
    let collector = Collector::start_with_on(backend, dir, config);

    let host = common::disk_host::DiskHost::start(&collector, "default").await;
    let (item, agent_id) = (host.item.clone(), host.agent_id.clone());
    let fill = || host.fill();
    let drain = || host.drain();

    // --- Up: firing, then resolved, signed, one episode key. ---
    fill();
    let firing = eventually(Duration::from_secs(15), "a firing webhook", || async {
        receiver.hits().into_iter().find(|h| {
            h.accepted
                && h.body["agent_id"] == agent_id.as_str()
                && h.body["check"] == "disk"
                && h.body["item"] == item.as_str()
        })
    })
    .await;
    let b = &firing.body;
    let id = b["ticket_id"].as_i64().expect("ticket_id");
    let key = format!("forewarn-{id}");
    assert_eq!(b["status"], "firing", "{b}");
    assert_eq!(b["event"], "opened");
    assert_eq!(firing.event_header, "opened");
    assert_eq!(b["key"], key.as_str());
    assert_eq!(b["tenant"]["name"], "default");
    assert!(b["tenant"]["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(b["check"], "disk");
    assert_eq!(b["item"], item.as_str());
    assert_eq!(b["severity"], "crit");
    assert_eq!(b["tier"], 1);
    assert!(b["priority"].as_str().is_some_and(|p| p.starts_with('P')));
    assert!(b["opened_at"].is_string() && b["at"].is_string());
    assert!(b["resolved_at"].is_null());
    assert_eq!(
        b["link"],
        format!("http://{}/api/v1/tickets/{id}", collector.http).as_str()
    );
    assert!(b["summary"].as_str().is_some_and(|s| s.contains(&item)));

    drain();
    eventually(Duration::from_secs(15), "a resolved webhook", || async {
        let hits = receiver.accepted(&key);
        (hits.len() >= 2).then_some(())
    })
    .await;
    let hits = receiver.accepted(&key);
    assert_eq!(hits[1].body["status"], "resolved");
    assert!(hits[1].body["resolved_at"].is_string());
    assert_eq!(hits[1].body["key"], key.as_str(), "same episode, same key");

    // --- Down: the ticket relapses (same episode), is acknowledged and
    // resolves while every delivery is refused with 503. ---
    receiver.down.store(true, Ordering::SeqCst);
    fill();
    eventually(Duration::from_secs(15), "the ticket to reopen", || async {
        (ticket_state(&collector, id).await["state"] == "open").then_some(())
    })
    .await;
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
    drain();
    eventually(
        Duration::from_secs(15),
        "the ticket to resolve again",
        || async { (ticket_state(&collector, id).await["state"] == "resolved").then_some(()) },
    )
    .await;
    // The receiver is being retried, and the outbox holds the three events.
    eventually(Duration::from_secs(15), "refused attempts", || async {
        (receiver.hits().iter().filter(|h| !h.accepted).count() >= 2).then_some(())
    })
    .await;
    let pending = collector.get("/api/v1/outbox?state=pending").await;
    let pending: Vec<&Value> = pending
        .as_array()
        .expect("outbox list")
        .iter()
        .filter(|e| e["ticket_id"] == id)
        .collect();
    assert_eq!(pending.len(), 3, "{pending:?}");
    assert!(
        pending.iter().any(|e| e["attempts"].as_u64() >= Some(1)
            && e["last_error"].as_str().is_some_and(|s| s.contains("503"))),
        "{pending:?}"
    );
    assert_eq!(
        receiver.accepted(&key).len(),
        2,
        "nothing got through while down"
    );

    // A restart in the middle loses nothing: the outbox is in the database.
    let collector = collector.restart();
    let still = collector.get("/api/v1/outbox?state=pending").await;
    assert_eq!(
        still
            .as_array()
            .expect("list")
            .iter()
            .filter(|e| e["ticket_id"] == id)
            .count(),
        3,
        "{still}"
    );

    // --- Up again: everything arrives, once each, in order. ---
    receiver.down.store(false, Ordering::SeqCst);
    eventually(Duration::from_secs(20), "the backlog to arrive", || async {
        (receiver.accepted(&key).len() >= 5).then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "an empty outbox", || async {
        let p = collector.get("/api/v1/outbox?state=pending").await;
        p.as_array().is_some_and(Vec::is_empty).then_some(())
    })
    .await;
    // Nothing is pending, so nothing more can arrive: the count is final.
    let hits = receiver.accepted(&key);
    let events: Vec<(&str, &str)> = hits
        .iter()
        .map(|h| {
            (
                h.body["event"].as_str().unwrap_or_default(),
                h.body["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("opened", "firing"),
            ("resolved", "resolved"),
            ("reopened", "firing"),
            ("acknowledged", "acknowledged"),
            ("resolved", "resolved"),
        ]
    );
    let keys: std::collections::BTreeSet<&str> = hits.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(
        keys.len(),
        hits.len(),
        "an Idempotency-Key was delivered twice"
    );
    let ids: Vec<i64> = hits
        .iter()
        .filter_map(|h| h.body["event_id"].as_i64())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "out of order: {ids:?}");
    assert!(hits[3].body["acknowledged_at"].is_string());
    // Every refused attempt was a retry of a delivery that later arrived
    // under the same key.
    for refused in receiver.hits().iter().filter(|h| !h.accepted) {
        assert!(keys.contains(refused.key.as_str()), "{refused:?}");
    }
    let bad = receiver.bad.lock().expect("lock").clone();
    assert!(bad.is_empty(), "requests with a bad signature: {bad:?}");
    let delivered = collector.get("/api/v1/outbox?state=delivered").await;
    assert_eq!(
        delivered
            .as_array()
            .expect("list")
            .iter()
            .filter(|e| e["ticket_id"] == id)
            .count(),
        5
    );
}

//! The operator surface of the sinks end to end: a real collector with a
//! webhook sink pointing at a local receiver that first answers 401 (its
//! key was rotated), and a real agent on a filling tmpfs. The delivery is
//! parked with a reason about the credentials, and shows in the outbox,
//! in `GET /api/v1/sinks` and in `/metrics`; an operator tests the sink,
//! fixes the receiver and sends the delivery again, which arrives exactly
//! once. The `sink` CLI lists, tests (exit codes) and refuses unknown or
//! broken sinks clearly. No secret appears in a log line or an answer.

mod common;

use std::path::Path;
use std::time::Duration;

use common::fake::{Answer, Fake, Request, Vendor};
use common::{AgentHome, Collector, Tmpfs, enroll_ok, eventually};
use serde_json::{Value, json};

const SECRET: &str = "sink-ops-e2e-secret-5b7c0d";
const SINK: &str = "ops-hook";
/// An environment variable no test sets: a sink reading its secret from
/// it cannot be built.
const UNSET_ENV: &str = "FOREWARN_E2E_SINK_OPS_UNSET";

/// The webhook contract: a signed JSON POST with an idempotency key.
struct Hook;

impl Vendor for Hook {
    fn answer(&self, req: &Request) -> Result<Answer, String> {
        if req.method != "POST" || req.path != "/hook" {
            return Err(format!("unexpected {} {}", req.method, req.path));
        }
        if req.header("idempotency-key").is_empty() {
            return Err("no Idempotency-Key".into());
        }
        if !req.header("x-forewarn-signature").starts_with("sha256=") {
            return Err("no X-Forewarn-Signature".into());
        }
        if req.json().is_null() {
            return Err("body is not JSON".into());
        }
        Ok(Answer::text(204, ""))
    }
}

fn sink_config(url: &str) -> String {
    format!(
        "[[sinks.webhook]]\nname = \"{SINK}\"\nurl = \"{url}/hook\"\nsecret = \"{SECRET}\"\n\
         timeout_ms = 2000\nretry_initial_ms = 100\nretry_max_ms = 400\n"
    )
}

fn agent_config(mount: &Path) -> String {
    format!(
        "[checks.disk]\nmounts = [{mount:?}]\nwarn_used_percent = 70.0\ncrit_used_percent = 90.0\n\
         [checks.cpu]\nenabled = false\n[checks.memory]\nenabled = false\n"
    )
}

async fn post(c: &Collector, path: &str, body: &Value) -> (u16, Value, String) {
    let resp = reqwest::Client::new()
        .post(format!("http://{}{path}", c.http))
        .bearer_auth(&c.api_key)
        .json(body)
        .send()
        .await
        .expect("post");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

/// The value of the one `/metrics` line that starts with `prefix` and
/// contains every `labels` part; 0 when absent.
fn metric(text: &str, prefix: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix) && labels.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_delivery_is_seen_tested_and_sent_again_exactly_once() {
    let fake = Fake::start(Hook).await;
    fake.set_status(Some(401));
    let c = Collector::start_with_config(&sink_config(&fake.url()));
    let mut answers = Vec::new();

    let mnt = Tmpfs::mount("8m");
    let item = mnt.path().to_str().expect("utf-8 path").to_string();
    let home = AgentHome::new(&agent_config(mnt.path()));
    let agent_id = enroll_ok(&c, &home, "default");
    let _agent = home.run();
    eventually(Duration::from_secs(30), "agent online", || async {
        let v = c.get(&format!("/api/v1/agents/{agent_id}")).await;
        v["checks"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|k| k["item"] == item.as_str()))
            .then_some(())
    })
    .await;
    std::fs::write(
        mnt.path().join("fill.bin"),
        vec![0xA5u8; 7 * 1024 * 1024 + 512 * 1024],
    )
    .expect("fill");

    // --- Refused: parked with its reason, visible everywhere. ---
    let parked = eventually(Duration::from_secs(30), "a parked delivery", || async {
        let v = c.get("/api/v1/outbox?state=failed").await;
        v.as_array()?.first().cloned()
    })
    .await;
    answers.push(parked.to_string());
    let row = parked["id"].as_i64().expect("row id");
    let ticket = parked["ticket_id"].as_i64().expect("ticket id");
    assert_eq!(parked["sink"], SINK);
    assert_eq!(parked["state"], "failed");
    assert_eq!(parked["event"], "opened");
    let reason = parked["last_error"].as_str().expect("a reason");
    assert!(
        reason.contains("401") && reason.contains("credentials"),
        "{reason}"
    );
    let refused: Vec<Request> = fake.requests();
    assert_eq!(refused.len(), 1, "a parked delivery is not retried");
    assert_eq!(refused[0].status, 401);
    let key = refused[0].header("idempotency-key").to_string();
    let created = forewarn_collector::domain::rfc3339::parse(
        parked["created_at"].as_str().expect("created_at"),
    )
    .expect("an RFC 3339 time");
    eprintln!(
        "LATENCY sink={SINK} p50_ms={0} p99_ms={0} n=1 (ticket event to the first, refused, attempt)",
        refused[0].at_ms - created
    );

    let sinks = c.get("/api/v1/sinks").await;
    answers.push(sinks.to_string());
    let s = &sinks.as_array().expect("sink list")[0];
    assert_eq!(
        (s["name"].as_str(), s["kind"].as_str()),
        (Some(SINK), Some("webhook"))
    );
    assert_eq!(s["tenants"], json!([]));
    assert_eq!(s["backlog"]["failed"], 1, "{s}");
    assert_eq!(s["backlog"]["pending"], 0, "{s}");
    assert!(s["backlog"]["oldest_pending_at"].is_null(), "{s}");
    // The start-up check was recorded.
    assert_eq!(s["health"]["ok"], true, "{s}");
    assert!(s["health"]["checked_at"].is_string(), "{s}");
    assert!(
        s.get("url").is_none() && s.get("secret").is_none(),
        "config keys leak: {s}"
    );

    let m = c.metrics_text().await;
    let sink_label = format!("sink=\"{SINK}\"");
    assert_eq!(
        metric(&m, "forewarn_outbox_failed{", &[&sink_label]),
        1.0,
        "{m}"
    );
    assert_eq!(metric(&m, "forewarn_outbox_pending{", &[&sink_label]), 0.0);
    let parked_series = [
        "outcome=\"parked\"",
        "kind=\"webhook\"",
        sink_label.as_str(),
    ];
    assert_eq!(
        metric(&m, "forewarn_sink_deliveries_total{", &parked_series),
        1.0,
        "{m}"
    );

    // The dashboard's Sinks page, for an msp-admin, JavaScript off: the
    // sink, its backlog and the parked delivery with a form to send it again.
    let password = c.operator("ada", "msp-admin", &[]).await;
    let cookie = c.sign_in("ada", &password).await;
    let (status, html) = c.page(&cookie, "/sinks").await;
    answers.push(html.clone());
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&format!("data-sink=\"{SINK}\"")), "{html}");
    assert!(
        html.contains(&format!("action=\"/sinks/{SINK}/test\"")),
        "{html}"
    );
    assert!(html.contains(&format!("data-delivery=\"{row}\"")), "{html}");
    assert!(
        html.contains(&format!("action=\"/sinks/retry/{row}\"")),
        "{html}"
    );
    assert!(
        html.contains("credentials") && html.contains("parked"),
        "{html}"
    );
    assert!(html.contains("name=\"_csrf\""), "{html}");
    assert!(html.contains("href=\"/sinks\""), "the nav links the page");

    // --- Tested now; an unknown sink is a clear 404. ---
    let (status, health, text) = post(&c, &format!("/api/v1/sinks/{SINK}/test"), &json!({})).await;
    answers.push(text);
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["ok"], true);
    assert!(health["message"].is_string());
    let (status, err, _) = post(&c, "/api/v1/sinks/nope/test", &json!({})).await;
    assert_eq!(status, 404, "{err}");
    assert!(
        err["error"].as_str().is_some_and(|e| e.contains(SINK)),
        "{err}"
    );

    // --- Fixed, sent again: arrives once. ---
    fake.set_status(None);
    let (status, v, _) = post(&c, &format!("/api/v1/outbox/{row}/retry"), &json!({})).await;
    assert_eq!((status, &v), (200, &json!({"requeued": 1})));
    let delivered = eventually(Duration::from_secs(15), "the delivery", || async {
        let v = c.get("/api/v1/outbox?state=delivered").await;
        v.as_array()?.iter().find(|e| e["id"] == row).cloned()
    })
    .await;
    assert_eq!(delivered["attempts"], 2, "{delivered}");
    let accepted: Vec<Request> = fake
        .requests()
        .into_iter()
        .filter(|r| r.status == 204)
        .collect();
    assert_eq!(accepted.len(), 1, "delivered exactly once");
    assert_eq!(accepted[0].header("idempotency-key"), key, "the same key");
    assert_eq!(accepted[0].json()["ticket_id"], ticket);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    // Nothing left to send again.
    let (status, v, _) = post(&c, &format!("/api/v1/outbox/{row}/retry"), &json!({})).await;
    assert_eq!(status, 409, "{v}");
    let (status, v, _) = post(&c, "/api/v1/outbox/retry", &json!({"sink": SINK})).await;
    assert_eq!((status, &v), (200, &json!({"requeued": 0})));
    let (status, v, _) = post(&c, "/api/v1/outbox/retry", &json!({"sink": "nope"})).await;
    assert_eq!(status, 404, "{v}");
    // Audited with the actor.
    let audit = c.get("/api/v1/audit").await;
    let requeued: Vec<&Value> = audit
        .as_array()
        .expect("audit")
        .iter()
        .filter(|e| e["action"] == "outbox.requeued")
        .collect();
    assert!(
        requeued
            .iter()
            .any(|e| e["actor"] == "key:e2e-admin"
                && e["target"] == format!("outbox/{row}").as_str()),
        "{audit}"
    );

    let m = c.metrics_text().await;
    assert_eq!(
        metric(&m, "forewarn_outbox_failed{", &[&sink_label]),
        0.0,
        "{m}"
    );
    let delivered_series = [
        "outcome=\"delivered\"",
        "kind=\"webhook\"",
        sink_label.as_str(),
    ];
    assert_eq!(
        metric(&m, "forewarn_sink_deliveries_total{", &delivered_series),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "forewarn_sink_deliveries_total{", &parked_series),
        1.0
    );

    // The ticket answers its links (a webhook keeps none).
    let t = c.get(&format!("/api/v1/tickets/{ticket}")).await;
    answers.push(t.to_string());
    assert_eq!(t["links"], json!([]), "{t}");

    // --- The CLI. ---
    let out = c.cli(&["sink", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains(SINK) && text.contains("webhook") && text.contains("failed=0"),
        "{text}"
    );
    let out = c.cli(&["sink", "test", SINK]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok"),
        "{out:?}"
    );
    let out = c.cli(&["sink", "test", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope") && err.contains(SINK), "{err}");
    let out = c.cli(&["sink", "map", SINK, "--tenant", "default"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no per-tenant mapping"),
        "{out:?}"
    );
    // A sink that cannot be built (its secret's variable is unset) fails
    // its test, naming the variable, not the other sinks'.
    let broken = c.dir.path().join("broken.toml");
    let base = std::fs::read_to_string(&c.config).expect("config");
    std::fs::write(
        &broken,
        format!("{base}\n[[sinks.webhook]]\nname = \"broken\"\nurl = \"{}/hook\"\nsecret = {{ env = \"{UNSET_ENV}\" }}\n", fake.url()),
    )
    .expect("broken config");
    let cli = |args: &[&str]| {
        std::process::Command::new(common::bin("forewarn-collector"))
            .arg("--config")
            .arg(&broken)
            .args(args)
            .env_remove(UNSET_ENV)
            .output()
            .expect("cli")
    };
    let out = cli(&["sink", "test", "broken"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(UNSET_ENV),
        "{out:?}"
    );
    assert_eq!(cli(&["sink", "test", SINK]).status.code(), Some(0));

    // --- No secret anywhere. ---
    let log = c.proc.log_text();
    assert!(
        !log.contains(SECRET),
        "the collector logged the webhook secret"
    );
    for a in &answers {
        assert!(!a.contains(SECRET), "an API answer holds the secret: {a}");
    }
}

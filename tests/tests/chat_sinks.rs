//! The PagerDuty, Slack and Teams sinks end to end, against contract fakes
//! (`common::vendors`): a real collector with all three (and a second
//! PagerDuty sink whose service refuses every event) and a real agent on a
//! filling tmpfs. Open → trigger + messages; acknowledge through the API →
//! acknowledge; recovery → resolve, all under one dedup key. Then every
//! receiver is down (503) while the ticket relapses: the event waits and
//! arrives once. The refused sink's deliveries are parked with PagerDuty's
//! reason. No secret reaches the log or the API.
//!
//! The fakes' own contract checks are unit-tested at the bottom against
//! bad requests, so a fake that accepted anything would fail here.

mod common;

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Method};
use common::fake::{Fake, Request, Vendor};
use common::vendors::{pagerduty::PagerDuty, slack::Slack, teams::Teams};
use common::{Backend, Collector, eventually, on_each_backend};
use serde_json::{Value, json};

const PD_KEY: &str = "e2ePdRoutingKey0123456789abcdefX";
const PD_REFUSED_KEY: &str = "e2eRefusedKey0123456789abcdefghY";
const SLACK_SECRET: &str = "slackWebhookS3cretE2E";
const TEAMS_FLOW: &str = "7f3e2e0flowid4242";
const TEAMS_SIG: &str = "teamsSigS3cretE2Eabc";

fn slack_path() -> String {
    format!("/services/T0E2E/B0E2E/{SLACK_SECRET}")
}

fn teams_path() -> String {
    format!("/workflows/{TEAMS_FLOW}/triggers/manual/paths/invoke")
}

fn teams_query() -> String {
    format!("api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={TEAMS_SIG}")
}

/// One request a fake got about the test's ticket.
#[derive(Debug, Clone)]
struct Seen {
    at_ms: i64,
    status: String,
    accepted: bool,
}

/// The status a request speaks of, if it is about ticket `id`.
fn about(sink: &str, r: &Request, id: i64) -> Option<String> {
    let v = r.json();
    let link = format!("/tickets/{id}");
    let status = match sink {
        "pd" | "pd-refused" => {
            if v["dedup_key"] != format!("forewarn-{id}").as_str() {
                return None;
            }
            match v["event_action"].as_str()? {
                "trigger" => "firing",
                "acknowledge" => "acknowledged",
                _ => "resolved",
            }
        }
        "slack" => {
            let button = v["blocks"].as_array()?.last()?["elements"][0]["url"].as_str()?;
            if !button.ends_with(&link) {
                return None;
            }
            match v["text"].as_str()?.split(' ').next()? {
                ":red_circle:" => "firing",
                ":large_yellow_circle:" => "acknowledged",
                _ => "resolved",
            }
        }
        _ => {
            let card = &v["attachments"][0]["content"];
            if !card["actions"][0]["url"].as_str()?.ends_with(&link) {
                return None;
            }
            match card["body"][0]["color"].as_str()? {
                "Attention" => "firing",
                "Warning" => "acknowledged",
                _ => "resolved",
            }
        }
    };
    Some(status.to_string())
}

fn seen<V: Vendor>(fake: &Fake<V>, sink: &str, id: i64) -> Vec<Seen> {
    fake.requests()
        .iter()
        .filter_map(|r| {
            Some(Seen {
                status: about(sink, r, id)?,
                at_ms: r.at_ms,
                accepted: (200..300).contains(&r.status),
            })
        })
        .collect()
}

fn accepted(s: &[Seen]) -> Vec<&str> {
    s.iter()
        .filter(|s| s.accepted)
        .map(|s| s.status.as_str())
        .collect()
}

/// The ticket's outbox rows for `sink`, oldest event first.
async fn rows(c: &Collector, sink: &str, id: i64) -> Vec<Value> {
    let all = c.get("/api/v1/outbox?state=all&limit=1000").await;
    let mut rows: Vec<Value> = all
        .as_array()
        .expect("outbox list")
        .iter()
        .filter(|e| e["sink"] == sink && e["ticket_id"] == id)
        .cloned()
        .collect();
    rows.sort_by_key(|e| e["event_id"].as_i64());
    rows
}

fn config(dir: &std::path::Path, pd: &str, refused: &str, slack: &str, teams: &str) -> String {
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text + "\n").expect("secret file");
        p
    };
    let pd_key = write("pd.key", PD_KEY.to_string());
    let slack_url = write("slack.url", format!("{slack}{}", slack_path()));
    let teams_url = write(
        "teams.url",
        format!("{teams}{}?{}", teams_path(), teams_query()),
    );
    let retry = "timeout_ms = 2000\nretry_initial_ms = 100\nretry_max_ms = 400\n";
    format!(
        "data_dir = {:?}\n[grpc]\nlisten_addr = \"127.0.0.1:0\"\n[http]\nlisten_addr = \"127.0.0.1:0\"\n\
         [[sinks.pagerduty]]\nname = \"pd\"\nrouting_key = {{ file = {pd_key:?} }}\nurl = \"{pd}/v2/enqueue\"\n{retry}\
         [[sinks.pagerduty]]\nname = \"pd-refused\"\nrouting_key = \"{PD_REFUSED_KEY}\"\nurl = \"{refused}/v2/enqueue\"\n{retry}\
         [[sinks.slack]]\nname = \"slack\"\nwebhook_url = {{ file = {slack_url:?} }}\n{retry}\
         [[sinks.teams]]\nname = \"teams\"\nwebhook_url = {{ file = {teams_url:?} }}\n{retry}",
        dir.join("data")
    )
}

/// `p`-th percentile (nearest rank) of sorted `v`.
fn percentile(v: &[i64], p: f64) -> i64 {
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

on_each_backend!(chat_and_paging_sinks_get_every_event_once);
async fn chat_and_paging_sinks_get_every_event_once(backend: Backend) {
    let pd = Fake::start(PagerDuty::new(PD_KEY)).await;
    let refused = Fake::start(PagerDuty::new(PD_REFUSED_KEY)).await;
    refused.vendor().refuse(true);
    let slack = Fake::start(Slack::new(&slack_path())).await;
    let teams = Fake::start(Teams::new(&teams_path(), TEAMS_SIG)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("collector.toml");
    let text = config(
        dir.path(),
        &pd.url(),
        &refused.url(),
        &slack.url(),
        &teams.url(),
    );
    std::fs::write(&cfg, text).expect("config");
    let collector = Collector::start_with_on(backend, dir, cfg);

    // The Slack health check at start probed the webhook with `{}`.
    eventually(
        Duration::from_secs(10),
        "slack healthy at start",
        || async {
            let log = collector.proc.log_text();
            log.lines()
                .any(|l| l.contains("ticket sink healthy") && l.contains("no_text"))
                .then_some(())
        },
    )
    .await;

    let host = common::disk_host::DiskHost::start(&collector, "default").await;
    let item = host.item.clone();
    let fill = || host.fill();
    let drain = || host.drain();

    // --- Open: a trigger, two messages. ---
    fill();
    let trigger = eventually(Duration::from_secs(20), "a PagerDuty trigger", || async {
        pd.requests().into_iter().find(|r| {
            r.status == 202 && r.json()["payload"]["custom_details"]["item"] == item.as_str()
        })
    })
    .await;
    let t = trigger.json();
    let key = t["dedup_key"].as_str().expect("dedup_key").to_string();
    let id: i64 = key
        .strip_prefix("forewarn-")
        .and_then(|n| n.parse().ok())
        .expect("forewarn-<ticket id>");
    assert_eq!(t["event_action"], "trigger");
    // The default map: P1 critical, P2 error, P3 warning, P4 info.
    let want = match t["payload"]["custom_details"]["priority"].as_str() {
        Some("P1") => "critical",
        Some("P2") => "error",
        Some("P3") => "warning",
        _ => "info",
    };
    assert_eq!(t["payload"]["severity"], want, "{t}");
    assert_eq!(t["payload"]["component"], "disk");
    assert_eq!(t["payload"]["custom_details"]["tenant"], "default");
    assert_eq!(t["client"], "Forewarn");
    let link = format!("http://{}/tickets/{id}", collector.http);
    assert_eq!(t["links"][0]["href"], link.as_str());

    let until = |status: &'static str, n: usize| {
        let (pd, slack, teams) = (&pd, &slack, &teams);
        async move {
            eventually(Duration::from_secs(20), status, || async {
                let count = |s: Vec<Seen>| {
                    s.iter()
                        .filter(|s| s.accepted && s.status == status)
                        .count()
                };
                (count(seen(pd, "pd", id)) >= n
                    && count(seen(slack, "slack", id)) >= n
                    && count(seen(teams, "teams", id)) >= n)
                    .then_some(())
            })
            .await;
        }
    };
    until("firing", 1).await;
    let msg = slack
        .requests()
        .into_iter()
        .find(|r| about("slack", r, id).is_some())
        .expect("slack message")
        .json();
    let fields = msg["blocks"][1]["fields"].to_string();
    assert!(fields.contains(&item) && fields.contains("crit"), "{msg}");
    let card = teams
        .requests()
        .into_iter()
        .find(|r| about("teams", r, id).is_some())
        .expect("teams card")
        .json();
    assert!(
        card["attachments"][0]["content"]["body"][1]["facts"]
            .to_string()
            .contains(&item)
    );

    // --- Acknowledge through the API, then recover. ---
    let (status, body) = collector
        .post(&format!("/api/v1/tickets/{id}/acknowledge"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    until("acknowledged", 1).await;
    drain();
    until("resolved", 1).await;

    // --- Every receiver down while the ticket relapses. ---
    pd.set_down(true);
    slack.set_down(true);
    teams.set_down(true);
    fill();
    eventually(
        Duration::from_secs(20),
        "repeated 503s on every sink",
        || async {
            // Retried, not just tried once: a stretch of outage.
            let refused_by = |s: Vec<Seen>| {
                s.iter()
                    .filter(|s| !s.accepted && s.status == "firing")
                    .count()
                    >= 2
            };
            (refused_by(seen(&pd, "pd", id))
                && refused_by(seen(&slack, "slack", id))
                && refused_by(seen(&teams, "teams", id)))
            .then_some(())
        },
    )
    .await;
    for (sink, got) in [
        ("pd", accepted(&seen(&pd, "pd", id)).len()),
        ("slack", accepted(&seen(&slack, "slack", id)).len()),
        ("teams", accepted(&seen(&teams, "teams", id)).len()),
    ] {
        let r = rows(&collector, sink, id).await;
        let last = r.last().expect("rows");
        assert_eq!(last["state"], "pending", "{sink}: {last}");
        assert!(
            last["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("503")),
            "{sink}: {last}"
        );
        assert_eq!(got, r.len() - 1, "{sink}: nothing got through while down");
    }
    pd.set_down(false);
    slack.set_down(false);
    teams.set_down(false);
    until("firing", 2).await;
    drain();
    until("resolved", 2).await;
    eventually(Duration::from_secs(15), "an empty outbox", || async {
        let p = collector.get("/api/v1/outbox?state=pending").await;
        p.as_array().is_some_and(Vec::is_empty).then_some(())
    })
    .await;

    // --- Exactly once: per sink, the accepted requests are the outbox
    // rows, one each, in event order. ---
    for (sink, s) in [
        ("pd", seen(&pd, "pd", id)),
        ("slack", seen(&slack, "slack", id)),
        ("teams", seen(&teams, "teams", id)),
    ] {
        let r = rows(&collector, sink, id).await;
        let want: Vec<&str> = r
            .iter()
            .map(|e| e["status"].as_str().expect("status"))
            .collect();
        assert!(r.iter().all(|e| e["state"] == "delivered"), "{sink}: {r:?}");
        assert_eq!(
            accepted(&s),
            want,
            "{sink}: each event exactly once, in order"
        );
        for w in ["firing", "acknowledged", "resolved"] {
            assert!(want.contains(&w), "{sink}: {want:?}");
        }
        let outage_rows = r
            .iter()
            .filter(|e| e["attempts"].as_u64() > Some(1))
            .count();
        assert!(outage_rows >= 1, "{sink}: the relapse was retried: {r:?}");
        // LATENCY: event (its outbox row, written with it) → the request
        // that was accepted, over the events delivered at the first try.
        let accepted_at: Vec<i64> = s.iter().filter(|s| s.accepted).map(|s| s.at_ms).collect();
        let mut lat: Vec<i64> = r
            .iter()
            .zip(&accepted_at)
            .filter(|(e, _)| e["attempts"] == 1)
            .map(|(e, at)| {
                let created = e["created_at"].as_str().expect("created_at");
                at - forewarn_collector::domain::rfc3339::parse(created).expect("rfc3339")
            })
            .collect();
        lat.sort_unstable();
        if !lat.is_empty() {
            eprintln!(
                "LATENCY sink={sink} p50_ms={} p99_ms={} n={}",
                percentile(&lat, 50.0),
                percentile(&lat, 99.0),
                lat.len()
            );
        }
    }
    // The agent watches one mount: every event PagerDuty got is this
    // episode's, under one dedup key.
    let dedup: std::collections::BTreeSet<String> = pd
        .requests()
        .iter()
        .map(|r| r.json()["dedup_key"].to_string())
        .collect();
    assert_eq!(
        dedup,
        [format!("{key:?}")].into(),
        "one dedup key for the episode"
    );

    // --- The refused sink: parked with PagerDuty's reason, never retried. ---
    let parked = rows(&collector, "pd-refused", id).await;
    assert!(parked.len() >= 5, "{parked:?}");
    for e in &parked {
        assert_eq!(e["state"], "failed", "{e}");
        assert_eq!(e["attempts"], 1, "parked, not retried: {e}");
        let err = e["last_error"].as_str().unwrap_or_default();
        assert!(
            err.contains("HTTP 400") && err.contains("Event object is invalid"),
            "{e}"
        );
    }
    assert_eq!(seen(&refused, "pd-refused", id).len(), parked.len());

    for (name, v) in [
        ("pd", pd.violations()),
        ("pd-refused", refused.violations()),
        ("slack", slack.violations()),
        ("teams", teams.violations()),
    ] {
        assert!(v.is_empty(), "{name} contract violations: {v:?}");
    }

    // --- No secret in the log or the API. ---
    let mut seen_text = collector.proc.log_text();
    for path in [
        "/api/v1/outbox?state=all&limit=1000".to_string(),
        format!("/api/v1/tickets/{id}"),
    ] {
        seen_text.push_str(&collector.get(&path).await.to_string());
    }
    for secret in [PD_KEY, PD_REFUSED_KEY, SLACK_SECRET, TEAMS_FLOW, TEAMS_SIG] {
        assert!(!seen_text.contains(secret), "secret {secret:?} leaked");
    }
}

// === the fakes' contract checks, against bad requests ===

fn post(path_and_query: &str, body: &Value) -> Request {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    Request {
        method: Method::POST,
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: body.to_string().into(),
        at_ms: 0,
        status: 0,
    }
}

fn good_trigger() -> Value {
    json!({"routing_key": PD_KEY, "event_action": "trigger", "dedup_key": "forewarn-1",
           "payload": {"summary": "disk full", "source": "db1", "severity": "critical",
                       "timestamp": "2027-01-15T08:00:00Z", "custom_details": {"a": "b"}},
           "links": [{"href": "https://fw/tickets/1", "text": "t"}], "client": "Forewarn"})
}

#[test]
fn the_pagerduty_fake_refuses_what_pagerduty_refuses() {
    let v = PagerDuty::new(PD_KEY);
    let ok = v
        .answer(&post("/v2/enqueue", &good_trigger()))
        .expect("valid");
    assert_eq!(ok.status, 202);
    assert!(ok.body.contains("\"status\":\"success\"") && ok.body.contains("forewarn-1"));
    let bad = |f: &dyn Fn(&mut Value)| {
        let mut b = good_trigger();
        f(&mut b);
        v.answer(&post("/v2/enqueue", &b)).expect_err("violation")
    };
    assert!(
        bad(&|b| b["routing_key"] = json!("someone-elses-key-0123456789abcd"))
            .contains("routing_key")
    );
    assert!(bad(&|b| b["event_action"] = json!("create")).contains("event_action"));
    assert!(bad(&|b| b["payload"]["severity"] = json!("crit")).contains("severity"));
    assert!(bad(&|b| b["payload"]["summary"] = json!("x".repeat(1025))).contains("summary"));
    assert!(
        bad(&|b| {
            b["payload"].as_object_mut().expect("o").remove("source");
        })
        .contains("source")
    );
    assert!(bad(&|b| b["payload"]["timestamp"] = json!("yesterday")).contains("timestamp"));
    assert!(bad(&|b| b["payload"]["sevirity"] = json!("info")).contains("sevirity"));
    assert!(bad(&|b| b["links"] = json!(["https://x"])).contains("links"));
    assert!(
        bad(&|b| {
            *b = json!({"routing_key": PD_KEY, "event_action": "resolve"});
        })
        .contains("dedup_key")
    );
    assert!(v.answer(&post("/v1/enqueue", &good_trigger())).is_err());
    v.refuse(true);
    let no = v
        .answer(&post("/v2/enqueue", &good_trigger()))
        .expect("answer");
    assert_eq!(no.status, 400);
    assert!(no.body.contains("invalid event"));
}

#[test]
fn the_slack_fake_refuses_what_slack_refuses() {
    let v = Slack::new(&slack_path());
    let good = json!({"text": "t", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "h"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "*a*\nb"}]},
        {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": "https://x"}]}]});
    let ok = v.answer(&post(&slack_path(), &good)).expect("valid");
    assert_eq!((ok.status, ok.body.as_str()), (200, "ok"));
    let empty = v.answer(&post(&slack_path(), &json!({}))).expect("answer");
    assert_eq!((empty.status, empty.body.as_str()), (400, "no_text"));
    let wrong = v
        .answer(&post("/services/T/B/guess", &good))
        .expect("answer");
    assert_eq!((wrong.status, wrong.body.as_str()), (404, "no_service"));
    let bad = |b: Value| v.answer(&post(&slack_path(), &b)).expect_err("violation");
    assert!(bad(json!({"text": 5})).contains("text"));
    assert!(bad(json!({"blocks": [{"type": "banner"}]})).contains("banner"));
    assert!(
        bad(json!({"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]}))
            .contains("mrkdwn")
    );
    assert!(bad(json!({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h".repeat(151)}}]})).contains("150"));
    assert!(bad(json!({"blocks": [{"type": "section"}]})).contains("section"));
    let many: Vec<Value> = (0..11)
        .map(|_| json!({"type": "mrkdwn", "text": "x"}))
        .collect();
    assert!(bad(json!({"blocks": [{"type": "section", "fields": many}]})).contains("1..10"));
    v.archive(true);
    let gone = v.answer(&post(&slack_path(), &good)).expect("answer");
    assert_eq!(
        (gone.status, gone.body.as_str()),
        (410, "channel_is_archived")
    );
}

#[test]
fn the_teams_fake_refuses_what_workflows_and_adaptive_cards_refuse() {
    let v = Teams::new(&teams_path(), TEAMS_SIG);
    let url = format!("{}?{}", teams_path(), teams_query());
    let good = json!({"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null,
        "content": {"type": "AdaptiveCard", "version": "1.4", "body": [
            {"type": "TextBlock", "text": "t", "weight": "bolder", "color": "Attention", "wrap": true},
            {"type": "FactSet", "facts": [{"title": "Host", "value": "db1"}]}],
            "actions": [{"type": "Action.OpenUrl", "title": "Open", "url": "https://x"}]}}]});
    assert_eq!(v.answer(&post(&url, &good)).expect("valid").status, 202);
    let forged = format!("{}?api-version=1&sig=guess", teams_path());
    assert_eq!(v.answer(&post(&forged, &good)).expect("answer").status, 401);
    let bad = |f: &dyn Fn(&mut Value)| {
        let mut b = good.clone();
        f(&mut b);
        v.answer(&post(&url, &b)).expect_err("violation")
    };
    let card = "/attachments/0/content";
    assert!(bad(&|b| *b = json!({"@type": "MessageCard", "text": "t"})).contains("MessageCard"));
    assert!(bad(&|b| b["type"] = json!("card")).contains("message"));
    assert!(
        bad(&|b| b["attachments"][0]["contentType"] = json!("application/json"))
            .contains("contentType")
    );
    assert!(
        bad(&|b| *b.pointer_mut(&format!("{card}/version")).expect("v") = json!("2.0"))
            .contains("version")
    );
    assert!(
        bad(&|b| *b.pointer_mut(&format!("{card}/type")).expect("t") = json!("Card"))
            .contains("AdaptiveCard")
    );
    assert!(
        bad(&|b| *b.pointer_mut(&format!("{card}/body/0/color")).expect("c") = json!("red"))
            .contains("color")
    );
    assert!(
        bad(&|b| *b
            .pointer_mut(&format!("{card}/body/1/facts/0/value"))
            .expect("f") = json!(5))
        .contains("value")
    );
    assert!(
        bad(
            &|b| *b.pointer_mut(&format!("{card}/actions/0/type")).expect("a") =
                json!("Action.Open")
        )
        .contains("Action.Open")
    );
    assert!(
        v.answer(&post(&teams_path(), &good)).is_err(),
        "no api-version"
    );
}

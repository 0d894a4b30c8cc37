//! Maintenance windows and silences end to end: a real agent's disk fills
//! on a tmpfs while its host is silenced through the API — the check goes
//! CRIT, no ticket opens; the silence is removed — exactly one ticket opens.
//! Plus the CLI (`maintenance`, `silence`, `tenant set-time-zone`) and the
//! API's tenant scoping and read-only viewers.

mod common;

use std::time::Duration;

use common::sim::ms;
use common::{
    AgentHome, Backend, Collector, Tmpfs, check_in, enroll_ok, eventually, on_each_backend,
};
use serde_json::{Value, json};

fn agent_config(mount: &std::path::Path) -> String {
    format!(
        "[checks.disk]\nmounts = [{mount:?}]\nwarn_used_percent = 70.0\ncrit_used_percent = 90.0\n\
         [checks.cpu]\nenabled = false\n[checks.memory]\nenabled = false\n"
    )
}

/// Sends `method path` with a bearer key and an optional JSON body.
async fn send(
    c: &Collector,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("http://{}{path}", c.http))
        .bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("http request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `DELETE path` with the MSP-wide key, which must succeed.
async fn remove_ok(c: &Collector, path: &str) {
    let (status, body) = send(c, &c.api_key, reqwest::Method::DELETE, path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
}

fn tickets_for(all: &Value, agent_id: &str) -> Vec<Value> {
    all.as_array()
        .expect("ticket list")
        .iter()
        .filter(|t| t["agent_id"] == agent_id)
        .cloned()
        .collect()
}

/// The agent's disk check on `item`, if reported.
async fn disk_check(c: &Collector, agent_id: &str, item: &str) -> Option<Value> {
    check_in(
        &c.get(&format!("/api/v1/agents/{agent_id}")).await,
        "disk",
        item,
    )
}

/// A running agent of `tenant` whose disk check watches its own 8 MiB
/// tmpfs, once that check reports OK.
struct DiskAgent {
    // Dropped in this order: the agent stops before its home and mount go.
    _run: common::Proc,
    _home: AgentHome,
    mnt: Tmpfs,
    /// The mount's path: the disk check's item.
    item: String,
    id: String,
}

impl DiskAgent {
    async fn start(c: &Collector, tenant: &str) -> Self {
        let mnt = Tmpfs::mount("8m");
        let item = mnt.path().to_str().expect("utf-8 path").to_string();
        let home = AgentHome::new(&agent_config(mnt.path()));
        let id = enroll_ok(c, &home, tenant);
        let run = home.run();
        eventually(Duration::from_secs(30), "an OK disk check", || async {
            disk_check(c, &id, &item)
                .await
                .filter(|c| c["state"] == "ok")
        })
        .await;
        Self {
            _run: run,
            _home: home,
            mnt,
            item,
            id,
        }
    }
}

/// Fills the disk on `mnt` past critical and waits until the agent reports
/// CRIT and then a heartbeat at least 3 s (3 sweeps) later by the
/// collector's clock: no ticket for the agent all along.
async fn crit_without_ticket(c: &Collector, mnt: &Tmpfs, agent_id: &str, item: &str, why: &str) {
    std::fs::write(
        mnt.path().join("fill.bin"),
        vec![0xA5u8; 7 * 1024 * 1024 + 512 * 1024],
    )
    .expect("fill tmpfs");
    let crit = eventually(
        Duration::from_secs(15),
        "the disk check to go CRIT",
        || async {
            disk_check(c, agent_id, item)
                .await
                .filter(|c| c["state"] == "crit")
        },
    )
    .await;
    let crit_at = ms(&crit["updated_at"]);
    eventually(Duration::from_secs(40), "a later heartbeat", || async {
        disk_check(c, agent_id, item)
            .await
            .filter(|c| c["state"] == "crit" && ms(&c["updated_at"]) >= crit_at + 3000)
    })
    .await;
    let all = c.get("/api/v1/tickets").await;
    assert!(tickets_for(&all, agent_id).is_empty(), "{why}: {all}");
}

/// Once the hold is gone, exactly one disk ticket opens for the problem,
/// and still one after the next heartbeat.
async fn one_ticket_after_the_hold(c: &Collector, agent_id: &str, item: &str) {
    let ticket = eventually(
        Duration::from_secs(10),
        "a ticket after the hold",
        || async {
            let open = c.get("/api/v1/tickets?state=open").await;
            tickets_for(&open, agent_id).first().cloned()
        },
    )
    .await;
    assert_eq!(ticket["check"], "disk");
    assert_eq!(ticket["item"], item);
    assert_eq!(ticket["severity"], "crit");
    let seen = ms(&ticket["opened_at"]);
    eventually(
        Duration::from_secs(40),
        "a heartbeat after the ticket",
        || async {
            disk_check(c, agent_id, item)
                .await
                .filter(|c| ms(&c["updated_at"]) > seen)
        },
    )
    .await;
    let all = c.get("/api/v1/tickets").await;
    assert_eq!(tickets_for(&all, agent_id).len(), 1, "{all}");
}

on_each_backend!(a_silenced_host_gets_no_ticket_until_the_silence_is_removed);
async fn a_silenced_host_gets_no_ticket_until_the_silence_is_removed(backend: Backend) {
    let collector = Collector::start_on(backend, "");
    let agent = DiskAgent::start(&collector, "default").await;
    let (mnt, item, agent_id) = (&agent.mnt, &agent.item, &agent.id);

    // Who may not silence this host: another tenant's key (its tenant or
    // host is simply not found) and a viewer.
    let out = collector.cli(&["tenant", "add", "other"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other = collector.cli_json(&[
        "api-key", "create", "--name", "other", "--tenant", "other", "--json",
    ]);
    let other = other["key"].as_str().expect("key").to_string();
    let viewer = collector.cli_json(&[
        "api-key", "create", "--name", "ro", "--role", "viewer", "--json",
    ]);
    let viewer = viewer["key"].as_str().expect("key").to_string();
    let silence =
        json!({"tenant": "default", "host": agent_id, "duration": "1h", "reason": "disk swap"});
    let post = reqwest::Method::POST;
    let (status, body) = send(
        &collector,
        &other,
        post.clone(),
        "/api/v1/silences",
        Some(silence.clone()),
    )
    .await;
    assert_eq!(status, 404, "another tenant: {body}");
    let (status, body) = send(
        &collector,
        &other,
        post.clone(),
        "/api/v1/silences",
        Some(json!({"host": agent_id, "duration": "1h", "reason": "x"})),
    )
    .await;
    assert_eq!(status, 404, "another tenant's host: {body}");
    let (status, body) = send(
        &collector,
        &viewer,
        post.clone(),
        "/api/v1/silences",
        Some(silence.clone()),
    )
    .await;
    assert_eq!(status, 403, "viewer: {body}");

    // The MSP-wide key silences the host.
    let (status, created) = send(
        &collector,
        &collector.api_key,
        post,
        "/api/v1/silences",
        Some(silence),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["active"], true, "{created}");
    assert_eq!(created["agent_id"], agent_id.as_str());
    assert_eq!(created["created_by"], "key:e2e-admin");
    let id = created["id"].as_i64().expect("id");
    let (_, others) = send(
        &collector,
        &other,
        reqwest::Method::GET,
        "/api/v1/silences",
        None,
    )
    .await;
    assert_eq!(others, json!([]), "not visible to another tenant");

    crit_without_ticket(&collector, mnt, agent_id, item, "silenced").await;

    // A window id is not a silence; removing the silence works once.
    let (status, _) = send(
        &collector,
        &collector.api_key,
        reqwest::Method::DELETE,
        &format!("/api/v1/maintenance/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = send(
        &collector,
        &other,
        reqwest::Method::DELETE,
        &format!("/api/v1/silences/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "another tenant cannot remove it: {body}");
    remove_ok(&collector, &format!("/api/v1/silences/{id}")).await;

    // The problem still exists: exactly one ticket opens, by the sweep.
    one_ticket_after_the_hold(&collector, agent_id, item).await;

    let audit = collector.get("/api/v1/audit").await;
    let actions: Vec<&str> = audit
        .as_array()
        .expect("audit")
        .iter()
        .filter(|a| a["actor"] == "key:e2e-admin")
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert_eq!(actions, ["silence.delete", "silence.create"], "{audit}");
}

on_each_backend!(windows_and_time_zones_from_the_cli);
async fn windows_and_time_zones_from_the_cli(backend: Backend) {
    let collector = Collector::start_on(backend, "");
    // A bad zone is refused before anything is created.
    let out = collector.cli(&["tenant", "add", "acme", "--time-zone", "Mars/Olympus"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Mars/Olympus"));
    let out = collector.cli(&["tenant", "add", "acme", "--time-zone", "Europe/Berlin"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = collector.cli(&["tenant", "set-time-zone", "default", "America/New_York"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tenants = collector.cli_json(&["tenant", "list", "--json"]);
    let zone = |name: &str| {
        tenants
            .as_array()
            .expect("tenants")
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["time_zone"].clone())
    };
    assert_eq!(zone("acme"), Some(json!("Europe/Berlin")));
    assert_eq!(zone("default"), Some(json!("America/New_York")));

    // A weekly window for backups, read in Berlin time.
    let w = collector.cli_json(&[
        "maintenance",
        "add",
        "--tenant",
        "acme",
        "--check",
        "backup",
        "--weekly",
        "mon-fri",
        "--at",
        "22:00",
        "--duration",
        "2h",
        "--reason",
        "backup server patching",
        "--json",
    ]);
    assert_eq!(w["kind"], "weekly");
    assert_eq!(w["time_zone"], "Europe/Berlin");
    assert_eq!(
        w["weekly"]["days"],
        json!(["mon", "tue", "wed", "thu", "fri"])
    );
    assert!(w["next_start"].is_string() || w["active"] == true, "{w}");
    // A one-off window with local times, and a silence.
    let once = collector.cli_json(&[
        "maintenance",
        "add",
        "--tenant",
        "acme",
        "--site",
        "hq",
        "--start",
        "2099-05-01 22:00",
        "--end",
        "2099-05-02 02:00",
        "--json",
    ]);
    assert_eq!(once["start_at"], "2099-05-01T20:00:00Z", "22:00 CEST");
    assert_eq!(once["active"], false);
    let s = collector.cli_json(&[
        "silence", "add", "--tenant", "acme", "--for", "30m", "--reason", "testing", "--json",
    ]);
    assert_eq!(s["active"], true);
    // Missing reason, unknown host: refused.
    assert!(
        !collector
            .cli(&[
                "silence", "add", "--tenant", "acme", "--for", "30m", "--reason", " "
            ])
            .status
            .success()
    );
    assert!(
        !collector
            .cli(&[
                "silence", "add", "--tenant", "acme", "--host", "nope", "--for", "30m", "--reason",
                "x"
            ])
            .status
            .success()
    );

    // Visible through the API with the MSP-wide key.
    let windows = collector.get("/api/v1/maintenance").await;
    assert_eq!(windows.as_array().map(Vec::len), Some(2), "{windows}");
    let silences = collector.get("/api/v1/silences").await;
    assert_eq!(silences.as_array().map(Vec::len), Some(1), "{silences}");

    // Remove them; the audit log has every change by the CLI operator.
    for (what, id) in [
        ("maintenance", &w["id"]),
        ("maintenance", &once["id"]),
        ("silence", &s["id"]),
    ] {
        let id = id.as_i64().expect("id").to_string();
        let out = collector.cli(&[what, "remove", &id]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listed = collector.cli_json(&["maintenance", "list", "--json"]);
    assert_eq!(listed, json!([]));
    let audit = collector.get("/api/v1/audit").await;
    let actions: Vec<&str> = audit
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    for a in [
        "tenant.time_zone",
        "maintenance.create",
        "silence.create",
        "maintenance.delete",
        "silence.delete",
    ] {
        assert!(actions.contains(&a), "{a} missing: {actions:?}");
    }
}

/// Local `HH:MM` in UTC, `back_min` minutes before now.
fn utc_clock_minutes_ago(back_min: u64) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let minute = (secs / 60 + 1440 - back_min) % 1440;
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

on_each_backend!(rrule_windows_through_the_api_cli_and_the_engine);
async fn rrule_windows_through_the_api_cli_and_the_engine(backend: Backend) {
    let collector = Collector::start_on(backend, "");
    let out = collector.cli(&["tenant", "set-time-zone", "default", "Europe/Berlin"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let post = |body: Value| {
        send(
            &collector,
            &collector.api_key,
            reqwest::Method::POST,
            "/api/v1/maintenance",
            Some(body),
        )
    };
    // Patch Tuesday, 22:00–02:00 Berlin time.
    let (status, patch) = post(json!({"tenant": "default", "reason": "patch tuesday",
        "recurrence": {"rrule": "FREQ=MONTHLY;BYDAY=2TU", "at": "22:00", "duration": "4h"}}))
    .await;
    assert_eq!(status, 201, "{patch}");
    assert_eq!(patch["kind"], "rrule");
    assert_eq!(patch["time_zone"], "Europe/Berlin");
    assert_eq!(patch["recurrence"]["rrule"], "FREQ=MONTHLY;BYDAY=2TU");
    assert_eq!(patch["recurrence"]["at"], "22:00");
    assert_eq!(patch["recurrence"]["duration_secs"], 4 * 3600);
    // The next start is a second Tuesday at 22:00 CET (21:00 UTC) or CEST (20:00 UTC).
    let next = patch["next_start"].as_str().expect("next_start");
    let (y, m, d): (i32, u8, u8) = (
        next[0..4].parse().expect("year"),
        next[5..7].parse().expect("month"),
        next[8..10].parse().expect("day"),
    );
    let day = time::Date::from_calendar_date(y, time::Month::try_from(m).expect("month"), d)
        .expect("date");
    assert_eq!(day.weekday(), time::Weekday::Tuesday, "{next}");
    assert!((8..=14).contains(&d), "{next}");
    assert!(
        next.ends_with("T20:00:00Z") || next.ends_with("T21:00:00Z"),
        "{next}"
    );
    // Refused, naming the part.
    let (status, body) = post(json!({"tenant": "default",
        "recurrence": {"rrule": "FREQ=MONTHLY;BYSETPOS=-1;BYDAY=MO", "at": "22:00", "duration": "4h"}}))
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("BYSETPOS"), "{body}");

    // The last day of the month from the CLI; both are listed.
    let last = collector.cli_json(&[
        "maintenance",
        "add",
        "--rrule",
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        "--at",
        "23:00",
        "--duration",
        "2h",
        "--json",
    ]);
    assert_eq!(last["kind"], "rrule", "{last}");
    assert_eq!(last["recurrence"]["rrule"], "FREQ=MONTHLY;BYMONTHDAY=-1");
    let listed = collector.get("/api/v1/maintenance").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");

    // A daily window that started an hour ago (UTC tenant) holds a real
    // agent's CRIT disk through the engine; removing it opens the ticket.
    let out = collector.cli(&["tenant", "add", "ops"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let agent = DiskAgent::start(&collector, "ops").await;
    let (mnt, item, agent_id) = (&agent.mnt, &agent.item, &agent.id);
    let (status, daily) = post(json!({"tenant": "ops", "host": agent_id,
        "recurrence": {"rrule": "FREQ=DAILY", "at": utc_clock_minutes_ago(60),
                       "duration": "3h", "dtstart": "2020-01-01"}}))
    .await;
    assert_eq!(status, 201, "{daily}");
    assert_eq!(daily["active"], true, "{daily}");
    crit_without_ticket(&collector, mnt, agent_id, item, "in the rrule window").await;
    let id = daily["id"].as_i64().expect("id");
    remove_ok(&collector, &format!("/api/v1/maintenance/{id}")).await;
    one_ticket_after_the_hold(&collector, agent_id, item).await;
}

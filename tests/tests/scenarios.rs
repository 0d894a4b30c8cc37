//! Ticket scenarios: simulated agents (real enrollment, real mTLS, the real
//! session protocol) driven through fault scripts against a real collector,
//! asserting the exact ticket set and each ticket's timeline through the
//! HTTP API.
//!
//! Each scenario runs its own collector with short timers in `[tickets]`,
//! so the whole file takes well under a minute. Every report a script sends
//! is acknowledged (committed) before the next step; time-based decisions
//! (overdue, recovery, confirmation, escalation) come from the collector's
//! once-a-second sweep and are awaited by polling with a deadline. Where a
//! test must show that something did *not* happen, it waits for a control
//! that is bound to happen at the same time or later instead of sleeping.

mod common;

use std::time::Duration;

use common::sim::{SimAgent, State, ms, now_ms};
use common::{Backend, Collector, eventually, on_each_backend};
use serde_json::Value;

/// Generous: two cores run several collectors at once.
const WAIT: Duration = Duration::from_secs(30);

// === helpers ===

/// Every ticket the collector holds, oldest first.
async fn all_tickets(c: &Collector) -> Vec<Value> {
    let mut v = c
        .get("/api/v1/tickets")
        .await
        .as_array()
        .expect("ticket list")
        .clone();
    v.sort_by_key(|t| t["id"].as_i64());
    v
}

/// Tickets of one host, oldest first.
async fn tickets_of(c: &Collector, a: &SimAgent) -> Vec<Value> {
    all_tickets(c)
        .await
        .into_iter()
        .filter(|t| t["agent_id"] == a.agent_id.as_str())
        .collect()
}

/// A host's ticket for one check, if any (panics if there are several).
async fn ticket_for(c: &Collector, a: &SimAgent, check: &str, item: &str) -> Option<Value> {
    let mut ts: Vec<Value> = tickets_of(c, a)
        .await
        .into_iter()
        .filter(|t| t["check"] == check && t["item"] == item)
        .collect();
    assert!(
        ts.len() <= 1,
        "more than one ticket for {check} {item}: {ts:?}"
    );
    ts.pop()
}

/// One ticket with its timeline.
async fn detail(c: &Collector, id: i64) -> Value {
    c.get(&format!("/api/v1/tickets/{id}")).await
}

fn id(t: &Value) -> i64 {
    t["id"].as_i64().unwrap_or_else(|| panic!("no id: {t}"))
}

fn events(t: &Value) -> &[Value] {
    t["events"].as_array().map_or(&[], Vec::as_slice)
}

fn event_kinds(t: &Value) -> Vec<String> {
    events(t)
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_string))
        .collect()
}

fn events_of<'a>(t: &'a Value, kind: &str) -> Vec<&'a Value> {
    events(t).iter().filter(|e| e["kind"] == kind).collect()
}

async fn agent(c: &Collector, a: &SimAgent) -> Value {
    c.get(&format!("/api/v1/agents/{}", a.agent_id)).await
}

/// POSTs a ticket action with `key`; returns (status, body).
async fn post(c: &Collector, key: &str, path: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("http://{}{path}", c.http))
        .bearer_auth(key)
        .send()
        .await
        .expect("http request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Short escalation timers: a P1 (CRIT on a server) is due for
/// acknowledgement 3 s after it opens, at every tier.
const FAST_P1: &str = "[tickets.sla.P1]\nack_mins = 0.05\nresolve_mins = 10\n";

// === scenarios ===

on_each_backend!(flapping_service_is_one_ticket_marked_flapping_without_churn);
/// A service alternating OK/CRIT: before the flapping detector has enough
/// history the ticket opens and closes; from detection on it is one open
/// ticket marked flapping with no churn, until the check settles OK.
async fn flapping_service_is_one_ticket_marked_flapping_without_churn(backend: Backend) {
    let c = Collector::start_on(backend, "");
    let (token, _) = c.token("default", &[]);
    let mut a = SimAgent::enroll(&c, &token, "flappy").await;
    a.connect(60).await;

    for i in 0..10 {
        let state = if i % 2 == 0 { State::Crit } else { State::Ok };
        a.change("service", "nginx", state, &format!("nginx {state:?} #{i}"))
            .await;
    }
    // Seven samples with six changes cross the 30 % start threshold.
    let t = ticket_for(&c, &a, "service", "nginx")
        .await
        .expect("ticket");
    let t = detail(&c, id(&t)).await;
    assert_eq!(t["state"], "open", "{t}");
    assert_eq!(t["flapping"], true, "{t}");
    let expected = [
        "opened", "resolved", "reopened", "resolved", "reopened", "resolved", "reopened",
        "flapping",
    ];
    assert_eq!(event_kinds(&t), expected, "{t}");

    // Settles OK: heartbeats age the changes out of the window. Until the
    // share drops below 25 % nothing at all happens to the ticket.
    let mut settled = None;
    for beat in 1..=21 {
        a.heartbeat().await;
        let now = detail(&c, id(&t)).await;
        if now["flapping"] == false {
            settled = Some((beat, now));
            break;
        }
        assert_eq!(now["state"], "open", "heartbeat {beat}: {now}");
        assert_eq!(event_kinds(&now), expected, "heartbeat {beat}: {now}");
    }
    let (beats, t) = settled.expect("flapping ends within 21 OK samples");
    eprintln!("flapping ended after {beats} OK heartbeats");
    assert_eq!(t["state"], "resolved", "{t}");
    assert_eq!(
        event_kinds(&t)[expected.len()..],
        ["flapping", "resolved"],
        "{t}"
    );
    assert!(
        events(&t)[expected.len()]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("stopped")),
        "{t}"
    );
    assert_eq!(all_tickets(&c).await.len(), 1, "exactly one ticket");
}

on_each_backend!(relapse_within_grace_reopens_the_same_ticket_and_later_opens_a_new_one);
/// A relapse within `reopen_grace_secs` reopens the same ticket; after the
/// grace a relapse is a new episode (a new ticket).
async fn relapse_within_grace_reopens_the_same_ticket_and_later_opens_a_new_one(backend: Backend) {
    let c = Collector::start_on(backend, "[tickets.rules.service]\nreopen_grace_secs = 2\n");
    let (token, _) = c.token("default", &[]);
    let mut a = SimAgent::enroll(&c, &token, "relapse").await;
    a.connect(60).await;

    a.change("service", "cron", State::Crit, "cron stopped")
        .await;
    let first = id(&ticket_for(&c, &a, "service", "cron").await.expect("ticket"));
    a.change("service", "cron", State::Ok, "cron running").await;
    assert_eq!(detail(&c, first).await["state"], "resolved");

    // Within the grace: the same ticket, same episode.
    a.change("service", "cron", State::Crit, "cron stopped again")
        .await;
    let t = detail(&c, first).await;
    assert_eq!(t["state"], "open", "{t}");
    assert_eq!(event_kinds(&t), ["opened", "resolved", "reopened"], "{t}");
    assert_eq!(tickets_of(&c, &a).await.len(), 1);

    a.change("service", "cron", State::Ok, "cron running").await;
    let t = detail(&c, first).await;
    assert_eq!(t["state"], "resolved", "{t}");
    // Let the grace (2 s from the resolution, collector clock) run out.
    let grace_end = ms(&t["resolved_at"]) + 2_000;
    let wait = u64::try_from(grace_end + 300 - now_ms()).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(wait)).await;

    a.change("service", "cron", State::Crit, "cron stopped a third time")
        .await;
    let ts = tickets_of(&c, &a).await;
    assert_eq!(ts.len(), 2, "a new episode after the grace: {ts:?}");
    assert_eq!(id(&ts[0]), first);
    assert_eq!(ts[0]["state"], "resolved");
    assert_eq!(ts[1]["state"], "open");
    let second = detail(&c, id(&ts[1])).await;
    assert_eq!(event_kinds(&second), ["opened"], "{second}");
    assert_eq!(
        event_kinds(&detail(&c, first).await),
        ["opened", "resolved", "reopened", "resolved"]
    );
}

on_each_backend!(confirmation_needs_three_consecutive_failures);
/// `confirm_count = 3`: two CRIT results then OK open nothing; three in a
/// row open exactly one ticket, detected at the first of the three.
async fn confirmation_needs_three_consecutive_failures(backend: Backend) {
    let c = Collector::start_on(backend, "[tickets.rules.service]\nconfirm_count = 3\n");
    let (token, _) = c.token("default", &[]);
    let mut a = SimAgent::enroll(&c, &token, "confirm").await;
    a.connect(60).await;

    a.change("service", "sshd", State::Crit, "sshd stopped")
        .await;
    a.heartbeat().await;
    assert!(
        tickets_of(&c, &a).await.is_empty(),
        "two failures: no ticket"
    );
    a.change("service", "sshd", State::Ok, "sshd running").await;
    assert!(all_tickets(&c).await.is_empty(), "the streak was broken");

    a.change("service", "sshd", State::Crit, "sshd stopped")
        .await;
    let first_failure = a
        .set("service", "sshd", State::Crit, "sshd stopped")
        .since
        .expect("since");
    a.heartbeat().await;
    assert!(
        tickets_of(&c, &a).await.is_empty(),
        "two failures: no ticket"
    );
    a.heartbeat().await;
    let ts = all_tickets(&c).await;
    assert_eq!(ts.len(), 1, "the third failure opens one ticket: {ts:?}");
    assert_eq!(ts[0]["check"], "service");
    assert_eq!(ts[0]["item"], "sshd");
    assert_eq!(ts[0]["state"], "open");
    let detected = first_failure.seconds * 1000 + i64::from(first_failure.nanos / 1_000_000);
    // The collector expresses the agent's time in its own clock (shifted by
    // the report's transit), so allow the loopback transit time.
    let off = ms(&ts[0]["detected_at"]) - detected;
    assert!(
        off.abs() < 1000,
        "detected_at {off} ms from the first failure: {}",
        ts[0]
    );
    assert_eq!(event_kinds(&detail(&c, id(&ts[0])).await), ["opened"]);
}

on_each_backend!(unacknowledged_ticket_escalates_l1_l2_l3_and_acknowledging_stops_it);
/// P1 on a server, acknowledgement due 3 s after opening at each tier:
/// L1 → L2 → L3 in order, recorded in the timeline; an acknowledged
/// ticket stops escalating.
async fn unacknowledged_ticket_escalates_l1_l2_l3_and_acknowledging_stops_it(backend: Backend) {
    let c = Collector::start_on(backend, FAST_P1);
    let tech = c.cli_json(&[
        "api-key",
        "create",
        "--name",
        "l1-tech",
        "--tenant",
        "default",
        "--role",
        "technician",
        "--json",
    ])["key"]
        .as_str()
        .expect("key")
        .to_string();
    let (token, _) = c.token("default", &["--role", "server", "--site", "dc1"]);
    let mut a = SimAgent::enroll(&c, &token, "db01").await;
    a.connect(60).await;

    // Two problems opened in one report: the same timers.
    a.changes(&[
        ("service", "nginx", State::Crit, "nginx stopped"),
        ("service", "postgres", State::Crit, "postgres stopped"),
    ])
    .await;
    let ts = tickets_of(&c, &a).await;
    assert_eq!(ts.len(), 2, "both open at once: {ts:?}");
    for t in &ts {
        assert_eq!(t["priority"], "P1", "{t}");
        assert_eq!(t["tier"], 1, "{t}");
    }
    let (left, acked) = (id(&ts[0]), id(&ts[1]));

    // Both reach L2 in the same sweep.
    eventually(WAIT, "both tickets at L2", || async {
        let (l, r) = (detail(&c, left).await, detail(&c, acked).await);
        (l["tier"] == 2 && r["tier"] == 2).then_some(())
    })
    .await;
    // A technician acknowledges one of them before its L3 deadline.
    let (status, body) = post(&c, &tech, &format!("/api/v1/tickets/{acked}/acknowledge")).await;
    assert_eq!(status, 200, "{body}");

    // The other one goes on to L3; the acknowledged one was due at the same
    // moment, so by now it would have escalated too.
    let l = eventually(WAIT, "the unacknowledged ticket at L3", || async {
        let t = detail(&c, left).await;
        (t["tier"] == 3).then_some(t)
    })
    .await;
    let esc: Vec<&str> = events_of(&l, "escalated")
        .iter()
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert_eq!(esc.len(), 2, "{l}");
    assert!(
        esc[0].contains("L1 → L2") && esc[1].contains("L2 → L3"),
        "{esc:?}"
    );
    assert!(ms(&events_of(&l, "escalated")[0]["at"]) <= ms(&events_of(&l, "escalated")[1]["at"]));
    assert_eq!(events_of(&l, "sla_breach").len(), 1, "one ack breach: {l}");
    assert_eq!(l["escalations"], 2);

    let r = detail(&c, acked).await;
    assert_eq!(r["tier"], 2, "acknowledging stopped the escalation: {r}");
    assert_eq!(r["escalations"], 1, "{r}");
    assert_eq!(r["acknowledged_by"], "key:l1-tech", "{r}");
    assert!(r["ack_due_at"].is_null(), "no timer left: {r}");
    assert_eq!(
        event_kinds(&r),
        ["opened", "sla_breach", "escalated", "acknowledged"],
        "{r}"
    );
    let ack = events_of(&r, "acknowledged")[0];
    assert_eq!(ack["actor"], "key:l1-tech");
    assert!(
        ack["detail"].as_str().is_some_and(|d| d.contains("L2")),
        "{ack}"
    );

    // At the top tier the timer runs out without a further escalation.
    let l = eventually(WAIT, "the L3 deadline to pass", || async {
        let t = detail(&c, left).await;
        t["ack_due_at"].is_null().then_some(t)
    })
    .await;
    assert_eq!(l["tier"], 3);
    assert_eq!(events_of(&l, "escalated").len(), 2, "{l}");
    assert_eq!(all_tickets(&c).await.len(), 2);
}

on_each_backend!(collector_restart_mid_escalation_neither_loses_nor_repeats_it);
/// A ticket at L2 with its next escalation pending survives a collector
/// restart: exactly one more escalation happens, after the restart.
async fn collector_restart_mid_escalation_neither_loses_nor_repeats_it(backend: Backend) {
    let c = Collector::start_on(backend, FAST_P1);
    let (token, _) = c.token("default", &["--role", "server"]);
    let mut a = SimAgent::enroll(&c, &token, "app01").await;
    a.connect(60).await;
    a.change("service", "app", State::Crit, "app stopped").await;
    let t = id(&ticket_for(&c, &a, "service", "app").await.expect("ticket"));

    eventually(WAIT, "the ticket at L2", || async {
        (detail(&c, t).await["tier"] == 2).then_some(())
    })
    .await;
    let restarting_at = now_ms();
    let before = detail(&c, t).await;
    assert_eq!(events_of(&before, "escalated").len(), 1, "{before}");
    let c = c.restart();

    let after = eventually(WAIT, "L3, then the top-tier deadline", || async {
        let d = detail(&c, t).await;
        (d["tier"] == 3 && d["ack_due_at"].is_null()).then_some(d)
    })
    .await;
    let esc = events_of(&after, "escalated");
    assert_eq!(
        esc.len(),
        2,
        "exactly one escalation after the restart: {after}"
    );
    assert!(
        esc[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("L1 → L2"))
    );
    assert!(
        esc[1]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("L2 → L3"))
    );
    assert!(
        ms(&esc[1]["at"]) >= restarting_at,
        "the L2 → L3 escalation must come from the restarted collector: {after}"
    );
    assert_eq!(after["escalations"], 2);
    assert_eq!(after["state"], "open");
    assert_eq!(all_tickets(&c).await.len(), 1);
}

on_each_backend!(overdue_agent_gets_a_ticket_clean_shutdown_does_not_unless_server);
/// Liveness: a workstation that says goodbye is offline without a ticket;
/// one that vanishes is overdue (one `agent` ticket) until it reconnects; a
/// server that says goodbye gets a ticket (servers must stay up).
async fn overdue_agent_gets_a_ticket_clean_shutdown_does_not_unless_server(backend: Backend) {
    let c = Collector::start_on(
        backend,
        "[tickets]\noverdue_after_intervals = 2\n[tickets.rules.agent]\nconfirm_secs = 0\n",
    );
    let (ws_token, _) = c.token("default", &["--role", "workstation", "--max-uses", "2"]);
    let (srv_token, _) = c.token("default", &["--role", "server", "--site", "dc"]);
    let mut off = SimAgent::enroll(&c, &ws_token, "ws-goes-home").await;
    let mut lost = SimAgent::enroll(&c, &ws_token, "ws-crashes").await;
    let mut srv = SimAgent::enroll(&c, &srv_token, "srv-stopped").await;

    // Clean shutdown of a workstation: offline, no ticket.
    off.connect(1).await;
    off.goodbye().await;
    let v = agent(&c, &off).await;
    assert_eq!(v["status"], "offline", "{v}");
    assert!(tickets_of(&c, &off).await.is_empty());

    // A workstation whose stream just drops: silent past 2 × 1 s.
    lost.connect(1).await;
    lost.crash();
    let t = eventually(WAIT, "an overdue ticket", || async {
        tickets_of(&c, &lost).await.pop()
    })
    .await;
    assert_eq!(t["kind"], "agent", "{t}");
    assert_eq!(t["state"], "open", "{t}");
    assert!(
        t["summary"].as_str().is_some_and(|s| s.contains("overdue")),
        "{t}"
    );
    assert_eq!(agent(&c, &lost).await["overdue"], true);
    // The goodbye host went quiet earlier and is still not overdue.
    let v = agent(&c, &off).await;
    assert_eq!(
        (&v["status"], &v["overdue"]),
        (&"offline".into(), &false.into()),
        "{v}"
    );
    assert!(tickets_of(&c, &off).await.is_empty());

    // It comes back: the same ticket resolves.
    lost.connect(1).await;
    let back = detail(&c, id(&t)).await;
    assert_eq!(back["state"], "resolved", "{back}");
    assert_eq!(event_kinds(&back), ["opened", "resolved"]);
    assert_eq!(agent(&c, &lost).await["overdue"], false);
    lost.goodbye().await;

    // A server saying goodbye: one ticket.
    srv.connect(1).await;
    srv.goodbye().await;
    let ts = tickets_of(&c, &srv).await;
    assert_eq!(ts.len(), 1, "{ts:?}");
    assert_eq!(ts[0]["kind"], "agent");
    assert_eq!(ts[0]["state"], "open");
    assert_eq!(ts[0]["priority"], "P1");
    assert!(
        ts[0]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("must stay up")),
        "{}",
        ts[0]
    );
    assert_eq!(agent(&c, &srv).await["status"], "offline");

    // The exact set: the resolved overdue ticket and the server's.
    let all = all_tickets(&c).await;
    assert_eq!(all.len(), 2, "{all:?}");
}

on_each_backend!(overdue_host_check_problems_wait_for_fresh_data);
/// Inhibition: while a host is overdue its check problems neither resolve
/// (recovery) nor open (confirmation) on the stale data it sent last; a
/// control host sent the same results later and is decided normally. Once
/// the host is back, its fresh results decide.
async fn overdue_host_check_problems_wait_for_fresh_data(backend: Backend) {
    let c = Collector::start_on(
        backend,
        "[tickets]\noverdue_after_intervals = 2\n\
         [tickets.rules.agent]\nconfirm_secs = 0\n\
         [tickets.rules.service]\nrecovery_secs = 4\n\
         [tickets.rules.backup]\nconfirm_secs = 4\n",
    );
    let (t1, _) = c.token("default", &["--site", "a"]);
    let (t2, _) = c.token("default", &["--site", "b"]);
    let mut silent = SimAgent::enroll(&c, &t1, "goes-silent").await;
    let mut control = SimAgent::enroll(&c, &t2, "control").await;
    silent.connect(1).await;
    control.connect(60).await;

    silent
        .change("service", "smb", State::Crit, "smb stopped")
        .await;
    control
        .change("service", "smb", State::Crit, "smb stopped")
        .await;
    let held = id(&ticket_for(&c, &silent, "service", "smb")
        .await
        .expect("ticket"));

    // Same script, the silent host first: its service recovers (resolve
    // due 4 s later) and its backup fails (open due 4 s later), then it
    // vanishes and is overdue after ~2 s.
    let script = [
        ("service", "smb", State::Ok, "smb running"),
        ("backup", "nightly", State::Crit, "backup failed"),
    ];
    silent.changes(&script).await;
    silent.crash();
    control.changes(&script).await;

    eventually(
        WAIT,
        "the control host's recovery and confirmation",
        || async {
            let s = ticket_for(&c, &control, "service", "smb").await?;
            let b = ticket_for(&c, &control, "backup", "nightly").await?;
            (s["state"] == "resolved" && b["state"] == "open").then_some(())
        },
    )
    .await;
    assert_eq!(agent(&c, &silent).await["overdue"], true);
    let live = ticket_for(&c, &silent, "agent", "heartbeat")
        .await
        .expect("overdue ticket");
    assert_eq!(live["state"], "open");
    let t = detail(&c, held).await;
    assert_eq!(t["state"], "open", "recovery held while overdue: {t}");
    assert_eq!(event_kinds(&t), ["opened"], "{t}");
    assert!(
        ticket_for(&c, &silent, "backup", "nightly").await.is_none(),
        "confirmation held while overdue"
    );

    // Back with fresh results: the same still hold, now they count.
    silent.connect(60).await;
    let t = detail(&c, held).await;
    assert_eq!(t["state"], "resolved", "{t}");
    assert_eq!(detail(&c, id(&live)).await["state"], "resolved");
    let b = ticket_for(&c, &silent, "backup", "nightly")
        .await
        .expect("backup ticket");
    assert_eq!(b["state"], "open");

    let all = all_tickets(&c).await;
    assert_eq!(all.len(), 5, "{all:?}");
}

/// Connects every agent at once (a site's hosts come up together).
async fn connect_all(agents: Vec<SimAgent>, interval_secs: u32) -> Vec<SimAgent> {
    let mut set = tokio::task::JoinSet::new();
    for mut a in agents {
        set.spawn(async move {
            a.connect(interval_secs).await;
            a
        });
    }
    let mut all = set.join_all().await;
    all.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    all
}

on_each_backend!(site_outage_of_twenty_hosts_is_one_site_ticket);
/// A site outage of 20 hosts: one `site` ticket listing them and no ticket
/// per host. One host was already down (with its own ticket) before the
/// outage: its ticket links to the site ticket. A host of another site that
/// goes silent at the same moment is the control: it gets its own ticket,
/// so by then the members would have theirs too.
async fn site_outage_of_twenty_hosts_is_one_site_ticket(backend: Backend) {
    // Default liveness rule (10 s confirmation) so grouping can happen.
    let c = Collector::start_on(backend, "[tickets]\noverdue_after_intervals = 2\n");
    let (token, _) = c.token("default", &["--site", "branch-7", "--max-uses", "20"]);
    let (solo, _) = c.token("default", &["--site", "solo"]);
    let mut site = SimAgent::enroll_many(&c, &token, "br7", 20).await;
    let control = SimAgent::enroll(&c, &solo, "solo-01").await;
    assert!(site.iter().all(|a| a.site == "branch-7"));

    // One host dies alone first: 1 of 20 is no outage, it gets its own ticket.
    let mut early = site.remove(0);
    early.connect(1).await;
    early.crash();
    let own = eventually(WAIT, "the lone host's own overdue ticket", || async {
        tickets_of(&c, &early).await.pop()
    })
    .await;
    assert_eq!(own["kind"], "agent", "{own}");
    assert!(all_tickets(&c).await.iter().all(|t| t["kind"] != "site"));

    // The rest of the site (and the control elsewhere) come up, then the
    // site's uplink dies: 20 of 20 hosts silent.
    let mut rest = connect_all(site.into_iter().chain([control]).collect(), 2).await;
    for a in &mut rest {
        a.crash();
    }
    let (i, _) = rest
        .iter()
        .enumerate()
        .find(|(_, a)| a.hostname == "solo-01")
        .expect("control");
    let control = rest.remove(i);
    let mut site = rest;
    site.insert(0, early);
    assert_eq!(site.len(), 20);

    let (site_ticket, theirs) =
        eventually(WAIT, "the site ticket and the control's ticket", || async {
            let s = all_tickets(&c)
                .await
                .into_iter()
                .find(|t| t["kind"] == "site")?;
            let theirs = tickets_of(&c, &control).await.pop()?;
            Some((s, theirs))
        })
        .await;
    assert_eq!(
        theirs["kind"], "agent",
        "another site: its own ticket: {theirs}"
    );
    assert!(theirs["parent_id"].is_null(), "{theirs}");
    assert_eq!(site_ticket["site"], "branch-7", "{site_ticket}");
    assert_eq!(site_ticket["state"], "open", "{site_ticket}");
    let summary = site_ticket["summary"].as_str().expect("summary");
    assert!(summary.contains("20 of 20"), "{summary}");
    for a in &site {
        assert!(
            summary.contains(&a.hostname),
            "{} not listed: {summary}",
            a.hostname
        );
    }
    // The host that was down first links to the site ticket; nobody else
    // of the site has a ticket.
    let own = detail(&c, id(&own)).await;
    assert_eq!(own["parent_id"], site_ticket["id"], "{own}");
    for a in &site[1..] {
        assert!(
            tickets_of(&c, a).await.is_empty(),
            "{} has its own ticket",
            a.hostname
        );
    }
    let all = all_tickets(&c).await;
    assert_eq!(
        all.len(),
        3,
        "site + the early host's + the control's: {all:?}"
    );

    // The site comes back: its ticket resolves, and nothing new opens.
    let site = connect_all(site, 60).await;
    eventually(WAIT, "the site ticket to resolve", || async {
        (detail(&c, id(&site_ticket)).await["state"] == "resolved").then_some(())
    })
    .await;
    assert_eq!(detail(&c, id(&own)).await["state"], "resolved");
    let all = all_tickets(&c).await;
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(site.len(), 20);
}

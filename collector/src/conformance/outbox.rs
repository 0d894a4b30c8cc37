//! Conformance tests for the outbox (ticket sinks): rows written with the
//! ticket change, routed by tenant and tier, handed out in order per
//! ticket, retried with the same key. Run for every backend through
//! `store_conformance!` in `conformance.rs`.

use super::{NOW, changes, disk, tenant_with_agent};
use crate::domain::{
    ApiCaller, CheckState, Millis, Report, ReportPayload, Scope, TicketAction, TicketState,
};
use crate::sinks::outbox::{Attempt, OutboxItem, OutboxState};
use crate::sinks::{Notification, SinkRoute, Status};
use crate::store::sqlite::SqliteStore;
use crate::tickets::Service;

/// The replica the single-replica tests claim as.
const R1: &str = "replica-1";
const CLAIM_MS: Millis = 600_000;

fn route(name: &str, tenants: &[&str], tiers: &[u8]) -> SinkRoute {
    SinkRoute {
        name: name.into(),
        kind: "webhook".into(),
        tenants: tenants.iter().map(|t| (*t).to_string()).collect(),
        tiers: tiers.to_vec(),
    }
}

fn admin() -> ApiCaller {
    ApiCaller {
        scope: Scope::All,
        name: "ops".into(),
        role: crate::domain::Role::MspAdmin,
        source: String::new(),
    }
}

fn n(item: &OutboxItem) -> Notification {
    crate::sinks::outbox::notification(item).expect("payload parses")
}

/// Every pending row of `sink`, delivering each head as it comes, so the
/// whole queue is read in the order the loop would send it.
async fn drain(svc: &Service, sink: &str, now: Millis) -> Vec<Notification> {
    let mut out = Vec::new();
    loop {
        let due = svc
            .store()
            .outbox_claim(sink, R1, now, now + CLAIM_MS, 100)
            .await
            .expect("due");
        if due.is_empty() {
            return out;
        }
        for item in due {
            out.push(n(&item));
            svc.store()
                .outbox_attempted(item.id, R1, &Attempt::Delivered, now)
                .await
                .expect("record");
        }
    }
}

pub async fn outbox_rows_are_written_with_the_ticket_change(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    // No sink configured: ticket changes leave no rows behind.
    svc.apply_report(
        &tenant,
        "a1",
        &changes(1, NOW, vec![disk(CheckState::Warn, 85.0)]),
        NOW,
    )
    .await
    .expect("apply");
    assert!(
        svc.store()
            .list_outbox(&Scope::All, None, 100)
            .await
            .expect("list")
            .is_empty()
    );

    svc.set_sink_routes(&[route("hook", &[], &[])]);
    // Severity change: `updated` → firing, frozen as the ticket was then.
    svc.apply_report(
        &tenant,
        "a1",
        &changes(2, NOW + 10, vec![disk(CheckState::Crit, 97.0)]),
        NOW + 10,
    )
    .await
    .expect("apply");
    // A duplicate report changes nothing, so it notifies nothing.
    svc.apply_report(
        &tenant,
        "a1",
        &changes(2, NOW + 10, vec![disk(CheckState::Crit, 97.0)]),
        NOW + 10,
    )
    .await
    .expect("dup");
    let due = svc
        .store()
        .outbox_claim("hook", R1, NOW + 10, NOW + 10 + CLAIM_MS, 100)
        .await
        .expect("due");
    assert_eq!(due.len(), 1, "{due:?}");
    let first = n(&due[0]);
    assert_eq!(first.status, Status::Firing);
    assert_eq!(first.event, "updated");
    assert_eq!(first.severity, CheckState::Crit);
    assert_eq!(first.tenant_id, tenant);
    assert_eq!(first.tenant_name, "acme");
    assert_eq!(
        (first.host.as_str(), first.site.as_str()),
        ("host-a1", "hq")
    );
    assert_eq!(
        (first.check.as_str(), first.item.as_str()),
        ("disk", "/data")
    );
    assert_eq!(first.agent_id, "a1");
    assert_eq!(first.at, NOW + 10);
    assert_eq!(due[0].attempts, 0);
    assert_eq!(due[0].created_at, NOW + 10);
    // Not due before its time.
    assert!(
        svc.store()
            .outbox_claim("hook", R1, NOW + 9, NOW + 9 + CLAIM_MS, 100)
            .await
            .expect("due")
            .is_empty()
    );
    // Another sink's queue is its own.
    assert!(
        svc.store()
            .outbox_claim("other", R1, NOW + 10, NOW + 10 + CLAIM_MS, 100)
            .await
            .expect("due")
            .is_empty()
    );

    // Acknowledge and recover: acknowledged, then resolved — the frozen
    // payloads say what the ticket was at each event.
    svc.ticket_action(
        &admin(),
        first.ticket_id,
        &TicketAction::Acknowledge,
        NOW + 20,
    )
    .await
    .expect("ack");
    // Notes and assignments stay in the timeline.
    svc.ticket_action(
        &admin(),
        first.ticket_id,
        &TicketAction::Note("looking".into()),
        NOW + 21,
    )
    .await
    .expect("note");
    svc.apply_report(
        &tenant,
        "a1",
        &changes(3, NOW + 30, vec![disk(CheckState::Ok, 10.0)]),
        NOW + 30,
    )
    .await
    .expect("apply");
    let all = drain(&svc, "hook", NOW + 30).await;
    let seen: Vec<_> = all.iter().map(|n| (n.event.as_str(), n.status)).collect();
    assert_eq!(
        seen,
        [
            ("updated", Status::Firing),
            ("acknowledged", Status::Acknowledged),
            ("resolved", Status::Resolved)
        ]
    );
    assert_eq!(all[1].acknowledged_at, Some(NOW + 20));
    assert_eq!(all[1].acknowledged_by.as_deref(), Some("ops"));
    assert_eq!(all[1].resolved_at, None);
    assert_eq!(all[2].resolved_at, Some(NOW + 30));
    assert!(all.iter().all(|x| x.ticket_id == first.ticket_id));
    assert!(
        all.windows(2).all(|w| w[0].event_id < w[1].event_id),
        "event ids grow"
    );
    assert!(all.iter().all(|x| x.episode_key() == first.episode_key()));
    let delivered = svc
        .store()
        .list_outbox(&Scope::All, Some(OutboxState::Delivered), 100)
        .await
        .expect("list");
    assert_eq!(delivered.len(), 3);
    assert!(
        delivered
            .iter()
            .all(|e| e.attempts == 1 && e.delivered_at == Some(NOW + 30))
    );
}

pub async fn outbox_routes_by_tenant_and_tier(svc: Service) {
    let acme = tenant_with_agent(&svc, "acme", "a1").await;
    let globex = tenant_with_agent(&svc, "globex", "b1").await;
    svc.set_sink_routes(&[
        route("all", &[], &[]),
        route("acme", &["acme"], &[]),
        route("globex-by-id", &[globex.as_str()], &[]),
        route("l1", &[], &[1]),
        route("l2", &[], &[2]),
    ]);
    svc.apply_report(
        &acme,
        "a1",
        &changes(1, NOW, vec![disk(CheckState::Crit, 99.0)]),
        NOW,
    )
    .await
    .expect("apply");
    svc.apply_report(
        &globex,
        "b1",
        &changes(1, NOW, vec![disk(CheckState::Crit, 99.0)]),
        NOW,
    )
    .await
    .expect("apply");
    let events = |sink: &'static str| {
        let svc = svc.clone();
        async move {
            drain(&svc, sink, NOW + 100)
                .await
                .into_iter()
                .map(|n| format!("{}:{}", n.tenant_name, n.event))
                .collect::<Vec<_>>()
        }
    };
    let acme_ticket = svc
        .store()
        .list_tickets(&Scope::Tenant(acme.clone()), None)
        .await
        .expect("list")[0]
        .id;
    // Escalated to L2: L2's sink hears of it from now on; L1's sink, which
    // got the opening, keeps hearing until it resolves.
    svc.ticket_action(&admin(), acme_ticket, &TicketAction::Escalate, NOW + 1)
        .await
        .expect("escalate");
    svc.apply_report(
        &acme,
        "a1",
        &changes(2, NOW + 2, vec![disk(CheckState::Ok, 10.0)]),
        NOW + 2,
    )
    .await
    .expect("apply");
    assert_eq!(
        events("all").await,
        [
            "acme:opened",
            "globex:opened",
            "acme:escalated",
            "acme:resolved"
        ]
    );
    assert_eq!(
        events("acme").await,
        ["acme:opened", "acme:escalated", "acme:resolved"]
    );
    assert_eq!(events("globex-by-id").await, ["globex:opened"]);
    assert_eq!(
        events("l1").await,
        [
            "acme:opened",
            "globex:opened",
            "acme:escalated",
            "acme:resolved"
        ]
    );
    assert_eq!(events("l2").await, ["acme:escalated", "acme:resolved"]);

    // Scoped reads: a tenant sees only its own rows.
    let only_globex = svc
        .store()
        .list_outbox(&Scope::Tenant(globex.clone()), None, 100)
        .await
        .expect("list");
    assert_eq!(only_globex.len(), 3, "all, globex-by-id, l1");
    assert!(only_globex.iter().all(|e| e.tenant_id == globex));
    // An MSP-wide read filtered to one tenant sees the same rows, paged.
    let filtered = svc
        .store()
        .find_outbox(
            &Scope::All,
            None,
            Some(&globex),
            crate::domain::Page::first(100),
        )
        .await
        .expect("find");
    assert_eq!(filtered, only_globex);
    let second = svc
        .store()
        .find_outbox(
            &Scope::All,
            None,
            Some(&globex),
            crate::domain::Page {
                limit: 1,
                offset: 1,
            },
        )
        .await
        .expect("find");
    assert_eq!(second, only_globex[1..2]);

    // New routes replace the old: a removed sink gets nothing new.
    svc.set_sink_routes(&[route("all", &[], &[])]);
    svc.apply_report(
        &globex,
        "b1",
        &changes(2, NOW + 3, vec![disk(CheckState::Ok, 10.0)]),
        NOW + 3,
    )
    .await
    .expect("apply");
    assert_eq!(events("all").await, ["globex:resolved"]);
    assert!(events("globex-by-id").await.is_empty());
    assert!(events("l1").await.is_empty());
}

pub async fn outbox_hands_out_each_ticket_in_order_and_retries_with_the_same_key(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    svc.set_sink_routes(&[route("hook", &[], &[])]);
    let mut other = disk(CheckState::Crit, 99.0);
    other.item = "/var".into();
    // Ticket A: opened, updated, resolved. Ticket B: opened.
    let steps = [
        (CheckState::Warn, None),
        (CheckState::Crit, Some(other.clone())),
        (CheckState::Ok, None),
    ];
    for (i, (state, extra)) in steps.into_iter().enumerate() {
        let mut results = vec![disk(state, 90.0)];
        results.extend(extra);
        let seq = i as u64 + 1;
        svc.apply_report(
            &tenant,
            "a1",
            &changes(seq, NOW + seq as i64, results),
            NOW + seq as i64,
        )
        .await
        .expect("apply");
    }
    let at = NOW + 10;
    // One head per ticket: A's opening and B's opening, oldest first.
    let due = svc
        .store()
        .outbox_claim("hook", R1, at, at + CLAIM_MS, 100)
        .await
        .expect("due");
    let heads: Vec<_> = due.iter().map(|i| (n(i).item, n(i).event)).collect();
    assert_eq!(
        heads,
        [
            ("/data".to_string(), "opened".to_string()),
            ("/var".to_string(), "opened".to_string())
        ]
    );
    let a_open = due[0].clone();
    // The receiver is down for A's opening: A's later events wait behind
    // it; B is not held up.
    svc.store()
        .outbox_attempted(
            a_open.id,
            R1,
            &Attempt::Retry {
                error: "HTTP 503".into(),
                next_attempt_at: at + 1000,
            },
            at,
        )
        .await
        .expect("record");
    svc.store()
        .outbox_attempted(due[1].id, R1, &Attempt::Delivered, at)
        .await
        .expect("record");
    assert!(
        svc.store()
            .outbox_claim("hook", R1, at + 999, at + 999 + CLAIM_MS, 100)
            .await
            .expect("due")
            .is_empty(),
        "A's head is backing off and its later events must not overtake it"
    );
    let pending = svc
        .store()
        .list_outbox(&Scope::All, Some(OutboxState::Pending), 100)
        .await
        .expect("list");
    let retried = pending
        .iter()
        .find(|e| e.id == a_open.id)
        .expect("still pending");
    assert_eq!(retried.attempts, 1);
    assert_eq!(retried.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(retried.next_attempt_at, Some(at + 1000));

    // Due again: the same row, the same idempotency key, one attempt on.
    let again = svc
        .store()
        .outbox_claim("hook", R1, at + 1000, at + 1000 + CLAIM_MS, 100)
        .await
        .expect("due");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, &again[0].key), (a_open.id, &a_open.key));
    assert_eq!(again[0].attempts, 1);
    svc.store()
        .outbox_attempted(a_open.id, R1, &Attempt::Delivered, at + 1000)
        .await
        .expect("record");
    // A late duplicate record does not change a delivered row.
    svc.store()
        .outbox_attempted(
            a_open.id,
            R1,
            &Attempt::Failed {
                error: "late".into(),
            },
            at + 1001,
        )
        .await
        .expect("record");

    // A refusal is final for that event, and does not block the next one.
    let next = svc
        .store()
        .outbox_claim("hook", R1, at + 1000, at + 1000 + CLAIM_MS, 100)
        .await
        .expect("due");
    assert_eq!(next.len(), 1);
    assert_eq!(n(&next[0]).event, "updated");
    svc.store()
        .outbox_attempted(
            next[0].id,
            R1,
            &Attempt::Failed {
                error: "HTTP 400: bad".into(),
            },
            at + 1000,
        )
        .await
        .expect("record");
    let last = svc
        .store()
        .outbox_claim("hook", R1, at + 1000, at + 1000 + CLAIM_MS, 100)
        .await
        .expect("due");
    assert_eq!(last.len(), 1);
    assert_eq!(n(&last[0]).event, "resolved");
    svc.store()
        .outbox_attempted(last[0].id, R1, &Attempt::Delivered, at + 1000)
        .await
        .expect("record");

    let failed = svc
        .store()
        .list_outbox(&Scope::All, Some(OutboxState::Failed), 100)
        .await
        .expect("list");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].event, "updated");
    assert_eq!(failed[0].last_error.as_deref(), Some("HTTP 400: bad"));
    assert_eq!(failed[0].next_attempt_at, None);
    let delivered = svc
        .store()
        .list_outbox(&Scope::All, Some(OutboxState::Delivered), 100)
        .await
        .expect("list");
    assert_eq!(delivered.len(), 3);
    let a = delivered
        .iter()
        .find(|e| e.id == a_open.id)
        .expect("delivered");
    assert_eq!(a.attempts, 2);
    assert_eq!(a.delivered_at, Some(at + 1000));
    let keys: std::collections::BTreeSet<_> = svc
        .store()
        .list_outbox(&Scope::All, None, 100)
        .await
        .expect("list")
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys.len(), 4, "one key per (event, sink)");

    // Finished rows of resolved tickets are pruned; B is still open, so its
    // rows stay (they say which sinks know it).
    assert_eq!(prune_outbox(&svc, NOW).await, 0);
    assert_eq!(prune_outbox(&svc, at + 2000).await, 3);
    let left = svc
        .store()
        .list_outbox(&Scope::All, None, 100)
        .await
        .expect("list");
    assert_eq!(left.len(), 1);
    assert!(left[0].ticket_id != a_open.ticket_id);
}

async fn prune_outbox(svc: &Service, before: Millis) -> u64 {
    let mut tx = svc.store().begin().await.expect("begin");
    let n = tx.prune_outbox(before, 1000).await.expect("prune");
    tx.commit().await.expect("commit");
    n
}

/// SQLite only (the fault is a trigger in its dialect): the outbox row and
/// the ticket change commit together or not at all.
#[tokio::test]
async fn a_failed_outbox_write_rolls_back_the_ticket_change() {
    let store = SqliteStore::in_memory().await.expect("store");
    let pool = store.pool().clone();
    let store = Service::new(std::sync::Arc::new(store));
    let tenant = tenant_with_agent(&store, "acme", "a1").await;
    store.set_sink_routes(&[SinkRoute {
        name: "hook".into(),
        kind: "webhook".into(),
        tenants: vec![],
        tiers: vec![],
    }]);
    sqlx::query(
        "CREATE TRIGGER outbox_down BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'outbox down'); END",
    )
    .execute(&pool)
    .await
    .expect("trigger");
    let report = |seq: u64| Report {
        boot_id: "b".into(),
        seq,
        observed_at: 1_800_000_000_000,
        payload: ReportPayload::StateChanges(vec![disk(CheckState::Crit, 99.0)]),
    };
    let now = 1_800_000_000_000;
    assert!(
        store
            .apply_report(&tenant, "a1", &report(1), now)
            .await
            .is_err()
    );
    assert!(
        store
            .store()
            .list_tickets(&Scope::All, None)
            .await
            .expect("list")
            .is_empty(),
        "no ticket without its notification"
    );
    // The report was not committed either, so the agent's resend works.
    sqlx::query("DROP TRIGGER outbox_down")
        .execute(&pool)
        .await
        .expect("drop");
    let o = store
        .apply_report(&tenant, "a1", &report(1), now)
        .await
        .expect("apply");
    assert!(!o.duplicate);
    let open = store
        .store()
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list");
    assert_eq!(open.len(), 1);
    let rows = store
        .store()
        .list_outbox(&Scope::All, None, 10)
        .await
        .expect("list");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].event.as_str(), rows[0].ticket_id),
        ("opened", open[0].id)
    );
}

//! Conformance tests for retention's deletions: old rows go, recent rows
//! and open tickets stay, and the audit log is pruned only by its own age.

use super::{NOW, admin, changes, disk, tenant_with_agent};
use crate::domain::{CheckState, Millis, Scope, TicketAction, TicketState};
use crate::retention::{Cutoffs, Pruned, run_once};
use crate::sinks::SinkRoute;
use crate::sinks::outbox::Attempt;
use crate::store::NewWindowRow;
use crate::tickets::Service;

const DAY: Millis = 24 * 3600 * 1000;

fn at_disk(item: &str, state: CheckState) -> crate::domain::CheckResult {
    let mut r = disk(state, 95.0);
    r.item = item.into();
    r
}

/// Delivers every pending outbox row of `hook` at `now`.
async fn deliver(svc: &Service, now: Millis) {
    loop {
        let due = svc
            .store()
            .outbox_claim("hook", "r1", now, now + 1000, 100)
            .await
            .expect("claim");
        if due.is_empty() {
            return;
        }
        for item in due {
            svc.store()
                .outbox_attempted(item.id, "r1", &Attempt::Delivered, now)
                .await
                .expect("record");
        }
    }
}

async fn window(svc: &Service, tenant: &str, end_at: Millis) {
    let mut tx = svc.store().begin().await.expect("begin");
    tx.insert_window(&NewWindowRow {
        tenant_id: tenant,
        kind: "silence",
        site: None,
        agent_id: None,
        check: None,
        start_at: Some(end_at - 1000),
        end_at: Some(end_at),
        weekdays: None,
        start_minute: None,
        duration_secs: None,
        rrule: None,
        dtstart: None,
        reason: "patching",
        created_by: "alice",
        created_at: end_at - 1000,
    })
    .await
    .expect("window");
    tx.commit().await.expect("commit");
}

pub async fn retention_prunes_old_rows_and_keeps_the_rest(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    svc.set_sink_routes(&[SinkRoute {
        name: "hook".into(),
        kind: "webhook".into(),
        tenants: vec![],
        tiers: vec![],
    }]);
    // Old: /old1 and /old2 open at NOW, resolve at NOW + 10 (an operator
    // acknowledges /old1 first: an audit entry); /old2 is /old1's group
    // parent, so it can go only after its member. /open opens and stays.
    svc.apply_report(
        &tenant,
        "a1",
        &changes(
            1,
            NOW,
            vec![
                at_disk("/old1", CheckState::Crit),
                at_disk("/old2", CheckState::Crit),
                at_disk("/open", CheckState::Crit),
            ],
        ),
        NOW,
    )
    .await
    .expect("open");
    let open = svc
        .store()
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list");
    let id = |item: &str| open.iter().find(|t| t.item == item).expect(item).id;
    let (old1, old2, still_open) = (id("/old1"), id("/old2"), id("/open"));
    let mut tx = svc.store().begin().await.expect("begin");
    tx.set_parent(old1, old2, NOW + 1).await.expect("parent");
    tx.commit().await.expect("commit");
    svc.ticket_action(&admin(), old1, &TicketAction::Acknowledge, NOW + 5)
        .await
        .expect("ack");
    svc.apply_report(
        &tenant,
        "a1",
        &changes(
            2,
            NOW + 10,
            vec![
                at_disk("/old1", CheckState::Ok),
                at_disk("/old2", CheckState::Ok),
            ],
        ),
        NOW + 10,
    )
    .await
    .expect("resolve");
    // Recent: /new opens and resolves two days on.
    for (seq, state) in [(3, CheckState::Crit), (4, CheckState::Ok)] {
        let at = NOW + 2 * DAY + seq;
        svc.apply_report(
            &tenant,
            "a1",
            &changes(seq as u64, at, vec![at_disk("/new", state)]),
            at,
        )
        .await
        .expect("recent");
    }
    deliver(&svc, NOW + 2 * DAY + 10).await;
    window(&svc, &tenant, NOW + 100).await;
    window(&svc, &tenant, NOW + 2 * DAY).await;
    let audit_before = svc
        .store()
        .audit_log(&Scope::All, 100)
        .await
        .expect("audit");
    assert!(!audit_before.is_empty());

    // Everything cut at NOW + 1 day, but the audit log (kept longest).
    let cut = Cutoffs {
        delivered_reports: NOW + DAY,
        outbox: NOW + DAY,
        resolved_tickets: NOW + DAY,
        audit: NOW - DAY,
        maintenance: NOW + DAY,
        // Metric samples: conformance/metrics.rs.
        metrics: NOW - DAY,
    };
    // Batches of one: the loop runs until a batch comes back short, and
    // the parent goes only after its member, in a later batch.
    let pruned = run_once(svc.store().as_ref(), &cut, 1)
        .await
        .expect("prune")
        .expect("this store holds the lease");
    assert_eq!(
        pruned,
        Pruned {
            delivered_reports: 2,
            // The old tickets' finished rows (opened, acknowledged,
            // resolved): the rest go with their tickets.
            outbox: 5,
            resolved_tickets: 2,
            audit: 0,
            maintenance: 1,
            metrics: 0,
        }
    );
    let left: Vec<String> = svc
        .store()
        .list_tickets(&Scope::All, None)
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.item)
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&"/open".to_string()) && left.contains(&"/new".to_string()));
    for gone in [old1, old2] {
        assert!(
            svc.store()
                .get_ticket(&Scope::All, gone)
                .await
                .expect("get")
                .is_none()
        );
    }
    let kept = svc
        .store()
        .get_ticket(&Scope::All, still_open)
        .await
        .expect("get")
        .expect("open ticket stays");
    assert!(!kept.events.is_empty());
    let outbox = svc
        .store()
        .list_outbox(&Scope::All, None, 100)
        .await
        .expect("outbox");
    assert!(
        outbox
            .iter()
            .all(|e| e.ticket_id != old1 && e.ticket_id != old2)
    );
    assert!(outbox.iter().any(|e| e.ticket_id == still_open));
    assert_eq!(
        svc.store()
            .audit_log(&Scope::All, 100)
            .await
            .expect("audit"),
        audit_before,
        "ticket pruning leaves the audit log alone"
    );
    let windows = svc
        .store()
        .list_windows(&Scope::All)
        .await
        .expect("windows");
    assert_eq!(windows.len(), 1);
    // The recent reports are still duplicates.
    let o = svc
        .apply_report(&tenant, "a1", &changes(4, NOW, vec![]), NOW + 2 * DAY + 20)
        .await
        .expect("resend");
    assert!(o.duplicate);

    // The audit log by its own age; a second round finds nothing.
    let cut = Cutoffs {
        audit: NOW + 3 * DAY,
        ..cut
    };
    let pruned = run_once(svc.store().as_ref(), &cut, 1000)
        .await
        .expect("prune")
        .expect("lease");
    assert_eq!(pruned.audit, audit_before.len() as u64);
    assert_eq!(
        pruned.resolved_tickets + pruned.outbox + pruned.delivered_reports,
        0
    );
    assert!(
        svc.store()
            .audit_log(&Scope::All, 100)
            .await
            .expect("audit")
            .is_empty()
    );
}

/// PostgreSQL only (SQLite has one writer, so one collector): while another
/// replica holds the retention lease, a round does nothing and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_without_the_retention_lease_leaves_the_round_alone() {
    let (svc, _guard) = super::postgres_with(|s| s).await;
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    svc.apply_report(&tenant, "a1", &changes(1, NOW, vec![]), NOW)
        .await
        .expect("apply");
    let cut = crate::retention::RetentionConfig::default().cutoffs(NOW + 30 * DAY);
    let mut leader = svc.store().begin().await.expect("begin");
    assert!(leader.try_retention_lease().await.expect("lease"));
    // The sweeper lease is another lock: held at the same time.
    let mut sweeper = svc.store().begin().await.expect("begin");
    assert!(sweeper.try_sweeper_lease().await.expect("sweeper lease"));
    sweeper.commit().await.expect("commit");
    assert_eq!(
        run_once(svc.store().as_ref(), &cut, 10)
            .await
            .expect("round"),
        None
    );
    // Committing ends the transaction and its lock at once (a dropped one
    // rolls back in the background).
    leader.commit().await.expect("commit");
    let pruned = run_once(svc.store().as_ref(), &cut, 10)
        .await
        .expect("round")
        .expect("the lease is free again");
    assert_eq!(pruned.delivered_reports, 1);
}

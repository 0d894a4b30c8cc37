//! Conformance tests for what operators do with sink deliveries (send
//! failed rows again, the backlog per sink, one row by id) and for the
//! sinks' links to their own tickets (PSA tickets): stored once, closed
//! once, read in scope, and the reads the poll and the reminders use.

use super::{NOW, changes, disk, tenant_with_agent};
use crate::domain::{ApiCaller, CheckState, Millis, Role, Scope, TicketAction};
use crate::sinks::SinkRoute;
use crate::sinks::outbox::{Attempt, OutboxState};
use crate::store::NewSinkLink;
use crate::tickets::Service;

const R1: &str = "replica-1";
const CLAIM_MS: Millis = 600_000;

fn hook() -> SinkRoute {
    SinkRoute {
        name: "hook".into(),
        kind: "webhook".into(),
        tenants: Vec::new(),
        tiers: Vec::new(),
    }
}

/// Opens a warn ticket on `agent` of `tenant`: its outbox row (to "hook").
async fn opened(svc: &Service, tenant: &str, agent: &str, at: Millis) -> (i64, i64) {
    svc.apply_report(
        tenant,
        agent,
        &changes(1, at, vec![disk(CheckState::Warn, 85.0)]),
        at,
    )
    .await
    .expect("apply");
    let rows = svc
        .store()
        .list_outbox(&Scope::Tenant(tenant.to_string()), None, 10)
        .await
        .expect("list");
    assert_eq!(rows.len(), 1, "{rows:?}");
    (rows[0].id, rows[0].ticket_id)
}

pub async fn failed_deliveries_are_sent_again_in_scope_and_counted_per_sink(svc: Service) {
    let acme = tenant_with_agent(&svc, "acme", "a1").await;
    let beta = tenant_with_agent(&svc, "beta", "b1").await;
    svc.set_sink_routes(&[hook()]);
    let (a_row, _) = opened(&svc, &acme, "a1", NOW + 1).await;
    let (b_row, _) = opened(&svc, &beta, "b1", NOW + 2).await;
    let s = svc.store();

    let depth = s.outbox_depth().await.expect("depth");
    assert_eq!(depth.len(), 1, "{depth:?}");
    assert_eq!(
        (depth[0].sink.as_str(), depth[0].pending, depth[0].failed),
        ("hook", 2, 0)
    );
    let a = s
        .outbox_entry(&Scope::All, a_row)
        .await
        .expect("entry")
        .expect("row");
    assert_eq!(depth[0].oldest_pending_at, Some(a.created_at));

    // Both refused: parked.
    let at = NOW + 10;
    let due = s
        .outbox_claim("hook", R1, at, at + CLAIM_MS, 10)
        .await
        .expect("claim");
    assert_eq!(due.len(), 2);
    for item in &due {
        let parked = Attempt::Failed {
            error: "HTTP 401: check the credentials".into(),
        };
        assert!(
            s.outbox_attempted(item.id, R1, &parked, at)
                .await
                .expect("record")
        );
    }
    let depth = s.outbox_depth().await.expect("depth");
    assert_eq!(
        (
            depth[0].pending,
            depth[0].oldest_pending_at,
            depth[0].failed
        ),
        (0, None, 2)
    );

    // One row by id, in scope only.
    let own = Scope::Tenant(acme.clone());
    let entry = s
        .outbox_entry(&own, a_row)
        .await
        .expect("entry")
        .expect("in scope");
    assert_eq!(entry.state, OutboxState::Failed);
    assert_eq!(
        entry.last_error.as_deref(),
        Some("HTTP 401: check the credentials")
    );
    let theirs = Scope::Tenant(beta.clone());
    assert_eq!(s.outbox_entry(&theirs, a_row).await.expect("entry"), None);
    assert_eq!(
        s.outbox_entry(&Scope::All, 999_999).await.expect("entry"),
        None
    );

    // Requeue: nothing outside the scope, the sink or the id.
    let again = NOW + 100;
    assert_eq!(
        s.outbox_requeue(&theirs, None, Some(a_row), again)
            .await
            .expect("rq"),
        0
    );
    assert_eq!(
        s.outbox_requeue(&own, Some("other"), None, again)
            .await
            .expect("rq"),
        0
    );
    assert_eq!(
        s.outbox_requeue(&own, Some("hook"), None, again)
            .await
            .expect("rq"),
        1
    );
    let entry = s
        .outbox_entry(&own, a_row)
        .await
        .expect("entry")
        .expect("row");
    assert_eq!(entry.state, OutboxState::Pending);
    assert_eq!(entry.attempts, 1, "attempts are kept");
    assert_eq!(entry.next_attempt_at, Some(again), "due at once");
    let depth = s.outbox_depth().await.expect("depth");
    assert_eq!((depth[0].pending, depth[0].failed), (1, 1));
    assert_eq!(depth[0].oldest_pending_at, Some(entry.created_at));
    // A pending row is not requeued again.
    assert_eq!(
        s.outbox_requeue(&own, None, Some(a_row), again)
            .await
            .expect("rq"),
        0
    );

    // Claimed again with the same key, and delivered.
    let due = s
        .outbox_claim("hook", R1, again, again + CLAIM_MS, 10)
        .await
        .expect("claim");
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].id, &due[0].key), (a_row, &a.key));
    assert!(
        s.outbox_attempted(a_row, R1, &Attempt::Delivered, again)
            .await
            .expect("record")
    );
    // A delivered row is never sent again.
    assert_eq!(
        s.outbox_requeue(&Scope::All, None, Some(a_row), again)
            .await
            .expect("rq"),
        0
    );
    // The MSP-wide scope reaches every tenant's rows.
    assert_eq!(
        s.outbox_requeue(&Scope::All, Some("hook"), None, again)
            .await
            .expect("rq"),
        1
    );
    let b = s
        .outbox_entry(&Scope::All, b_row)
        .await
        .expect("entry")
        .expect("row");
    assert_eq!(b.state, OutboxState::Pending);
    let depth = s.outbox_depth().await.expect("depth");
    assert_eq!((depth[0].pending, depth[0].failed), (1, 0));
}

pub async fn links_are_stored_once_closed_once_and_read_in_scope(svc: Service) {
    let acme = tenant_with_agent(&svc, "acme", "a1").await;
    let beta = tenant_with_agent(&svc, "beta", "b1").await;
    svc.set_sink_routes(&[hook()]);
    let (_, ticket) = opened(&svc, &acme, "a1", NOW + 1).await;
    let s = svc.store();
    let link = |external_id, at| NewSinkLink {
        sink: "hook",
        tenant_id: &acme,
        ticket_id: ticket,
        external_id,
        url: Some("https://psa.example/t/1"),
        created_at: at,
    };
    s.add_link(&link("PSA-1", NOW + 5)).await.expect("add");
    // The same link again (a retried attempt) changes nothing.
    s.add_link(&link("PSA-1", NOW + 6))
        .await
        .expect("add again");
    let all = s.ticket_links(&Scope::All, ticket).await.expect("links");
    assert_eq!(all.len(), 1, "{all:?}");
    let l = &all[0];
    assert_eq!(
        (l.sink.as_str(), l.external_id.as_str(), l.created_at),
        ("hook", "PSA-1", NOW + 5)
    );
    assert_eq!(
        (l.url.as_deref(), l.closed_at, &l.closed_by),
        (Some("https://psa.example/t/1"), None, &None)
    );
    assert_eq!(
        s.ticket_links(&Scope::Tenant(acme.clone()), ticket)
            .await
            .expect("own")
            .len(),
        1
    );
    assert!(
        s.ticket_links(&Scope::Tenant(beta), ticket)
            .await
            .expect("other")
            .is_empty()
    );
    assert_eq!(
        s.current_link("hook", ticket)
            .await
            .expect("current")
            .as_ref(),
        Some(l)
    );
    assert_eq!(
        s.current_link("other", ticket).await.expect("current"),
        None
    );
    assert_eq!(s.open_links("hook", 10).await.expect("open"), all);
    assert!(s.open_links("other", 10).await.expect("open").is_empty());

    // Closed on the receiver's side: once.
    let closed_at = NOW + 60_000;
    let mut tx = s.begin().await.expect("begin");
    let closed = tx
        .close_link("hook", "PSA-1", "jdoe", closed_at)
        .await
        .expect("close");
    let closed = closed.expect("was open");
    assert_eq!(
        (closed.closed_at, closed.closed_by.as_deref()),
        (Some(closed_at), Some("jdoe"))
    );
    assert_eq!(
        tx.close_link("hook", "PSA-1", "other", closed_at + 1)
            .await
            .expect("close"),
        None
    );
    assert_eq!(
        tx.close_link("hook", "PSA-404", "x", closed_at)
            .await
            .expect("close"),
        None
    );
    tx.commit().await.expect("commit");
    assert!(s.open_links("hook", 10).await.expect("open").is_empty());
    let current = s
        .current_link("hook", ticket)
        .await
        .expect("current")
        .expect("kept");
    assert_eq!(current.closed_by.as_deref(), Some("jdoe"));

    // The ticket is still open: its closed link is found once closed
    // long enough, and no longer once a newer link exists.
    let mut tx = s.begin().await.expect("begin");
    assert!(
        tx.closed_links_of_open_tickets(closed_at - 1, 10)
            .await
            .expect("q")
            .is_empty()
    );
    let found = tx
        .closed_links_of_open_tickets(closed_at, 10)
        .await
        .expect("q");
    assert_eq!(
        found
            .iter()
            .map(|l| l.external_id.as_str())
            .collect::<Vec<_>>(),
        ["PSA-1"]
    );
    tx.commit().await.expect("commit");
    s.add_link(&link("PSA-2", closed_at + 10))
        .await
        .expect("newer");
    let mut tx = s.begin().await.expect("begin");
    assert!(
        tx.closed_links_of_open_tickets(closed_at + 100, 10)
            .await
            .expect("q")
            .is_empty()
    );
    tx.commit().await.expect("commit");
    let all = s.ticket_links(&Scope::All, ticket).await.expect("links");
    assert_eq!(
        all.iter()
            .map(|l| l.external_id.as_str())
            .collect::<Vec<_>>(),
        ["PSA-1", "PSA-2"]
    );
}

pub async fn reminder_candidates_are_open_unacknowledged_tickets_quiet_long_enough(svc: Service) {
    let acme = tenant_with_agent(&svc, "acme", "a1").await;
    svc.set_sink_routes(&[hook()]);
    let (_, ticket) = opened(&svc, &acme, "a1", NOW + 1).await;
    let s = svc.store();
    let mut tx = s.begin().await.expect("begin");
    assert!(
        tx.reminder_candidates(NOW, 10).await.expect("q").is_empty(),
        "opened after"
    );
    let due = tx
        .reminder_candidates(NOW + 3_600_000, 10)
        .await
        .expect("q");
    tx.commit().await.expect("commit");
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(
        (due[0].id, due[0].tenant_id.as_str(), due[0].tier),
        (ticket, acme.as_str(), 1)
    );
    assert!(due[0].last_notified_at > NOW && due[0].last_notified_at <= NOW + 1);

    // Acknowledged: no more reminders.
    let admin = ApiCaller {
        scope: Scope::All,
        name: "alice".into(),
        role: Role::MspAdmin,
        source: String::new(),
    };
    svc.ticket_action(&admin, ticket, &TicketAction::Acknowledge, NOW + 10)
        .await
        .expect("ack");
    let mut tx = s.begin().await.expect("begin");
    assert!(
        tx.reminder_candidates(NOW + 3_600_000, 10)
            .await
            .expect("q")
            .is_empty()
    );
    tx.commit().await.expect("commit");
}

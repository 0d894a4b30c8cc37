//! Re-notification of unacknowledged tickets, and sinks' own tickets
//! (PSA tickets) closed on the receiver's side while the problem still
//! fails (`tickets/remote.rs`), on every backend.

use super::*;
use crate::domain::TicketAction;
use crate::sinks::{RemoteClose, SinkRoute};
use crate::store::NewSinkLink;

const MIN: Millis = 60_000;

/// A policy whose P1 never escalates within the test (so only reminders
/// notify), re-notifying L1 every 30 min.
fn quiet_escalation(svc: Service) -> Service {
    let mut p = crate::tickets::policy::Policy::default();
    for s in p.sla.values_mut() {
        s.ack_mins = 100_000.0;
        s.resolve_mins = 100_000.0;
    }
    p.renotify_mins = [("L1".to_string(), 30.0)].into();
    svc.with_policy(p)
}

fn route(name: &str) -> SinkRoute {
    SinkRoute {
        name: name.into(),
        kind: "webhook".into(),
        tenants: vec![],
        tiers: vec![],
    }
}

async fn kinds(svc: &Service, id: i64) -> Vec<String> {
    ticket(svc, id)
        .await
        .events
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

pub async fn unacknowledged_tickets_are_reminded_at_their_tiers_cadence(svc: Service) {
    let svc = quiet_escalation(svc);
    svc.set_sink_routes(&[route("pager")]);
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    let id = open_crit(&svc, &tenant).await;
    let reminders = |svc: Service| async move {
        kinds(&svc, id)
            .await
            .iter()
            .filter(|k| *k == "reminder")
            .count()
    };
    svc.sweep(NOW + 29 * MIN).await.expect("sweep");
    assert_eq!(reminders(svc.clone()).await, 0, "not yet due");
    svc.sweep(NOW + 31 * MIN).await.expect("sweep");
    assert_eq!(reminders(svc.clone()).await, 1);
    // The same moment again (a second replica, a restart): no second one.
    svc.sweep(NOW + 31 * MIN).await.expect("sweep");
    assert_eq!(reminders(svc.clone()).await, 1);
    // Counted from the last reminder, not from the opening.
    svc.sweep(NOW + 60 * MIN).await.expect("sweep");
    assert_eq!(reminders(svc.clone()).await, 1);
    svc.sweep(NOW + 62 * MIN).await.expect("sweep");
    assert_eq!(reminders(svc.clone()).await, 2);
    // Each reminder is filed for the sinks, as a firing notification.
    let rows = svc
        .store()
        .list_outbox(&Scope::All, None, 100)
        .await
        .expect("outbox");
    let filed: Vec<_> = rows
        .iter()
        .filter(|r| r.ticket_id == id && r.event == "reminder")
        .map(|r| r.status.as_str())
        .collect();
    assert_eq!(filed, ["firing", "firing"]);
    // Acknowledging stops it.
    svc.ticket_action(&admin(), id, &TicketAction::Acknowledge, NOW + 63 * MIN)
        .await
        .expect("ack");
    svc.sweep(NOW + 300 * MIN).await.expect("sweep");
    assert_eq!(reminders(svc.clone()).await, 2);
}

pub async fn a_tier_without_a_cadence_is_never_reminded(svc: Service) {
    let mut p = crate::tickets::policy::Policy::default();
    for s in p.sla.values_mut() {
        s.ack_mins = 100_000.0;
    }
    p.renotify_mins = [("L1".to_string(), 0.0), ("L2".to_string(), 5.0)].into();
    let svc = svc.with_policy(p);
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    let id = open_crit(&svc, &tenant).await;
    svc.sweep(NOW + 600 * MIN).await.expect("sweep");
    assert!(!kinds(&svc, id).await.iter().any(|k| k == "reminder"));
}

pub async fn a_psa_ticket_closed_while_the_problem_fails_is_followed_up_once(svc: Service) {
    let svc = quiet_escalation(svc);
    svc.set_sink_routes(&[route("psa")]);
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    let id = open_crit(&svc, &tenant).await;
    let link = |external_id: &'static str, at: Millis| NewSinkLink {
        sink: "psa",
        tenant_id: &tenant,
        ticket_id: id,
        external_id,
        url: None,
        created_at: at,
    };
    svc.store()
        .add_link(&link("1001", NOW + MIN))
        .await
        .expect("link");
    let close = [RemoteClose {
        external_id: "1001".into(),
        closed_by: "jdoe".into(),
    }];
    let closed_at = NOW + 2 * MIN;
    assert_eq!(
        svc.closed_remotely("psa", &close, closed_at)
            .await
            .expect("close"),
        1
    );
    // Seen again (another replica's poll): recorded once.
    assert_eq!(
        svc.closed_remotely("psa", &close, closed_at + 1000)
            .await
            .expect("again"),
        0
    );
    let t = ticket(&svc, id).await;
    let event = t
        .events
        .iter()
        .find(|e| e.kind == "closed_remotely")
        .expect("closed_remotely event");
    assert_eq!(event.actor, "jdoe (psa)");
    assert!(event.detail.contains("1001"), "{}", event.detail);
    let links = svc
        .store()
        .ticket_links(&Scope::All, id)
        .await
        .expect("links");
    assert_eq!(links[0].closed_by.as_deref(), Some("jdoe"));
    // Still failing after `still_failing_after_mins` (10 by default): one
    // firing event, filed for the sink, which opens a new PSA ticket.
    let still = |svc: Service| async move {
        kinds(&svc, id)
            .await
            .iter()
            .filter(|k| *k == "still_failing")
            .count()
    };
    svc.sweep(closed_at + 9 * MIN).await.expect("sweep");
    assert_eq!(still(svc.clone()).await, 0, "not yet");
    svc.sweep(closed_at + 11 * MIN).await.expect("sweep");
    assert_eq!(still(svc.clone()).await, 1);
    svc.sweep(closed_at + 12 * MIN).await.expect("sweep");
    assert_eq!(still(svc.clone()).await, 1, "once per close");
    let rows = svc
        .store()
        .list_outbox(&Scope::All, None, 100)
        .await
        .expect("outbox");
    assert!(
        rows.iter()
            .any(|r| r.ticket_id == id && r.event == "still_failing" && r.status == "firing")
    );
    // The sink made a new PSA ticket: that one is current and open, so
    // nothing more follows until it is closed too.
    svc.store()
        .add_link(&link("1002", closed_at + 12 * MIN))
        .await
        .expect("new link");
    svc.sweep(closed_at + 60 * MIN).await.expect("sweep");
    assert_eq!(still(svc.clone()).await, 1);
    let current = svc
        .store()
        .current_link("psa", id)
        .await
        .expect("current")
        .expect("some");
    assert_eq!(current.external_id, "1002");
    assert!(current.closed_at.is_none());
}

pub async fn a_psa_close_of_a_resolved_ticket_asks_for_nothing(svc: Service) {
    let svc = quiet_escalation(svc);
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    let id = open_crit(&svc, &tenant).await;
    svc.store()
        .add_link(&NewSinkLink {
            sink: "psa",
            tenant_id: &tenant,
            ticket_id: id,
            external_id: "77",
            url: Some("https://psa.example/t/77"),
            created_at: NOW,
        })
        .await
        .expect("link");
    svc.ticket_action(&admin(), id, &TicketAction::Resolve, NOW + MIN)
        .await
        .expect("resolve");
    let close = [RemoteClose {
        external_id: "77".into(),
        closed_by: "jdoe".into(),
    }];
    assert_eq!(
        svc.closed_remotely("psa", &close, NOW + 2 * MIN)
            .await
            .expect("close"),
        1
    );
    svc.sweep(NOW + 60 * MIN).await.expect("sweep");
    assert!(!kinds(&svc, id).await.iter().any(|k| k == "still_failing"));
    // An unknown PSA ticket is no error: nothing to record.
    let unknown = [RemoteClose {
        external_id: "nope".into(),
        closed_by: "x".into(),
    }];
    assert_eq!(
        svc.closed_remotely("psa", &unknown, NOW + 3 * MIN)
            .await
            .expect("unknown"),
        0
    );
}

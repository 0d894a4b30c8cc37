//! Conformance: the ingest writer's group commit. A write refused for its
//! own reason (an agent the tenant does not have) fails alone; the writes
//! queued with it still commit, each answered with its own outcome.

use super::{NOW, changes, disk, session_at_now, tenant_with_agent};
use crate::Error;
use crate::domain::{CheckState, Scope, TicketState};
use crate::tickets::Service;
use crate::tickets::writer::{Write, Writer};

pub async fn a_refused_write_fails_alone_and_its_batch_commits(svc: Service) {
    let tenant = tenant_with_agent(&svc, "acme", "a1").await;
    session_at_now(&svc, &tenant, "a1").await;
    let writer = Writer::start(&svc, 1);
    let report = |agent: &str, seq: u64| Write::Report {
        tenant_id: tenant.clone(),
        agent_id: agent.to_string(),
        report: changes(seq, NOW + 1, vec![disk(CheckState::Crit, 99.0)]),
        now: NOW + 1,
    };
    // Queued together, so the one lane takes them as one batch.
    let (good, stranger, again) = tokio::join!(
        writer.apply(report("a1", 1)),
        writer.apply(report("nobody", 1)),
        writer.apply(report("a1", 1)),
    );
    let good = good.expect("a1's report commits");
    assert_eq!(good.opened, 1, "{good:?}");
    assert!(
        matches!(stranger, Err(Error::NotFound(_))),
        "an agent the tenant does not have: {stranger:?}"
    );
    let again = again.expect("the resend is answered");
    assert!(
        again.duplicate,
        "the same seq again is a duplicate: {again:?}"
    );
    let open = svc
        .store()
        .list_tickets(&Scope::All, Some(TicketState::Open))
        .await
        .expect("list");
    assert_eq!(open.len(), 1, "one ticket, committed once: {open:?}");
}

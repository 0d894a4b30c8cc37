//! Conformance tests for several collectors on one store: outbox claims,
//! the shared CA, revocations seen by every replica. Run for every backend
//! through `store_conformance!`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use super::{NOW, changes, disk, tenant_with_agent};
use crate::Error;
use crate::domain::{CheckState, Millis, Scope};
use crate::pki::{Ca, Kek, load_or_create_shared};
use crate::sinks::SinkRoute;
use crate::sinks::outbox::{Attempt, OutboxState};
use crate::tickets::Service;

fn hook() -> SinkRoute {
    SinkRoute {
        name: "hook".into(),
        kind: "webhook".into(),
        tenants: vec![],
        tiers: vec![],
    }
}

/// `tickets` tickets on `a1` (items `/d0`, `/d1` …), each opened and then
/// updated: two outbox rows per ticket for `hook`, in order.
async fn tickets_with_two_events(svc: &Service, tickets: usize) {
    let tenant = tenant_with_agent(svc, "acme", "a1").await;
    svc.set_sink_routes(&[hook()]);
    for (seq, state) in [(1, CheckState::Warn), (2, CheckState::Crit)] {
        let results = (0..tickets)
            .map(|i| {
                let mut r = disk(state, 95.0);
                r.item = format!("/d{i}");
                r
            })
            .collect();
        svc.apply_report(&tenant, "a1", &changes(seq, NOW, results), NOW)
            .await
            .expect("apply");
    }
}

/// (ticket, event id, replica) in the order the replicas sent them.
type DeliveryLog = Arc<Mutex<Vec<(i64, i64, &'static str)>>>;

/// One replica's delivery loop, run to the end of the queue: claims a few
/// rows, logs each (ticket, event id) before recording it delivered.
async fn deliver_all(svc: Service, owner: &'static str, log: DeliveryLog) {
    loop {
        let due = svc
            .store()
            .outbox_claim("hook", owner, NOW, NOW + 600_000, 3)
            .await
            .expect("claim");
        if due.is_empty() {
            // Empty may mean "the other replica holds the rest": done only
            // when no row is pending at all.
            let pending = svc.store().pending_by_sink().await.expect("pending");
            if pending.is_empty() {
                return;
            }
            tokio::task::yield_now().await;
            continue;
        }
        for item in due {
            let n = crate::sinks::outbox::notification(&item).expect("payload");
            log.lock()
                .expect("log")
                .push((item.ticket_id, n.event_id, owner));
            let recorded = svc
                .store()
                .outbox_attempted(item.id, owner, &Attempt::Delivered, NOW)
                .await
                .expect("record");
            assert!(recorded, "{owner} holds the claim on {}", item.id);
        }
    }
}

pub async fn outbox_claims_never_hand_one_row_to_two_replicas(svc: Service) {
    tickets_with_two_events(&svc, 12).await;
    let all = svc
        .store()
        .list_outbox(&Scope::All, None, 1000)
        .await
        .expect("list");
    assert_eq!(all.len(), 24);

    // Two replicas claim the same queue at once.
    let (a, b) = tokio::join!(
        svc.store()
            .outbox_claim("hook", "r1", NOW, NOW + 600_000, 100),
        svc.store()
            .outbox_claim("hook", "r2", NOW, NOW + 600_000, 100),
    );
    let (a, b) = (a.expect("r1"), b.expect("r2"));
    let ids_a: BTreeSet<i64> = a.iter().map(|i| i.id).collect();
    let ids_b: BTreeSet<i64> = b.iter().map(|i| i.id).collect();
    assert!(ids_a.is_disjoint(&ids_b), "{ids_a:?} / {ids_b:?}");
    // Only heads are claimable: one row per ticket, between them all 12.
    assert_eq!(ids_a.len() + ids_b.len(), 12);
    let tickets: BTreeSet<i64> = a.iter().chain(&b).map(|i| i.ticket_id).collect();
    assert_eq!(tickets.len(), 12);
    // Handed out oldest first.
    assert!(a.windows(2).all(|w| w[0].id < w[1].id));

    // Two delivery loops running to the end: every row delivered exactly
    // once, by whichever replica claimed it, each ticket in order.
    for item in a {
        svc.store()
            .outbox_attempted(
                item.id,
                "r1",
                &Attempt::Retry {
                    error: "later".into(),
                    next_attempt_at: NOW,
                },
                NOW,
            )
            .await
            .expect("retry");
    }
    for item in b {
        svc.store()
            .outbox_attempted(
                item.id,
                "r2",
                &Attempt::Retry {
                    error: "later".into(),
                    next_attempt_at: NOW,
                },
                NOW,
            )
            .await
            .expect("retry");
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let one = tokio::spawn(deliver_all(svc.clone(), "r1", log.clone()));
    let two = tokio::spawn(deliver_all(svc.clone(), "r2", log.clone()));
    one.await.expect("r1");
    two.await.expect("r2");
    let log = log.lock().expect("log").clone();
    assert_eq!(log.len(), 24, "{log:?}");
    let mut per_ticket: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (ticket, event, _) in &log {
        per_ticket.entry(*ticket).or_default().push(*event);
    }
    for (ticket, events) in per_ticket {
        assert_eq!(events.len(), 2, "ticket {ticket}: {events:?}");
        assert!(
            events[0] < events[1],
            "ticket {ticket} out of order: {events:?}"
        );
    }
    let delivered = svc
        .store()
        .list_outbox(&Scope::All, Some(OutboxState::Delivered), 1000)
        .await
        .expect("list");
    assert_eq!(delivered.len(), 24);
    let attempts: u32 = delivered.iter().map(|e| e.attempts).sum();
    assert_eq!(attempts, 12 * 2 + 12, "the first heads were retried once");
}

pub async fn a_claimed_row_waits_for_its_claim_to_expire_or_be_released(svc: Service) {
    tickets_with_two_events(&svc, 1).await;
    let store = svc.store();
    let head = store
        .outbox_claim("hook", "r1", NOW, NOW + 100, 10)
        .await
        .expect("claim");
    assert_eq!(head.len(), 1);
    // Another replica skips it, and the ticket's next row is not a head.
    assert!(
        store
            .outbox_claim("hook", "r2", NOW + 99, NOW + 199, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    // r1 died: at claim_until the row is r2's, the same key.
    let taken = store
        .outbox_claim("hook", "r2", NOW + 100, NOW + 700, 10)
        .await
        .expect("claim");
    assert_eq!(taken.len(), 1);
    assert_eq!((taken[0].id, &taken[0].key), (head[0].id, &head[0].key));
    // r1's late record is refused; r2's counts.
    assert!(
        !store
            .outbox_attempted(head[0].id, "r1", &Attempt::Delivered, NOW + 150)
            .await
            .expect("late record")
    );
    let pending = store
        .list_outbox(&Scope::All, Some(OutboxState::Pending), 10)
        .await
        .expect("list");
    assert_eq!(pending.len(), 2);
    assert!(pending.iter().all(|e| e.attempts == 0));
    assert!(
        store
            .outbox_attempted(head[0].id, "r2", &Attempt::Delivered, NOW + 150)
            .await
            .expect("record")
    );
    // The ticket's next row: r1 claims it, releases it (clean shutdown),
    // and r2 gets it at once.
    let next = store
        .outbox_claim("hook", "r1", NOW + 200, NOW + 800, 10)
        .await
        .expect("claim");
    assert_eq!(next.len(), 1);
    assert!(next[0].id > head[0].id);
    assert_eq!(
        store.outbox_release("other", "r1").await.expect("release"),
        0
    );
    assert_eq!(
        store.outbox_release("hook", "r1").await.expect("release"),
        1
    );
    let now_r2 = store
        .outbox_claim("hook", "r2", NOW + 201, NOW + 801, 10)
        .await
        .expect("claim");
    assert_eq!(now_r2.len(), 1);
    assert_eq!(now_r2[0].id, next[0].id);
}

/// A KEK in `dir/name`.
fn kek(dir: &std::path::Path, name: &str) -> Kek {
    let path = dir.join(name);
    Kek::create_file(&path).expect("kek");
    Kek::read(&path).expect("read kek")
}

pub async fn the_shared_ca_is_stored_once_and_opens_only_with_its_kek(svc: Service) {
    let dir = tempfile::tempdir().expect("tmp");
    let good = kek(dir.path(), "kek");
    let no_files = dir.path().join("pki");
    assert!(svc.store().stored_ca().await.expect("read").is_none());
    // Two replicas start at once: one CA between them.
    let (a, b) = tokio::join!(
        load_or_create_shared(svc.store().as_ref(), &good, &no_files),
        load_or_create_shared(svc.store().as_ref(), &good, &no_files),
    );
    let (a, b) = (a.expect("replica a"), b.expect("replica b"));
    assert_eq!(a.fingerprint(), b.fingerprint());
    let stored = svc
        .store()
        .stored_ca()
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.origin, "generated");
    assert_eq!(stored.cert_pem, a.cert_pem());
    assert!(stored.key_sealed.starts_with("v1:"));
    assert!(
        !stored.key_sealed.contains("PRIVATE KEY"),
        "the key is sealed"
    );
    assert!(!no_files.exists(), "no CA files with a shared CA");
    // A later start loads it; each replica mints its own server certificate.
    let again = load_or_create_shared(svc.store().as_ref(), &good, &no_files)
        .await
        .expect("again");
    assert_eq!(again.fingerprint(), a.fingerprint());
    again
        .server_identity(&["localhost".to_string()])
        .expect("server certificate");

    // The wrong KEK is an error saying so, never a new CA.
    let wrong = kek(dir.path(), "other");
    let err = load_or_create_shared(svc.store().as_ref(), &wrong, &no_files)
        .await
        .err()
        .expect("wrong kek must fail");
    assert!(matches!(err, Error::Pki(_)), "{err}");
    assert!(err.to_string().contains("cannot be decrypted"), "{err}");
    assert!(err.to_string().contains("[pki] kek_file"), "{err}");
    assert_eq!(
        svc.store()
            .stored_ca()
            .await
            .expect("read")
            .expect("stored"),
        stored
    );

    // The first insert wins; a second one returns what is stored.
    let mut other = stored.clone();
    other.cert_pem = "another".into();
    assert_eq!(
        svc.store()
            .store_ca_if_absent(&other)
            .await
            .expect("insert"),
        stored
    );
}

pub async fn a_ca_in_files_is_imported_into_the_store(svc: Service) {
    let dir = tempfile::tempdir().expect("tmp");
    let files = dir.path().join("pki");
    let single = Ca::load_or_create(&files).expect("file CA");
    let kek = kek(dir.path(), "kek");
    let shared = load_or_create_shared(svc.store().as_ref(), &kek, &files)
        .await
        .expect("import");
    assert_eq!(
        shared.fingerprint(),
        single.fingerprint(),
        "agents keep their pin"
    );
    let stored = svc
        .store()
        .stored_ca()
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.origin, "imported");
    // Signs with the imported key: a chain ending in the same CA.
    let (chain, _) = shared
        .server_identity(&["localhost".to_string()])
        .expect("server certificate");
    assert!(chain.ends_with(single.cert_pem()));
}

pub async fn revocations_are_read_from_the_store(svc: Service) {
    // What serve.rs's revocation poll reads: any replica's revocation is
    // in the shared store, so every replica closes the agent's sessions.
    tenant_with_agent(&svc, "acme", "a1").await;
    tenant_with_agent(&svc, "globex", "b1").await;
    let mut tx = svc.store().begin().await.expect("begin");
    assert!(tx.revoke_agent("a1", NOW + 5).await.expect("revoke"));
    tx.commit().await.expect("commit");
    let at = |since: Millis| {
        let svc = svc.clone();
        async move { svc.store().revoked_since(since).await.expect("poll") }
    };
    assert_eq!(at(NOW).await, ["a1"]);
    assert_eq!(at(NOW + 5).await, ["a1"]);
    assert!(at(NOW + 6).await.is_empty());
}

/// The sweeper lease: one holder at a time, renewed by its holder, taken
/// over once expired or released; only the leader sweeps.
pub async fn one_replica_holds_the_sweeper_lease(svc: Service) {
    use crate::tickets::sweep::SWEEPER_LEASE as LEASE;
    let store = svc.store();
    let (a, b) = ("host-a/1", "host-b/2");
    assert!(
        store
            .acquire_lease(LEASE, a, NOW, NOW + 5_000)
            .await
            .expect("a takes")
    );
    assert!(
        !store
            .acquire_lease(LEASE, b, NOW + 1_000, NOW + 6_000)
            .await
            .expect("b waits")
    );
    assert!(
        store
            .acquire_lease(LEASE, a, NOW + 4_000, NOW + 9_000)
            .await
            .expect("a renews")
    );
    assert!(
        !store
            .acquire_lease(LEASE, b, NOW + 8_000, NOW + 13_000)
            .await
            .expect("renewed")
    );
    assert_eq!(
        store
            .lease_holder(LEASE, NOW + 8_000)
            .await
            .expect("holder")
            .as_deref(),
        Some(a)
    );
    // a dies: b takes over once a's lease has expired.
    assert!(
        store
            .acquire_lease(LEASE, b, NOW + 9_001, NOW + 14_001)
            .await
            .expect("b takes over")
    );
    assert!(
        !store
            .acquire_lease(LEASE, a, NOW + 9_500, NOW + 14_500)
            .await
            .expect("a is out")
    );
    // b stops cleanly: a takes it at once.
    store.release_lease(LEASE, b).await.expect("release");
    assert!(
        store
            .acquire_lease(LEASE, a, NOW + 9_600, NOW + 14_600)
            .await
            .expect("a again")
    );
    assert_eq!(
        store
            .lease_holder(LEASE, NOW + 20_000)
            .await
            .expect("expired"),
        None
    );
    // Only the holder sweeps.
    let swept = svc.sweep_if_leader(b, NOW + 10_000).await.expect("sweep");
    assert!(!swept.leader, "b does not hold the lease");
    let swept = svc.sweep_if_leader(a, NOW + 10_000).await.expect("sweep");
    assert!(swept.leader, "a holds the lease");
}

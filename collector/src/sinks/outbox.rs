//! The outbox delivery loop: works off the rows the store wrote in the
//! ticket transactions, one task per configured sink.
//!
//! - **Order per ticket**: the store hands out only the oldest pending row of
//!   each ticket, so event N+1 never leaves before event N is delivered (or
//!   failed for good: a refused event does not block the ticket forever).
//! - **Retries**: exponential backoff with equal jitter from
//!   `retry_initial_ms` to `retry_max_ms`, or the receiver's `Retry-After`
//!   if longer. Attempts, the next attempt time and the last error are in
//!   the row, so a restart resumes where it stopped.
//! - **Exactly once, from the receiver's side**: every attempt of a row
//!   carries the row's idempotency key; a row is marked delivered only
//!   after a 2xx, so the only repeats a receiver can see are attempts whose
//!   answer got lost, with the key it already has.
//! - **Several replicas**: each round a sink's loop *claims* its due rows
//!   for this replica (its [`replica_id`]) for the sink's request timeout
//!   plus [`CLAIM_SLACK`], so another
//!   replica never sends them at the same time; a replica that dies
//!   mid-delivery leaves claims that expire, and the rows are claimed again.
//!   An attempt starts only while the claim has more than the request
//!   timeout left, so a claim never runs out under an attempt; a clean
//!   shutdown, or a receiver failing, releases the claims at once.
//! - **A receiver that is down** is not hammered: after a retryable failure
//!   the whole sink pauses (growing with consecutive failures) before it
//!   tries again, instead of trying every ticket in turn.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use super::ops::Running;
use super::{Built, Delivery, Notification, Outcome, Sink};
use crate::Result;
use crate::domain::{Millis, Scope, now_millis};
use crate::store::{NewSinkLink, Storage};

/// How often an idle sink looks for new rows (the latency a receiver sees
/// on top of the ticket itself).
const POLL: Duration = Duration::from_millis(100);
/// Rows claimed per round.
const BATCH: u32 = 20;
/// How long past its request timeout a sink's claim holds rows for this
/// replica: the delay before another replica takes over the rows of one
/// that died mid-delivery.
const CLAIM_SLACK: Duration = Duration::from_secs(20);
/// No attempt starts with less of its claim left than the sink's request
/// timeout plus this.
const ATTEMPT_SLACK: Duration = Duration::from_secs(5);

/// How the error of a delivery given up after its retry horizon starts
/// (a parked one says why the receiver refused it).
pub const GAVE_UP: &str = "gave up after";

/// This process's replica id, as outbox claims name it:
/// `<hostname>/<random uuid>`, made once per start (so a restarted
/// replica never mistakes an old claim for its own).
pub fn replica_id() -> String {
    let host = crate::config::hostname().unwrap_or_else(|| "collector".to_string());
    format!("{host}/{}", uuid::Uuid::new_v4().simple())
}

pub use crate::store::{Attempt, OutboxEntry, OutboxItem, OutboxState};

/// The frozen [`Notification`] of an outbox row.
pub fn notification(item: &OutboxItem) -> std::result::Result<Notification, serde_json::Error> {
    serde_json::from_str(&item.payload)
}

/// The delay before retry number `attempts + 1`: `initial · 2^attempts`,
/// capped at `max`, with equal jitter (`unit` in `[0, 1]` picks a point in
/// `[base/2, base]`) so many pending rows do not retry in lockstep.
pub fn retry_delay(attempts: u32, initial: Duration, max: Duration, unit: f64) -> Duration {
    let base = initial
        .saturating_mul(2u32.saturating_pow(attempts.min(31)))
        .min(max);
    base.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

/// Checks every sink `serve` built ([`super::build_all`], the same ones
/// the API tests) against its receiver (a failing check is logged and
/// recorded, not fatal: the outbox keeps the events until the receiver
/// works), and starts delivering and, for sinks that keep their own
/// tickets, polling for tickets closed on the receiver's side.
/// The returned task ends after `stop` turns true (the attempt in flight
/// finishes first, so no answer is lost).
pub async fn start(
    svc: &crate::tickets::Service,
    running: &Running,
    replica: &str,
    stop: watch::Receiver<bool>,
    wake: watch::Receiver<u64>,
) -> Result<tokio::task::JoinHandle<()>> {
    // The routes came with the service (`serve::open_store`, same config).
    svc.warn_about_orphaned_outbox_rows().await?;
    let store = svc.store().clone();
    warn_about_unknown_tenants(store.as_ref(), running.all()).await?;

    let mut tasks = JoinSet::new();
    for r in running.all().iter().cloned() {
        info!(
            sink = r.settings.name,
            kind = r.kind,
            tenants = ?r.settings.tenants,
            tiers = ?r.settings.tiers,
            "ticket sink ready"
        );
        tasks.spawn(health_at_start(running.clone(), r.clone()));
        if let Some(every) = r.sink.poll_every() {
            tasks.spawn(super::poll::run(
                svc.clone(),
                r.clone(),
                every,
                stop.clone(),
            ));
        }
        tasks.spawn(run_sink(
            store.clone(),
            r,
            replica.to_string(),
            stop.clone(),
            wake.clone(),
        ));
    }
    Ok(tokio::spawn(async move {
        while tasks.join_next().await.is_some() {}
    }))
}

/// The start-up health check of one sink, logged and recorded (the API
/// and dashboard show it until the next test).
async fn health_at_start(running: Running, r: Built) {
    let name = r.settings.name.as_str();
    let health = running.check(&r, now_millis()).await;
    if health.ok {
        info!(
            sink = name,
            kind = r.kind,
            checked = health.message,
            "ticket sink healthy"
        );
    } else {
        error!(
            sink = name,
            kind = r.kind,
            problem = health.message,
            "ticket sink health check failed: its deliveries will retry or park until fixed"
        );
    }
}

async fn warn_about_unknown_tenants(store: &dyn Storage, running: &[Built]) -> Result<()> {
    let tenants = store.list_tenants(&Scope::All).await?;
    for r in running {
        for t in &r.settings.tenants {
            if !tenants.iter().any(|k| &k.id == t || &k.name == t) {
                warn!(
                    sink = r.settings.name,
                    tenant = t,
                    "sink routes a tenant that does not exist (yet)"
                );
            }
        }
    }
    Ok(())
}

/// A sink's retry settings.
#[derive(Debug, Clone, Copy)]
struct RetryPolicy {
    initial: Duration,
    max: Duration,
    give_up_ms: i64,
}

impl RetryPolicy {
    fn of(s: &super::SinkSettings) -> Self {
        Self {
            initial: Duration::from_millis(s.retry_initial_ms),
            max: Duration::from_millis(s.retry_max_ms),
            give_up_ms: i64::try_from(s.give_up_after_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX),
        }
    }

    /// What to record for `outcome`, attempt number `attempts + 1` of a row
    /// written at `created_at`; `unit` is the jitter draw.
    fn record(
        &self,
        outcome: Outcome,
        attempts: u32,
        created_at: Millis,
        now: Millis,
        unit: f64,
    ) -> Attempt {
        match outcome {
            Outcome::Delivered | Outcome::Linked { .. } | Outcome::LinkClosed { .. } => {
                Attempt::Delivered
            }
            Outcome::Park(error) => Attempt::Failed { error },
            Outcome::Retry { error, .. } if now - created_at >= self.give_up_ms => {
                Attempt::Failed {
                    error: format!("{GAVE_UP} {} attempts: {error}", attempts + 1),
                }
            }
            Outcome::Retry { error, after } => {
                let own = retry_delay(attempts, self.initial, self.max, unit);
                // The receiver's wish counts, within our own cap.
                let delay = after.map_or(own, |a| own.max(a.min(self.max)));
                Attempt::Retry {
                    error,
                    next_attempt_at: now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2),
                }
            }
        }
    }
}

/// One sink's loop: due rows in order, one attempt each.
/// `wake` ticks when this process has just committed outbox rows (a report
/// or a sweep changed tickets), so a healthy sink delivers at once instead
/// of at its next poll.
async fn run_sink(
    store: Arc<dyn Storage>,
    r: Built,
    owner: String,
    mut stop: watch::Receiver<bool>,
    mut wake: watch::Receiver<u64>,
) {
    let name = r.settings.name.as_str();
    let policy = RetryPolicy::of(&r.settings);
    let claim = r.sink.request_timeout() + CLAIM_SLACK;
    let margin = r.sink.request_timeout() + ATTEMPT_SLACK;
    // Consecutive retryable failures of the sink as a whole.
    let mut failures: u32 = 0;
    while !*stop.borrow() {
        let mut wait = POLL;
        let claimed_at = now_millis();
        let last_start = claimed_at + millis(claim) - millis(margin);
        match store
            .outbox_claim(name, &owner, claimed_at, claimed_at + millis(claim), BATCH)
            .await
        {
            Err(error) => {
                warn!(sink = name, %error, "claiming outbox rows failed");
                wait = policy.max.min(Duration::from_secs(5));
            }
            Ok(due) => {
                for item in due {
                    if *stop.borrow() {
                        break;
                    }
                    if now_millis() > last_start {
                        // The rest of the batch is claimed again (renewed)
                        // next round.
                        wait = Duration::ZERO;
                        break;
                    }
                    let outcome = attempt(store.as_ref(), r.sink.as_ref(), &item).await;
                    let now = now_millis();
                    if let Outcome::Linked { external_id, url } = &outcome {
                        // Stored before the attempt is recorded: a crash in
                        // between repeats the attempt (same key), never
                        // loses the link.
                        let link = NewSinkLink {
                            sink: name,
                            tenant_id: &item.tenant_id,
                            ticket_id: item.ticket_id,
                            external_id,
                            url: url.as_deref(),
                            created_at: now,
                        };
                        if let Err(error) = store.add_link(&link).await {
                            warn!(sink = name, key = item.key, %error, "storing the receiver's ticket link failed");
                            break;
                        }
                    }
                    if let Outcome::LinkClosed { external_id } = &outcome
                        && let Err(error) = close_link(store.as_ref(), name, external_id, now).await
                    {
                        warn!(sink = name, key = item.key, %error, "marking the receiver's ticket closed failed");
                        break;
                    }
                    let unit = rand::random::<f64>();
                    let record = policy.record(outcome, item.attempts, item.created_at, now, unit);
                    log_attempt(name, &item, &record, now);
                    crate::metrics::METRICS.sink_delivery(name, r.kind, &record);
                    match store.outbox_attempted(item.id, &owner, &record, now).await {
                        Ok(true) => {}
                        Ok(false) => {
                            // Only if this replica stalled past its claim:
                            // another one took the row over, and its
                            // attempt is the one recorded.
                            warn!(
                                sink = name,
                                key = item.key,
                                "outbox claim lost to another replica"
                            );
                            continue;
                        }
                        Err(error) => {
                            // The row stays pending as it was: it is tried
                            // again, with the same key, which the receiver
                            // may drop.
                            warn!(sink = name, key = item.key, %error, "recording a delivery failed");
                            break;
                        }
                    }
                    match record {
                        Attempt::Delivered => {
                            failures = 0;
                            wait = Duration::ZERO;
                        }
                        Attempt::Failed { .. } => {}
                        Attempt::Retry { .. } => {
                            // The receiver is likely down: pause the whole
                            // sink rather than try every ticket in turn.
                            failures = failures.saturating_add(1);
                            wait = retry_delay(failures - 1, policy.initial, policy.max, unit);
                            // The rest of the batch is free for a replica
                            // whose way to the receiver may work.
                            if let Err(error) = store.outbox_release(name, &owner).await {
                                warn!(sink = name, %error, "releasing outbox claims failed");
                            }
                            break;
                        }
                    }
                }
            }
        }
        if !wait.is_zero() {
            let healthy = failures == 0;
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                changed = wake.changed(), if healthy => {
                    if changed.is_err() {
                        // No waker any more: polling alone from now on.
                        wake = watch::channel(0).1;
                    }
                }
                changed = stop.changed() => {
                    // The collector is gone without saying stop: so are we.
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
    }
    // Rows claimed but not attempted go to another replica at once.
    if let Err(error) = store.outbox_release(name, &owner).await {
        warn!(sink = name, %error, "releasing outbox claims failed");
    }
}

/// Marks a link closed by a resolve ([`super::CLOSED_BY_FOREWARN`]).
async fn close_link(store: &dyn Storage, sink: &str, external_id: &str, now: Millis) -> Result<()> {
    let mut tx = store.begin().await?;
    tx.close_link(sink, external_id, super::CLOSED_BY_FOREWARN, now)
        .await?;
    tx.commit().await
}

fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX / 4)
}

/// The delivery log, per attempt.
fn log_attempt(sink: &str, item: &OutboxItem, record: &Attempt, now: Millis) {
    let (ticket_id, key, attempts) = (item.ticket_id, item.key.as_str(), item.attempts + 1);
    match record {
        Attempt::Delivered => info!(
            sink,
            ticket_id,
            key,
            attempts,
            delay_ms = now - item.created_at,
            "notification delivered"
        ),
        Attempt::Retry {
            error,
            next_attempt_at,
        } => warn!(
            sink,
            ticket_id,
            key,
            attempts,
            retry_in_ms = next_attempt_at - now,
            %error,
            "notification not delivered, will retry"
        ),
        Attempt::Failed { error } => error!(
            sink,
            ticket_id,
            key,
            attempts,
            %error,
            "notification failed for good"
        ),
    }
}

/// One attempt, with the sink's current link to the ticket; a payload
/// that no longer parses parks.
async fn attempt(store: &dyn Storage, sink: &dyn Sink, item: &OutboxItem) -> Outcome {
    let n = match notification(item) {
        Ok(n) => n,
        Err(e) => return Outcome::Park(format!("unreadable outbox payload: {e}")),
    };
    // Only sinks that keep their own tickets (the ones that poll for
    // closes: the PSAs) ever have a link; the others skip the query.
    let keeps_links = sink.poll_every().is_some();
    let read = if keeps_links {
        store.current_link(&item.sink, item.ticket_id).await
    } else {
        Ok(None)
    };
    let link = match read {
        Ok(l) => l,
        Err(e) => {
            return Outcome::Retry {
                error: format!("reading the ticket's link: {e}"),
                after: None,
            };
        }
    };
    sink.deliver(&Delivery {
        notification: &n,
        key: &item.key,
        attempts: item.attempts,
        link: link.as_ref(),
    })
    .await
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_in_the_upper_half() {
        let (i, m) = (Duration::from_secs(1), Duration::from_secs(300));
        assert_eq!(retry_delay(0, i, m, 1.0), Duration::from_secs(1));
        assert_eq!(retry_delay(0, i, m, 0.0), Duration::from_millis(500));
        assert_eq!(retry_delay(3, i, m, 1.0), Duration::from_secs(8));
        assert_eq!(retry_delay(20, i, m, 1.0), Duration::from_secs(300));
        assert_eq!(retry_delay(u32::MAX, i, m, 0.0), Duration::from_secs(150));
    }

    #[test]
    fn attempts_become_records() {
        let p = RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            give_up_ms: 3_600_000,
        };
        let retry = |after| Outcome::Retry {
            error: "HTTP 503".into(),
            after,
        };
        assert_eq!(
            p.record(Outcome::Delivered, 3, 0, 10, 0.5),
            Attempt::Delivered
        );
        assert_eq!(
            p.record(Outcome::Park("HTTP 404".into()), 0, 0, 10, 0.5),
            Attempt::Failed {
                error: "HTTP 404".into()
            }
        );
        // Third retry: 4 s base, full jitter draw → 4 s.
        assert_eq!(
            p.record(retry(None), 2, 0, 1000, 1.0),
            Attempt::Retry {
                error: "HTTP 503".into(),
                next_attempt_at: 5000
            }
        );
        // Retry-After is honoured when longer, capped at retry_max_ms.
        let at = |after| match p.record(retry(Some(after)), 0, 0, 0, 1.0) {
            Attempt::Retry {
                next_attempt_at, ..
            } => next_attempt_at,
            other => panic!("{other:?}"),
        };
        assert_eq!(at(Duration::from_secs(30)), 30_000);
        assert_eq!(at(Duration::from_secs(3600)), 60_000);
        assert_eq!(at(Duration::from_millis(10)), 1000);
        // Past the give-up horizon: failed, saying why.
        assert_eq!(
            p.record(retry(None), 41, 0, 3_600_000, 0.5),
            Attempt::Failed {
                error: "gave up after 42 attempts: HTTP 503".into()
            }
        );
    }

    proptest! {
        #[test]
        fn backoff_stays_within_bounds(attempts in 0u32..100, unit in 0.0f64..=1.0,
                                       initial_ms in 10u64..10_000, extra_ms in 0u64..1_000_000) {
            let initial = Duration::from_millis(initial_ms);
            let max = Duration::from_millis(initial_ms + extra_ms);
            let d = retry_delay(attempts, initial, max, unit);
            prop_assert!(d <= max);
            prop_assert!(d >= initial / 2);
            // Never shorter than the previous attempt's shortest delay.
            prop_assert!(d >= retry_delay(attempts.saturating_sub(1), initial, max, 0.0));
        }
    }
}

//! What the ticket desk does with sinks' own tickets and with silence:
//!
//! - a PSA ticket closed on the PSA's side is recorded on the Forewarn
//!   ticket ([`Service::closed_remotely`]: `closed_remotely`, with who
//!   closed it);
//! - if the Forewarn ticket is still open [`Policy::still_failing_after_mins`]
//!   later, the problem still fails: a `still_failing` event (firing),
//!   which opens a new PSA ticket naming the closed one;
//! - a ticket nobody acknowledged notifies again at its tier's cadence
//!   ([`Policy::renotify_ms`]): a `reminder` event (firing), until someone
//!   acknowledges it.
//!
//! [`Policy::still_failing_after_mins`]: super::policy::Policy::still_failing_after_mins
//! [`Policy::renotify_ms`]: super::policy::Policy::renotify_ms

use super::lifecycle::ENGINE;
use super::service::{Desk, Service};
use crate::Result;
use crate::domain::Millis;
use crate::sinks::RemoteClose;

/// Most tickets handled per sweep step (the rest wait for the next sweep).
const BATCH: i64 = 200;

impl Service {
    /// Records the closes `sink` found on its receiver's side; the number
    /// recorded (a close another replica recorded first is skipped).
    pub async fn closed_remotely(
        &self,
        sink: &str,
        closes: &[RemoteClose],
        now: Millis,
    ) -> Result<u32> {
        if closes.is_empty() {
            return Ok(0);
        }
        let mut desk = self.begin().await?;
        let mut recorded = 0;
        for c in closes {
            let Some(link) = desk
                .tx
                .close_link(sink, &c.external_id, &c.closed_by, now)
                .await?
            else {
                continue;
            };
            let detail = format!(
                "{sink} ticket {} closed there by {}",
                link.external_id, c.closed_by
            );
            let actor = format!("{} ({sink})", c.closed_by);
            desk.event(
                &link.tenant_id,
                link.ticket_id,
                now,
                "closed_remotely",
                &detail,
                &actor,
            )
            .await?;
            recorded += 1;
        }
        desk.commit().await?;
        Ok(recorded)
    }
}

/// Open tickets whose sink ticket was closed long enough ago: the problem
/// still fails.
pub(super) async fn still_failing(desk: &mut Desk<'_>, now: Millis) -> Result<u32> {
    let after = (desk.policy.still_failing_after_mins * 60_000.0) as i64;
    let links = desk
        .tx
        .closed_links_of_open_tickets(now - after, BATCH)
        .await?;
    let mut told = std::collections::BTreeSet::new();
    for l in links {
        // One event per ticket, whichever sinks' tickets were closed.
        if !told.insert(l.ticket_id) {
            continue;
        }
        let mins = (now - l.closed_at.unwrap_or(now)) / 60_000;
        let detail = format!(
            "still failing {mins} min after {} ticket {} was closed{}",
            l.sink,
            l.external_id,
            l.closed_by
                .as_deref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default()
        );
        desk.event(
            &l.tenant_id,
            l.ticket_id,
            now,
            "still_failing",
            &detail,
            ENGINE,
        )
        .await?;
    }
    Ok(u32::try_from(told.len()).unwrap_or(u32::MAX))
}

/// Unacknowledged tickets due a reminder at their tier's cadence.
pub(super) async fn remind(desk: &mut Desk<'_>, now: Millis) -> Result<u32> {
    // The shortest cadence bounds the query; each ticket is then judged by
    // its own tier's (and tenant's) cadence.
    let Some(shortest) = (1..=3).filter_map(|t| desk.policy.renotify_ms(t)).min() else {
        return Ok(0);
    };
    let mut reminded = 0;
    for c in desk.tx.reminder_candidates(now - shortest, BATCH).await? {
        let Some(every) = desk.policy_for(&c.tenant_id).await?.renotify_ms(c.tier) else {
            continue;
        };
        if now - c.last_notified_at < every {
            continue;
        }
        let detail = format!(
            "not acknowledged: reminder after {} min at L{}",
            (now - c.last_notified_at) / 60_000,
            c.tier
        );
        desk.event(&c.tenant_id, c.id, now, "reminder", &detail, ENGINE)
            .await?;
        reminded += 1;
    }
    Ok(reminded)
}

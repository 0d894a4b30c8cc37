//! Tickets closed on the receiver's side: a sink that keeps its own tickets
//! (the PSA connectors) is asked every [`super::Sink::poll_every`] which of
//! its open links were closed there, and the ticket desk records each close
//! on the Forewarn ticket ([`crate::tickets::Service::closed_remotely`]).
//!
//! Every replica polls; recording a close is conditional on the link still
//! being open, so two replicas seeing the same close record it once.

use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::Built;
use crate::domain::now_millis;

/// Links asked about per poll (the oldest open ones first).
const LINKS_PER_POLL: u32 = 500;

/// One sink's poll loop, until `stop` turns true.
pub async fn run(
    svc: crate::tickets::Service,
    r: Built,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let name = r.settings.name.as_str();
    while !*stop.borrow() {
        if let Err(error) = poll_once(&svc, &r).await {
            warn!(sink = name, %error, "asking the receiver for closed tickets failed");
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
}

/// One poll: the closes found, recorded. The number recorded here.
pub async fn poll_once(svc: &crate::tickets::Service, r: &Built) -> crate::Result<u32> {
    let name = r.settings.name.as_str();
    let open = svc.store().open_links(name, LINKS_PER_POLL).await?;
    if open.is_empty() {
        return Ok(0);
    }
    let closed = r
        .sink
        .closed(&open)
        .await
        .map_err(crate::Error::Unavailable)?;
    let recorded = svc.closed_remotely(name, &closed, now_millis()).await?;
    if recorded > 0 {
        info!(
            sink = name,
            recorded, "tickets closed on the receiver's side"
        );
    }
    Ok(recorded)
}

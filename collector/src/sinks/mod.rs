//! Ticket sinks: where ticket changes go besides the built-in queue.
//!
//! A sink kind (webhook, email, PagerDuty, Slack, Teams, the PSA
//! connectors) is one folder or file here: its config type and parser, a
//! [`Sink`], its default templates, and one entry in [`config::KINDS`], the
//! hand-written registry that turns a `[[sinks.<kind>]]` table into it.
//!
//! Sinks never see the database. The ticket desk routes every ticket event
//! worth notifying ([`Status::for_event`]) to the matching sinks
//! ([`SinkRoute`]) and writes one outbox row per (event, sink), with the
//! [`Notification`] frozen, in the same transaction as the ticket change
//! ([`enqueue`]). [`outbox`] then delivers the rows: in order per ticket,
//! with retries and backoff, each attempt carrying the same idempotency
//! key, so a receiver sees every event exactly once. A sink that keeps its
//! own record of a ticket (a PSA ticket) returns [`Outcome::Linked`]; the
//! loop stores the link and hands it to that ticket's next deliveries.

pub mod chat;
pub mod cli;
pub mod config;
pub mod email;
mod enqueue;
pub mod health;
pub mod http;
mod notification;
pub mod ops;
pub mod outbox;
pub mod pagerduty;
mod poll;
pub mod psa;
pub mod secret;
pub mod slack;
pub mod teams;
pub mod template;
pub mod webhook;

pub use config::{KINDS, Parsed, SinkKind, SinkRoute, SinkSettings, SinkSpec, SinksConfig};
pub use enqueue::enqueue;
pub use http::{HttpFailure, classify, error_chain, retry_after};
pub use notification::{EventFacts, Notification, Status};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use crate::store::SinkLink;

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Delivered, and the receiver made its own record of the ticket (a
    /// PSA ticket): stored beside the ticket and handed to the ticket's next
    /// deliveries as [`Delivery::link`].
    Linked {
        external_id: String,
        url: Option<String>,
    },
    /// Delivered, and the receiver's record of the ticket is closed by
    /// this delivery (a resolve closed the PSA ticket): the link is marked
    /// closed by [`CLOSED_BY_FOREWARN`], so the next poll does not report
    /// Forewarn's own close as a technician's, and a relapse opens a new
    /// PSA ticket instead of writing into the closed one.
    LinkClosed {
        external_id: String,
    },
    /// Worth trying again (network error, timeout, 5xx, 408, 429);
    /// `after` is the receiver's own wish (`Retry-After`), if any.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// Trying again cannot help until someone changes something (bad
    /// credentials, an unknown board, a refused body): the delivery is
    /// parked with this reason (state `failed`), visible in the API and the
    /// dashboard, and can be sent again once fixed.
    Park(String),
}

/// Who closed a link that a resolve closed ([`Outcome::LinkClosed`]).
pub const CLOSED_BY_FOREWARN: &str = "forewarn (resolved)";

/// One delivery: the notification, its idempotency key and, for sinks
/// that keep their own record of tickets, the current link.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub notification: &'a Notification,
    /// The same for every attempt of this (event, sink) delivery, so a
    /// receiver that saw an attempt whose answer got lost can drop the
    /// repeat.
    pub key: &'a str,
    /// Attempts made before this one: a sink that creates records on the
    /// receiver's side looks for the one a lost answer may have made
    /// before it creates another.
    pub attempts: u32,
    /// The newest link this sink made for the ticket ([`Outcome::Linked`]),
    /// open or closed on the receiver's side.
    pub link: Option<&'a SinkLink>,
}

/// A sink's own record closed on the receiver's side (a technician closed
/// the PSA ticket), as its poll found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteClose {
    pub external_id: String,
    /// Who closed it, as the receiver names them.
    pub closed_by: String,
}

/// What a health check or mapping lookup came to: `Err` says what is
/// wrong, in words an operator can act on (never a secret).
pub type CheckResult = std::result::Result<String, String>;

/// A configured destination for ticket notifications.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// Delivers one notification.
    async fn deliver(&self, delivery: &Delivery<'_>) -> Outcome;

    /// The longest one delivery may take (its request timeout): outbox
    /// claims outlast it, so a claim never runs out under an attempt.
    fn request_timeout(&self) -> Duration {
        Duration::from_secs(120)
    }

    /// Checks the configuration against the receiver without side effects
    /// where the vendor allows it (a token request, a lookup, an SMTP
    /// login); run at start, by `forewarn-collector sink test NAME` and from
    /// the dashboard. `Ok` says what was checked.
    async fn health(&self) -> CheckResult {
        Ok("nothing to check for this kind without sending a notification".to_string())
    }

    /// How often to ask the receiver which of this sink's open links it
    /// closed ([`Sink::closed`]); `None` = this kind never closes tickets
    /// on its own side.
    fn poll_every(&self) -> Option<Duration> {
        None
    }

    /// Of `open` (links still open here), the ones closed on the
    /// receiver's side.
    async fn closed(&self, _open: &[SinkLink]) -> std::result::Result<Vec<RemoteClose>, String> {
        Ok(Vec::new())
    }

    /// The receiver's side of one tenant's mapping (company, board or
    /// queue, statuses, priorities), read from the receiver where it offers
    /// a lookup, for `forewarn-collector sink map NAME --tenant T`.
    async fn mapping(&self, _tenant: &str) -> CheckResult {
        Err("this sink kind has no per-tenant mapping".to_string())
    }
}

/// What building a sink needs beyond its own table.
#[derive(Debug, Clone)]
pub struct SinkContext {
    /// Base URL of this collector's HTTP API and dashboard, for links
    /// (`http.public_url`).
    pub public_url: String,
}

/// A built sink with its name and kind, as the outbox, the CLI and the API
/// use it.
#[derive(Clone)]
pub struct Built {
    pub kind: &'static str,
    pub settings: SinkSettings,
    pub sink: Arc<dyn Sink>,
}

/// Builds every configured sink (reading secret files and environment).
pub fn build_all(sinks: &SinksConfig, ctx: &SinkContext) -> crate::Result<Vec<Built>> {
    let parsed = sinks
        .parse()
        .map_err(|problems| crate::Error::Config(problems.join("; ")))?;
    parsed.into_iter().map(|p| build_one(p, ctx)).collect()
}

/// Builds one parsed sink: `forewarn-collector sink test NAME` builds only
/// the sink it tests, so another sink's missing secret does not stop it.
pub fn build_one(p: Parsed, ctx: &SinkContext) -> crate::Result<Built> {
    let templates =
        template::Templates::new(p.kind_defaults, &p.settings.templates).map_err(|e| {
            crate::Error::Config(format!("sinks.{} {:?}: {e}", p.kind, p.settings.name))
        })?;
    let sink = p.spec.build(ctx, templates)?;
    Ok(Built {
        kind: p.kind,
        settings: p.settings,
        sink,
    })
}

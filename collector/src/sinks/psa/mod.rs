//! PSA connectors, two-way: ConnectWise PSA, Datto Autotask and HaloPSA.
//!
//! What a PSA ticket goes through is decided once, here ([`PsaSink`]); each
//! vendor module is a [`Connector`] that only speaks its API (auth, request
//! shapes, its priority and status fields, its company per tenant):
//!
//! | Forewarn event                  | PSA ticket (current link)                  |
//! |---------------------------------|--------------------------------------------|
//! | firing, no link yet             | created in the tenant's company → linked   |
//! | firing, linked and open         | a note (a `reminder` adds nothing)         |
//! | acknowledged, linked and open   | a note                                     |
//! | resolved, linked and open       | the mapped closed status and a note; the   |
//! |                                 | link is marked closed by Forewarn          |
//! | firing, link closed on the PSA  | a new PSA ticket naming the closed one     |
//! | anything else                   | nothing to do (delivered)                  |
//!
//! A technician closing the PSA ticket is found by polling
//! ([`Connector::closed`], every `poll_secs`) and recorded on the Forewarn
//! ticket (`closed_remotely`, with who closed it). If the problem still
//! fails a while later, the ticket desk says so (`still_failing`, a firing
//! event) and that opens the new PSA ticket: a closed PSA ticket is never
//! silently reopened.
//!
//! A create whose answer got lost is retried with the same idempotency key,
//! possibly by another replica; before every create, the connector looks
//! for the ticket an earlier attempt may have made ([`Connector::find`]),
//! so the PSA never gets two.

pub mod autotask;
pub mod connectwise;
mod fields;
pub mod halopsa;
#[cfg(test)]
mod tests;

use std::time::Duration;

use async_trait::async_trait;

use super::http::HttpFailure;
use super::template::{self, Templates};
use super::{CheckResult, Delivery, Notification, Outcome, RemoteClose, Sink, SinkLink, Status};
use crate::domain::rfc3339;

/// The templates of every PSA kind: `title` and `body` of a new PSA ticket,
/// `note` for every later event.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("title", template::DEFAULT_TITLE),
    ("body", template::DEFAULT_BODY),
    ("note", DEFAULT_NOTE),
];

/// A note on the PSA ticket for a later event.
pub const DEFAULT_NOTE: &str =
    "Forewarn: {{ event|replace('_', ' ') }}{% if actor != 'engine' %} by {{ actor }}{% endif %}: \
{{ detail }}
{{ summary }}
State: {{ severity }}, ticket {{ state }}, {{ priority }} L{{ tier }}
{{ link }}";

/// A PSA ticket as the connector made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub id: String,
    /// The ticket in the PSA's own UI, if the connector knows the address.
    pub url: Option<String>,
}

/// A new PSA ticket: the notification and its rendered title and body.
#[derive(Debug, Clone, Copy)]
pub struct NewPsaTicket<'a> {
    pub notification: &'a Notification,
    pub title: &'a str,
    pub body: &'a str,
    /// The idempotency key of this delivery: connectors that can store it
    /// on the ticket (a reference field) find a lost create by it.
    pub key: &'a str,
}

/// One vendor's API. Errors are classified [`HttpFailure`]s (the shared
/// `sinks::http::send` makes them), so the outbox retries or parks.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// Creates the ticket in the tenant's company, on the mapped board or
    /// queue, with the mapped priority.
    async fn create(&self, t: &NewPsaTicket<'_>) -> Result<Created, HttpFailure>;
    /// The ticket an earlier attempt of this delivery made, if any
    /// (looked up by `key` before every create).
    async fn find(&self, t: &NewPsaTicket<'_>) -> Result<Option<Created>, HttpFailure>;
    /// Adds `text` as a note (an action) to ticket `id`.
    async fn note(&self, id: &str, n: &Notification, text: &str) -> Result<(), HttpFailure>;
    /// Adds `text` as a note and sets the mapped closed status.
    async fn close(&self, id: &str, n: &Notification, text: &str) -> Result<(), HttpFailure>;
    /// Of `open`, the tickets closed in the PSA, and by whom.
    async fn closed(&self, open: &[SinkLink]) -> Result<Vec<RemoteClose>, String>;
    /// A call with no side effect that proves the credentials and the
    /// configured board/queue (`Ok` says what was checked).
    async fn health(&self) -> CheckResult;
    /// The tenant's mapping as the PSA knows it (company, board or queue,
    /// statuses, priorities), for an operator to confirm.
    async fn mapping(&self, tenant: &str) -> CheckResult;
    /// The whole-request timeout.
    fn request_timeout(&self) -> Duration;
    /// How often to ask for closed tickets.
    fn poll_every(&self) -> Duration;
    /// The vendor's name in notes ("ConnectWise").
    fn vendor(&self) -> &'static str;
}

/// A PSA sink: the shared two-way logic over one vendor's [`Connector`].
pub struct PsaSink<C> {
    connector: C,
    templates: Templates,
    public_url: String,
}

impl<C: Connector> PsaSink<C> {
    pub fn new(connector: C, templates: Templates, public_url: &str) -> Self {
        Self {
            connector,
            templates,
            public_url: public_url.trim_end_matches('/').to_string(),
        }
    }

    fn render(&self, part: &str, n: &Notification) -> Result<String, Outcome> {
        self.templates
            .render(part, n, &self.public_url)
            .map_err(Outcome::Park)
    }

    /// A new PSA ticket (or the one a lost answer already made).
    async fn create(&self, d: &Delivery<'_>, previous: Option<&SinkLink>) -> Outcome {
        let n = d.notification;
        let (title, mut body) = match (self.render("title", n), self.render("body", n)) {
            (Ok(t), Ok(b)) => (t, b),
            (Err(o), _) | (_, Err(o)) => return o,
        };
        if let Some(old) = previous {
            body.push_str(&previous_note(self.connector.vendor(), old));
        }
        let t = NewPsaTicket {
            notification: n,
            title: &title,
            body: &body,
            key: d.key,
        };
        // Looked up before every create, not only on a retry: a replica
        // killed after the PSA made the ticket but before the attempt was
        // recorded leaves `attempts` at 0 for the replica taking over.
        match self.connector.find(&t).await {
            Ok(Some(c)) => return linked(c),
            Ok(None) => {}
            Err(f) => return f.outcome(),
        }
        match self.connector.create(&t).await {
            Ok(c) => linked(c),
            Err(f) => f.outcome(),
        }
    }
}

/// What a new PSA ticket says about the closed one before it.
fn previous_note(vendor: &str, old: &SinkLink) -> String {
    let at = old
        .closed_at
        .map(|at| format!(" at {}", rfc3339::format(at)))
        .unwrap_or_default();
    match old.closed_by.as_deref() {
        Some(super::CLOSED_BY_FOREWARN) => format!(
            "\n\nThe problem came back after {vendor} ticket {} was closed on recovery{at}. This is a new ticket; the closed one was not reopened.",
            old.external_id
        ),
        by => format!(
            "\n\nThe problem still fails after {vendor} ticket {} was closed{}{at}. This is a new ticket; the closed one was not reopened.",
            old.external_id,
            by.map(|b| format!(" by {b}")).unwrap_or_default()
        ),
    }
}

fn linked(c: Created) -> Outcome {
    Outcome::Linked {
        external_id: c.id,
        url: c.url,
    }
}

#[async_trait]
impl<C: Connector> Sink for PsaSink<C> {
    async fn deliver(&self, d: &Delivery<'_>) -> Outcome {
        let n = d.notification;
        let open = d.link.filter(|l| l.closed_at.is_none());
        let closed = d.link.filter(|l| l.closed_at.is_some());
        match (n.status, open) {
            (Status::Firing, None) if n.event == "reminder" && closed.is_some() => {
                // Waiting for `still_failing`: a reminder alone does not
                // open a second PSA ticket.
                Outcome::Delivered
            }
            (Status::Firing, None) => self.create(d, closed).await,
            (Status::Firing, Some(_)) if n.event == "reminder" => Outcome::Delivered,
            (Status::Firing | Status::Acknowledged, Some(l)) => match self.render("note", n) {
                Ok(text) => match self.connector.note(&l.external_id, n, &text).await {
                    Ok(()) => Outcome::Delivered,
                    Err(f) => f.outcome(),
                },
                Err(o) => o,
            },
            (Status::Resolved, Some(l)) => match self.render("note", n) {
                Ok(text) => match self.connector.close(&l.external_id, n, &text).await {
                    Ok(()) => Outcome::LinkClosed {
                        external_id: l.external_id.clone(),
                    },
                    Err(f) => f.outcome(),
                },
                Err(o) => o,
            },
            // Acknowledged or resolved with no open PSA ticket: nothing
            // there to update.
            (Status::Acknowledged | Status::Resolved, None) => Outcome::Delivered,
        }
    }

    fn request_timeout(&self) -> Duration {
        self.connector.request_timeout()
    }

    async fn health(&self) -> CheckResult {
        self.connector.health().await
    }

    fn poll_every(&self) -> Option<Duration> {
        Some(self.connector.poll_every())
    }

    async fn closed(&self, open: &[SinkLink]) -> Result<Vec<RemoteClose>, String> {
        self.connector.closed(open).await
    }

    async fn mapping(&self, tenant: &str) -> CheckResult {
        self.connector.mapping(tenant).await
    }
}

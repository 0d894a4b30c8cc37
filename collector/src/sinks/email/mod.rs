//! The email sink (`[[sinks.email]]`): one message per ticket event through
//! an SMTP relay (STARTTLS or implicit TLS, with authentication), threaded
//! per ticket, with a text and an HTML part.
//!
//! Built on lettre's async SMTP transport over rustls (ring, the provider
//! the rest of the collector uses; the system roots plus `ca_file`). One
//! connection per message, no pool: notifications are few, and a fresh
//! connection never trips over one the relay closed while idle.
//!
//! Errors: a permanent SMTP reply (5xx: a refused login, a refused
//! recipient or sender) parks the delivery with the server's words; a
//! transient one (4xx), a refused or broken connection, a TLS failure and
//! a timeout are retried. The password (and its base64 forms) never appear
//! in a reason. Config: `config.rs`; the message and its threading
//! headers: `message.rs`; user docs: `docs/sinks/email.md`.

mod config;
mod message;

pub use config::{TlsMode, parse};
pub use message::{DEFAULT_HTML, EVENT_HEADER, TEMPLATES, TICKET_HEADER, message_id, root_id};

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::secret::Secret;
use super::template::Templates;
use super::{CheckResult, Delivery, Outcome, Sink, error_chain};
use config::EmailSpec;

/// An SMTP relay that ticket notifications are mailed through.
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    spec: EmailSpec,
    /// Username and password, kept to scrub them out of error text.
    password: Option<(String, Secret)>,
    public_url: String,
    templates: Templates,
}

#[async_trait]
impl Sink for Email {
    /// One message takes several round trips (EHLO, STARTTLS, AUTH, MAIL,
    /// RCPT, DATA), each bounded by `timeout_ms`; the whole attempt is
    /// bounded by the same figure.
    fn request_timeout(&self) -> Duration {
        self.spec.timeout
    }

    async fn deliver(&self, d: &Delivery<'_>) -> Outcome {
        let msg = match message::build(
            &self.spec,
            &self.templates,
            &self.public_url,
            d.notification,
        ) {
            Ok(m) => m,
            Err(e) => return Outcome::Park(e),
        };
        match tokio::time::timeout(self.spec.timeout, self.transport.send(msg)).await {
            Ok(Ok(_)) => Outcome::Delivered,
            Ok(Err(e)) => self.scrub(classify(&e)),
            Err(_) => Outcome::Retry {
                error: format!(
                    "no answer from the SMTP server within {} ms",
                    self.spec.timeout.as_millis()
                ),
                after: None,
            },
        }
    }

    /// Connects, says EHLO, starts TLS, logs in and says NOOP: everything
    /// but sending a message.
    async fn health(&self) -> CheckResult {
        let s = &self.spec;
        let failed = |e: String| Err(format!("{}:{} {}: {e}", s.host, s.port, s.tls.label()));
        match tokio::time::timeout(s.timeout, self.transport.test_connection()).await {
            Ok(Ok(true)) => Ok(format!(
                "{}:{} {}, {}",
                s.host,
                s.port,
                s.tls.label(),
                match &self.password {
                    Some((user, _)) => format!("authenticated as {user}"),
                    None => "no login configured".to_string(),
                }
            )),
            Ok(Ok(false)) => failed("the server did not answer NOOP".to_string()),
            Ok(Err(e)) => match self.scrub(classify(&e)) {
                Outcome::Park(r) | Outcome::Retry { error: r, .. } => failed(r),
                // classify never says delivered.
                Outcome::Delivered | Outcome::Linked { .. } | Outcome::LinkClosed { .. } => {
                    failed("SMTP error".to_string())
                }
            },
            Err(_) => failed(format!("no answer within {} ms", s.timeout.as_millis())),
        }
    }
}

impl Email {
    /// The outcome with the password, and the base64 forms a login sends,
    /// blanked out of its text: a server may echo what it refused.
    fn scrub(&self, outcome: Outcome) -> Outcome {
        let Some((user, secret)) = &self.password else {
            return outcome;
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let pass = secret.expose();
        let forms = [
            b64.encode(format!("\0{user}\0{pass}")),
            b64.encode(pass),
            pass.to_string(),
        ];
        let clean = |mut s: String| {
            for f in &forms {
                s = s.replace(f.as_str(), "<redacted>");
            }
            s
        };
        match outcome {
            Outcome::Park(r) => Outcome::Park(clean(r)),
            Outcome::Retry { error, after } => Outcome::Retry {
                error: clean(error),
                after,
            },
            other => other,
        }
    }
}

/// What an SMTP failure means for the delivery: park what needs someone to
/// change something (5xx, no usable login mechanism), retry the rest.
pub fn classify(e: &lettre::transport::smtp::Error) -> Outcome {
    let text = error_chain(e);
    if let Some(code) = e.status()
        && e.is_permanent()
    {
        let code = code.to_string();
        let hint = match code.as_str() {
            "530" | "534" | "535" | "538" => {
                " (authentication failed: fix username or password, then send the parked deliveries again)"
            }
            "550" | "551" | "553" | "501" => {
                " (the server refused an address: check from, to and to_tenants)"
            }
            _ => "",
        };
        return Outcome::Park(format!("SMTP {text}{hint}"));
    }
    if e.is_client() {
        // Decided on our side before anything was sent, e.g. the server
        // offers no login mechanism we speak: retrying cannot help.
        return Outcome::Park(format!("SMTP {text}"));
    }
    let what = if e.is_transient() {
        "SMTP"
    } else if e.is_timeout() {
        "SMTP timeout:"
    } else if e.is_tls() {
        "SMTP TLS:"
    } else {
        "SMTP connection:"
    };
    Outcome::Retry {
        error: format!("{what} {text}"),
        after: None,
    }
}

#[cfg(test)]
mod tests;

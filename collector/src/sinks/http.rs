//! The HTTP plumbing every HTTP sink shares: one client shape, and one
//! reading of an answer into an [`Outcome`].
//!
//! The client is `reqwest` (rustls with ring, the system's root
//! certificates, no default features): connection pooling, whole-request
//! timeouts, proxies from the environment and TLS come ready and well kept.
//! ring is the provider tonic already uses, so one crypto provider stays in
//! the graph. Redirects are never followed: a redirected POST would turn
//! into a GET elsewhere, and a secret header would follow it.
//!
//! Errors never carry the request URL (`reqwest::Error::without_url`):
//! chat webhook URLs are secrets themselves.

use std::time::Duration;

use super::Outcome;
use crate::{Error, Result};

/// At most this much of a refusal's body goes into the error.
const ERROR_BODY_BYTES: usize = 300;

/// A client for one sink: `timeout` for the whole request and for the
/// connection.
pub fn client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("forewarn-collector/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Config(format!("http client: {}", error_chain(&e.without_url()))))
}

/// An HTTP exchange that did not come back 2xx, with what the outbox needs
/// to decide: retry (and when), or park.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpFailure(pub Outcome);

impl HttpFailure {
    /// The outcome for the delivery.
    pub fn outcome(self) -> Outcome {
        self.0
    }

    /// The failure in words, for health checks and lookups.
    pub fn message(&self) -> String {
        match &self.0 {
            Outcome::Retry { error, .. } | Outcome::Park(error) => error.clone(),
            Outcome::Delivered | Outcome::Linked { .. } | Outcome::LinkClosed { .. } => {
                "no failure".to_string()
            }
        }
    }
}

impl From<HttpFailure> for Outcome {
    fn from(f: HttpFailure) -> Self {
        f.0
    }
}

/// Sends `req` and returns the 2xx answer's body (up to `max_bytes`), or the
/// classified failure: network errors and timeouts retry; so do 408, 429
/// (honouring `Retry-After`) and 5xx; any other status parks, with the
/// start of the answer's body as the reason.
pub async fn send(
    req: reqwest::RequestBuilder,
    max_bytes: usize,
) -> std::result::Result<(u16, Vec<u8>), HttpFailure> {
    let mut resp = req.send().await.map_err(|e| {
        HttpFailure(Outcome::Retry {
            error: error_chain(&e.without_url()),
            after: None,
        })
    })?;
    let status = resp.status().as_u16();
    let wait = retry_after(resp.headers());
    let ok = (200..300).contains(&status);
    let limit = if ok { max_bytes } else { ERROR_BODY_BYTES };
    let mut body = Vec::new();
    while body.len() < limit {
        match resp.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c),
            Ok(None) => break,
            Err(e) if ok => {
                return Err(HttpFailure(Outcome::Retry {
                    error: format!("reading the answer: {}", error_chain(&e.without_url())),
                    after: None,
                }));
            }
            Err(_) => break,
        }
    }
    if ok {
        if body.len() > max_bytes {
            return Err(HttpFailure(Outcome::Park(format!(
                "HTTP {status}: answer larger than {max_bytes} bytes"
            ))));
        }
        return Ok((status, body));
    }
    body.truncate(ERROR_BODY_BYTES);
    Err(HttpFailure(classify(
        status,
        wait,
        &String::from_utf8_lossy(&body),
    )))
}

/// Sends `req` and parses the 2xx answer as JSON `T`; an answer that does
/// not parse parks (the receiver speaks another version of its API).
pub async fn send_json<T: serde::de::DeserializeOwned>(
    req: reqwest::RequestBuilder,
) -> std::result::Result<T, HttpFailure> {
    let (status, body) = send(req, 4 << 20).await?;
    serde_json::from_slice(&body).map_err(|e| {
        HttpFailure(Outcome::Park(format!(
            "HTTP {status}: unexpected answer ({e}): {}",
            String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_BYTES)])
        )))
    })
}

/// `Retry-After` in seconds, if the answer has one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// What an HTTP status means for the delivery.
pub fn classify(status: u16, retry_after: Option<Duration>, body: &str) -> Outcome {
    let error = || {
        let body = body.trim();
        if body.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {body}")
        }
    };
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 | 500..=599 => Outcome::Retry {
            error: error(),
            after: retry_after,
        },
        300..=399 => Outcome::Park(format!(
            "{} (redirects are not followed: configure the final URL)",
            error()
        )),
        401 | 403 => Outcome::Park(format!(
            "{} (the receiver refused the credentials: fix them, then send the parked deliveries again)",
            error()
        )),
        _ => Outcome::Park(error()),
    }
}

/// An error with its causes ("error sending request: connection refused").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_split_into_retry_and_parking() {
        assert_eq!(classify(200, None, ""), Outcome::Delivered);
        assert_eq!(classify(204, None, ""), Outcome::Delivered);
        for s in [408, 429, 500, 502, 503] {
            assert!(
                matches!(classify(s, None, ""), Outcome::Retry { .. }),
                "{s}"
            );
        }
        for s in [301, 400, 401, 403, 404, 410, 422] {
            assert!(matches!(classify(s, None, ""), Outcome::Park(_)), "{s}");
        }
        assert!(
            matches!(classify(401, None, "bad key"), Outcome::Park(r) if r.contains("credentials"))
        );
        assert_eq!(
            classify(429, Some(Duration::from_secs(9)), "slow down"),
            Outcome::Retry {
                error: "HTTP 429: slow down".into(),
                after: Some(Duration::from_secs(9))
            }
        );
    }
}

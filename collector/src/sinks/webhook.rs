//! The webhook sink (`[[sinks.webhook]]`): one signed JSON POST per
//! notification.
//!
//! Headers: `X-Forewarn-Signature: sha256=<hex HMAC-SHA256 of the exact
//! body with the sink's secret>`, `Idempotency-Key` (the same on every
//! retry), `X-Forewarn-Event` (the timeline event). 2xx = delivered;
//! 408, 429, 5xx, timeouts and network errors are retried; any other status
//! (other 4xx, a redirect) parks the delivery ([`super::http`]).
//!
//! The body is the versioned JSON below ([`Body`]), or, when the sink sets a
//! `body` template, that template's output, which must be JSON (a body
//! shaped for a receiver that wants its own fields; `|tojson` quotes
//! values).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::secret::SecretRef;
use super::template::Templates;
use super::{Delivery, Notification, Outcome, Sink, SinkContext, SinkSpec, Status, http};
use crate::Result;
use crate::domain::{CheckState, Millis, TicketState, rfc3339};

/// Version of the JSON body; bumped only for incompatible changes.
pub const BODY_VERSION: u32 = 1;
/// Header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Forewarn-Signature";
/// Header carrying the timeline event kind.
pub const EVENT_HEADER: &str = "X-Forewarn-Event";
/// Header carrying the delivery's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// The webhook's one template part: empty = the versioned JSON [`Body`].
pub const TEMPLATES: &[(&str, &str)] = &[("body", "")];

/// `[[sinks.webhook]]` keys besides the common ones.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookConfig {
    /// Where to POST (http or https).
    url: String,
    /// HMAC-SHA256 key for the signature header: a string,
    /// `{ file = "…" }` or `{ env = "…" }` ([`SecretRef`]).
    #[serde(default)]
    secret: Option<SecretRef>,
    /// A file holding the key (trailing newline ignored), read at start
    /// (the same as `secret = { file = "…" }`).
    #[serde(default)]
    secret_file: Option<PathBuf>,
    /// Whole-request timeout.
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    5000
}

/// A validated webhook config.
#[derive(Clone)]
struct WebhookSpec {
    url: reqwest::Url,
    /// Its `Debug` never shows the value.
    secret: SecretRef,
    timeout: Duration,
}

impl std::fmt::Debug for WebhookSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSpec")
            .field("url", &self.url.as_str())
            .field("secret", &self.secret)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The registry's parser for `[[sinks.webhook]]`.
pub fn parse(table: toml::Table) -> std::result::Result<Box<dyn SinkSpec>, Vec<String>> {
    let cfg: WebhookConfig = table
        .try_into()
        .map_err(|e| vec![e.message().to_string()])?;
    let mut problems = Vec::new();
    let url = match reqwest::Url::parse(&cfg.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Some(u),
        Ok(_) => {
            problems.push(format!("url {:?} must be an http or https URL", cfg.url));
            None
        }
        Err(e) => {
            problems.push(format!("url {:?}: {e}", cfg.url));
            None
        }
    };
    let secret = match (cfg.secret, cfg.secret_file) {
        (Some(s), None) => {
            let p = s.problems("secret");
            let ok = p.is_empty();
            problems.extend(p);
            ok.then_some(s)
        }
        (None, Some(file)) => Some(SecretRef::File { file }),
        (Some(_), Some(_)) => {
            problems.push("secret: set either secret or secret_file, not both".to_string());
            None
        }
        (None, None) => {
            problems.push(
                "secret: set secret or secret_file (the HMAC-SHA256 key receivers verify)"
                    .to_string(),
            );
            None
        }
    };
    if !(100..=120_000).contains(&cfg.timeout_ms) {
        problems.push(format!(
            "timeout_ms ({}) must be between 100 and 120000",
            cfg.timeout_ms
        ));
    }
    match (url, secret) {
        (Some(url), Some(secret)) if problems.is_empty() => Ok(Box::new(WebhookSpec {
            url,
            secret,
            timeout: Duration::from_millis(cfg.timeout_ms),
        })),
        _ => Err(problems),
    }
}

impl SinkSpec for WebhookSpec {
    fn build(&self, ctx: &SinkContext, templates: Templates) -> Result<Arc<dyn Sink>> {
        let key = self.secret.read("sinks.webhook secret")?;
        Ok(Arc::new(Webhook {
            url: self.url.clone(),
            key: key.expose().as_bytes().to_vec(),
            public_url: ctx.public_url.trim_end_matches('/').to_string(),
            client: http::client(self.timeout)?,
            timeout: self.timeout,
            templates,
        }))
    }
}

/// A webhook receiver.
pub struct Webhook {
    url: reqwest::Url,
    key: Vec<u8>,
    public_url: String,
    client: reqwest::Client,
    /// The whole-request timeout the client was built with.
    timeout: Duration,
    templates: Templates,
}

/// `sha256=<hex>`: HMAC-SHA256 of exactly `body` under `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this never fails.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The tenant in a webhook body.
#[derive(Debug, Serialize)]
pub struct TenantRef<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

/// The JSON body of a webhook request (documented in the README).
#[derive(Debug, Serialize)]
pub struct Body<'a> {
    pub version: u32,
    pub status: Status,
    pub event: &'a str,
    pub event_id: i64,
    /// Stable per ticket episode: `forewarn-<ticket id>`.
    pub key: String,
    pub ticket_id: i64,
    pub tenant: TenantRef<'a>,
    pub site: &'a str,
    pub host: &'a str,
    pub agent_id: &'a str,
    pub check: &'a str,
    pub item: &'a str,
    pub severity: CheckState,
    pub priority: &'a str,
    pub tier: u8,
    pub flapping: bool,
    pub state: TicketState,
    pub summary: &'a str,
    pub detail: &'a str,
    pub actor: &'a str,
    #[serde(with = "rfc3339")]
    pub opened_at: Millis,
    #[serde(with = "rfc3339::option")]
    pub acknowledged_at: Option<Millis>,
    pub acknowledged_by: Option<&'a str>,
    pub assignee: Option<&'a str>,
    #[serde(with = "rfc3339::option")]
    pub resolved_at: Option<Millis>,
    pub resolved_by: Option<&'a str>,
    /// When the event happened.
    #[serde(with = "rfc3339")]
    pub at: Millis,
    /// The ticket in this collector's API.
    pub link: String,
}

impl<'a> Body<'a> {
    pub fn new(n: &'a Notification, public_url: &str) -> Self {
        Self {
            version: BODY_VERSION,
            status: n.status,
            event: &n.event,
            event_id: n.event_id,
            key: n.episode_key(),
            ticket_id: n.ticket_id,
            tenant: TenantRef {
                id: &n.tenant_id,
                name: &n.tenant_name,
            },
            site: &n.site,
            host: &n.host,
            agent_id: &n.agent_id,
            check: &n.check,
            item: &n.item,
            severity: n.severity,
            priority: &n.priority,
            tier: n.tier,
            flapping: n.flapping,
            state: n.state,
            summary: &n.summary,
            detail: &n.detail,
            actor: &n.actor,
            opened_at: n.opened_at,
            acknowledged_at: n.acknowledged_at,
            acknowledged_by: n.acknowledged_by.as_deref(),
            assignee: n.assignee.as_deref(),
            resolved_at: n.resolved_at,
            resolved_by: n.resolved_by.as_deref(),
            at: n.at,
            link: format!("{public_url}/api/v1/tickets/{}", n.ticket_id),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Plain data with string keys: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl Webhook {
    /// The request body: the `body` template's JSON if the sink has one,
    /// else the versioned [`Body`].
    fn body(&self, n: &Notification) -> std::result::Result<Vec<u8>, String> {
        let custom = self.templates.render("body", n, &self.public_url)?;
        if custom.trim().is_empty() {
            return Ok(Body::new(n, &self.public_url).to_bytes());
        }
        serde_json::from_str::<serde_json::Value>(&custom)
            .map_err(|e| format!("the body template does not make JSON: {e}"))?;
        Ok(custom.into_bytes())
    }
}

#[async_trait]
impl Sink for Webhook {
    fn request_timeout(&self) -> Duration {
        self.timeout
    }

    async fn deliver(&self, d: &Delivery<'_>) -> Outcome {
        let n = d.notification;
        let body = match self.body(n) {
            Ok(b) => b,
            Err(e) => return Outcome::Park(e),
        };
        let sig = signature(&self.key, &body);
        let req = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, sig)
            .header(IDEMPOTENCY_HEADER, d.key)
            .header(EVENT_HEADER, n.event.as_str())
            .body(body);
        match http::send(req, 64 << 10).await {
            Ok(_) => Outcome::Delivered,
            Err(f) => f.outcome(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sinks::notification::tests::sample as notification;

    #[test]
    fn signature_is_hmac_sha256_of_the_exact_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let body = Body::new(&notification(), "http://x").to_bytes();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"s3cret").expect("key");
        mac.update(&body);
        let hex_sig = signature(b"s3cret", &body);
        let raw = hex::decode(hex_sig.strip_prefix("sha256=").expect("prefix")).expect("hex");
        mac.verify_slice(&raw).expect("verifies");
        // One byte more and it no longer matches.
        let mut tampered = body.clone();
        tampered.push(b' ');
        assert_ne!(signature(b"s3cret", &tampered), hex_sig);
        assert_ne!(signature(b"other", &body), hex_sig);
    }

    #[test]
    fn body_has_every_field_a_receiver_needs() {
        let n = notification();
        let v: serde_json::Value =
            serde_json::from_slice(&Body::new(&n, "https://fw.example:8443").to_bytes())
                .expect("json");
        assert_eq!(v["version"], 1);
        assert_eq!(v["status"], "firing");
        assert_eq!(v["event"], "opened");
        assert_eq!(v["key"], "forewarn-42");
        assert_eq!(v["tenant"]["id"], "t-1");
        assert_eq!(v["tenant"]["name"], "acme");
        for (k, want) in [
            ("site", "hq"),
            ("host", "db1"),
            ("agent_id", "a-1"),
            ("check", "disk"),
            ("item", "/data"),
            ("severity", "crit"),
            ("priority", "P1"),
            ("state", "open"),
        ] {
            assert_eq!(v[k], want, "{k}");
        }
        assert_eq!(v["tier"], 1);
        assert_eq!(v["opened_at"], "2027-01-15T08:00:00Z");
        assert_eq!(v["at"], "2027-01-15T08:00:00Z");
        assert!(v["acknowledged_at"].is_null() && v["resolved_at"].is_null());
        assert_eq!(v["link"], "https://fw.example:8443/api/v1/tickets/42");
        assert!(v["summary"].as_str().is_some_and(|s| s.contains("db1")));
    }

    #[test]
    fn resolved_body_carries_its_times() {
        let mut n = notification();
        n.status = Status::Resolved;
        n.event = "resolved".into();
        n.state = TicketState::Resolved;
        n.acknowledged_at = Some(n.opened_at + 60_000);
        n.resolved_at = Some(n.opened_at + 120_000);
        let v: serde_json::Value =
            serde_json::from_slice(&Body::new(&n, "http://x").to_bytes()).expect("json");
        assert_eq!(v["status"], "resolved");
        assert_eq!(v["acknowledged_at"], "2027-01-15T08:01:00Z");
        assert_eq!(v["resolved_at"], "2027-01-15T08:02:00Z");
        assert_eq!(v["key"], "forewarn-42", "same episode, same key");
    }

    fn webhook(templates: &str) -> Webhook {
        let cfg: crate::sinks::template::TemplateConfig = toml::from_str(templates).expect("toml");
        Webhook {
            url: reqwest::Url::parse("http://127.0.0.1:9/h").expect("url"),
            key: b"k".to_vec(),
            public_url: "https://fw.example".into(),
            client: http::client(Duration::from_secs(1)).expect("client"),
            timeout: Duration::from_secs(1),
            templates: Templates::new(TEMPLATES, &cfg).expect("templates"),
        }
    }

    #[test]
    fn a_body_template_shapes_the_json() {
        let plain = webhook("").body(&notification()).expect("default body");
        let v: serde_json::Value = serde_json::from_slice(&plain).expect("json");
        assert_eq!(v["version"], 1, "no template: the versioned body");

        let shaped = webhook(
            "body = '{\"title\": {{ summary|tojson }}, \"host\": {{ host|tojson }}, \"url\": {{ link|tojson }}}'\n\
             [tenants.globex]\nbody = '{\"only\": \"globex\"}'\n",
        );
        let v: serde_json::Value =
            serde_json::from_slice(&shaped.body(&notification()).expect("shaped")).expect("json");
        assert_eq!(v["host"], "db1");
        assert_eq!(v["url"], "https://fw.example/tickets/42");
        assert!(v["title"].as_str().is_some_and(|t| t.contains("97%")));
        let mut other = notification();
        other.tenant_name = "globex".into();
        let v: serde_json::Value =
            serde_json::from_slice(&shaped.body(&other).expect("tenant")).expect("json");
        assert_eq!(v["only"], "globex");
    }

    #[tokio::test]
    async fn a_body_template_that_is_not_json_parks_the_delivery() {
        let sink = webhook("body = 'not json {{ host }}'\n");
        let n = notification();
        let out = sink
            .deliver(&Delivery {
                notification: &n,
                key: "k1",
                attempts: 0,
                link: None,
            })
            .await;
        assert!(
            matches!(&out, Outcome::Park(r) if r.contains("does not make JSON")),
            "{out:?}"
        );
    }

    #[test]
    fn parse_requires_a_secret_and_a_web_url() {
        let t = |s: &str| toml::from_str::<toml::Table>(s).expect("toml");
        assert!(parse(t("url = \"https://x/h\"\nsecret = \"k\"")).is_ok());
        assert!(parse(t("url = \"https://x/h\"\nsecret_file = \"/etc/k\"")).is_ok());
        let err = |s: &str| parse(t(s)).expect_err("invalid").join("; ");
        assert!(err("url = \"https://x/h\"").contains("secret"));
        assert!(
            err("url = \"https://x/h\"\nsecret = \"k\"\nsecret_file = \"/k\"").contains("not both")
        );
        assert!(err("url = \"mailto:a@b\"\nsecret = \"k\"").contains("url"));
        assert!(err("url = \"http://x\"\nsecret = \"k\"\ntimeout_ms = 1").contains("timeout_ms"));
        assert!(err("secret = \"k\"").contains("url"));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let spec =
            parse(toml::from_str("url = \"https://x/h\"\nsecret = \"hunter2\"").expect("toml"))
                .expect("valid");
        assert!(!format!("{spec:?}").contains("hunter2"));
    }
}

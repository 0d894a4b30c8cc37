//! What the paging and chat sinks (PagerDuty, Slack, Teams) share: the
//! facts of a notification as label/value pairs, the dashboard link, the
//! `timeout_ms` key, and webhook URLs that are secrets.
//!
//! A Slack or Teams webhook URL *is* the credential (anyone holding it can
//! post), so it is a [`SecretRef`] like a password: read at build time,
//! and never echoed in a config problem, a log line or an error.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::secret::SecretRef;
use super::template::Templates;
use super::{Notification, Outcome, Sink, SinkContext, SinkSpec, http};
use crate::domain::rfc3339;
use crate::{Error, Result};

/// Whole-request timeout unless a sink sets `timeout_ms`.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// The default of the chat kinds' `detail` part: the event's own words.
pub const DEFAULT_DETAIL: &str = "{% if detail %}{{ detail }}{% else %}{{ summary }}{% endif %}\
{% if actor != 'engine' %} (by {{ actor }}){% endif %}";

pub fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// The problem with a `timeout_ms` value, if any.
pub fn timeout_problem(ms: u64) -> Option<String> {
    (!(100..=120_000).contains(&ms))
        .then(|| format!("timeout_ms ({ms}) must be between 100 and 120000"))
}

/// The whole-request timeout of a valid `timeout_ms`.
pub fn timeout(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Parse-time problems of a webhook URL kept as a secret: an inline value
/// is checked for its shape without ever quoting it.
pub fn webhook_url_problems(url: &SecretRef, key: &str) -> Vec<String> {
    let mut p = url.problems(key);
    if p.is_empty()
        && let SecretRef::Inline(text) = url
        && let Err(e) = web_url(text, key)
    {
        p.push(e);
    }
    p
}

/// Reads a webhook URL secret (file, environment or inline) at build time.
pub fn read_webhook_url(url: &SecretRef, key: &str) -> Result<reqwest::Url> {
    let secret = url.read(key)?;
    web_url(secret.expose(), key).map_err(Error::Config)
}

/// An http(s) URL with a host; the error names `key`, never the value.
fn web_url(text: &str, key: &str) -> std::result::Result<reqwest::Url, String> {
    match reqwest::Url::parse(text.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(u),
        Ok(_) => Err(format!(
            "{key} must be an http or https URL (value not shown: it is a secret)"
        )),
        Err(e) => Err(format!(
            "{key} is not a URL: {e} (value not shown: it is a secret)"
        )),
    }
}

/// `[[sinks.slack]]` and `[[sinks.teams]]` keys besides the common ones:
/// all a webhook-only chat kind needs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookConfig {
    /// The webhook URL, a secret.
    webhook_url: SecretRef,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

/// A validated webhook-only chat sink config (its `Debug` never shows the
/// URL); `make` turns the built [`Target`] into the kind's sink.
#[derive(Debug)]
pub struct WebhookSpec {
    kind: &'static str,
    webhook_url: SecretRef,
    timeout: Duration,
    make: fn(Target) -> Arc<dyn Sink>,
}

/// Parses a webhook-only chat kind's table (`webhook_url`, `timeout_ms`).
pub fn parse_webhook(
    table: toml::Table,
    kind: &'static str,
    make: fn(Target) -> Arc<dyn Sink>,
) -> std::result::Result<Box<dyn SinkSpec>, Vec<String>> {
    let cfg: WebhookConfig = table
        .try_into()
        .map_err(|e| vec![e.message().to_string()])?;
    let mut problems = webhook_url_problems(&cfg.webhook_url, "webhook_url");
    problems.extend(timeout_problem(cfg.timeout_ms));
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Box::new(WebhookSpec {
        kind,
        webhook_url: cfg.webhook_url,
        timeout: timeout(cfg.timeout_ms),
        make,
    }))
}

impl SinkSpec for WebhookSpec {
    fn build(&self, ctx: &SinkContext, templates: Templates) -> Result<Arc<dyn Sink>> {
        let key = format!("sinks.{} webhook_url", self.kind);
        Ok((self.make)(Target {
            url: read_webhook_url(&self.webhook_url, &key)?,
            public_url: ctx.public_url.trim_end_matches('/').to_string(),
            client: http::client(self.timeout)?,
            timeout: self.timeout,
            templates,
        }))
    }
}

/// Where a chat sink posts, and what it renders with.
pub struct Target {
    /// A secret for the webhook kinds: never logged, never in an error.
    pub url: reqwest::Url,
    pub public_url: String,
    pub client: reqwest::Client,
    /// The whole-request timeout the client was built with.
    pub timeout: Duration,
    pub templates: Templates,
}

impl Target {
    /// POSTs `body` as JSON (or parks with the reason it could not be
    /// made, a template error) and classifies the answer.
    pub async fn post(&self, body: std::result::Result<serde_json::Value, String>) -> Outcome {
        let body = match body {
            Ok(b) => b,
            Err(e) => return Outcome::Park(e),
        };
        let req = self.client.post(self.url.clone()).json(&body);
        match http::send(req, 64 << 10).await {
            Ok(_) => Outcome::Delivered,
            Err(f) => f.outcome(),
        }
    }

    /// A target for unit tests: `url`, public URL `https://fw.example`,
    /// the kind's templates with `overrides` (TOML).
    #[cfg(test)]
    pub fn for_tests(url: &str, kind: &[(&str, &str)], overrides: &str) -> Self {
        Self {
            url: url.parse().expect("url"),
            public_url: "https://fw.example".into(),
            client: http::client(Duration::from_secs(1)).expect("client"),
            timeout: Duration::from_secs(1),
            templates: Templates::new(kind, &toml::from_str(overrides).expect("toml"))
                .expect("templates"),
        }
    }
}

/// The ticket in the dashboard (the same link templates get as `link`).
pub fn ticket_link(public_url: &str, ticket_id: i64) -> String {
    format!("{}/tickets/{ticket_id}", public_url.trim_end_matches('/'))
}

/// One fact of a notification: a machine key (PagerDuty's
/// `custom_details`), a label for people (Slack fields, Teams FactSet) and
/// the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub key: &'static str,
    pub label: &'static str,
    pub value: String,
}

/// The facts every chat and paging message carries, in reading order;
/// empty site, item and detail are left out.
pub fn facts(n: &Notification, link: &str) -> Vec<Fact> {
    let fact = |key, label, value: String| Fact { key, label, value };
    let mut state = format!("{}, ticket {}", n.severity.as_str(), n.state.as_str());
    if let Some(by) = &n.acknowledged_by {
        state.push_str(&format!(", acknowledged by {by}"));
    }
    [
        fact("tenant", "Tenant", n.tenant_name.clone()),
        fact("site", "Site", n.site.clone()),
        fact("host", "Host", n.host.clone()),
        fact("check", "Check", n.check.clone()),
        fact("item", "Item", n.item.clone()),
        fact("state", "State", state),
        fact("priority", "Priority", n.priority.clone()),
        fact("tier", "Tier", format!("L{}", n.tier)),
        fact("detail", "Detail", n.detail.clone()),
        fact("since", "Since", rfc3339::format(n.opened_at)),
        fact("ticket", "Ticket", link.to_string()),
    ]
    .into_iter()
    .filter(|f| !f.value.is_empty())
    .collect()
}

/// At most `max` characters of `s` (an ellipsis marks a cut), on a
/// character boundary: every receiver limits its text fields.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::notification::tests::sample;

    #[test]
    fn facts_read_in_order_and_skip_empty_ones() {
        let mut n = sample();
        n.site = String::new();
        let f = facts(&n, "https://fw/tickets/42");
        let keys: Vec<_> = f.iter().map(|f| f.key).collect();
        assert_eq!(
            keys,
            [
                "tenant", "host", "check", "item", "state", "priority", "tier", "detail", "since",
                "ticket"
            ]
        );
        assert_eq!(f[4].value, "crit, ticket open");
        assert_eq!(f[6].value, "L1");
        assert_eq!(f[8].value, "2027-01-15T08:00:00Z");
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ééééé", 4).chars().count(), 4);
    }

    #[test]
    fn a_bad_webhook_url_is_named_but_never_shown() {
        let bad = SecretRef::Inline("ftp://hooks.example/T1/B2/s3cr3t".into());
        let p = webhook_url_problems(&bad, "webhook_url").join("; ");
        assert!(p.contains("webhook_url") && !p.contains("s3cr3t"), "{p}");
        let junk = SecretRef::Inline("not a url s3cr3t".into());
        let p = webhook_url_problems(&junk, "webhook_url").join("; ");
        assert!(p.contains("webhook_url") && !p.contains("s3cr3t"), "{p}");
        let ok = SecretRef::Inline("https://hooks.slack.com/services/T/B/x".into());
        assert!(webhook_url_problems(&ok, "webhook_url").is_empty());
        let env = SecretRef::Env {
            env: "FOREWARN_TEST_UNSET_HOOK".into(),
        };
        assert!(webhook_url_problems(&env, "webhook_url").is_empty());
        assert!(read_webhook_url(&env, "webhook_url").is_err());
    }

    #[test]
    fn webhook_kinds_need_a_url_and_never_show_it() {
        let t = |s: &str| toml::from_str::<toml::Table>(s).expect("toml");
        for parse in [crate::sinks::slack::parse, crate::sinks::teams::parse] {
            assert!(parse(t("webhook_url = \"https://hooks.example/T/B/x\"")).is_ok());
            assert!(parse(t("webhook_url = { env = \"HOOK\" }")).is_ok());
            assert!(parse(t("webhook_url = { file = \"/etc/forewarn/hook\" }")).is_ok());
            let err = parse(t("timeout_ms = 500")).expect_err("no url").join("; ");
            assert!(err.contains("webhook_url"), "{err}");
            let err = parse(t("webhook_url = \"mailto:s3cr3t@x\"\ntimeout_ms = 999999"))
                .expect_err("bad")
                .join("; ");
            assert!(
                err.contains("webhook_url") && err.contains("timeout_ms"),
                "{err}"
            );
            assert!(!err.contains("s3cr3t"), "{err}");
            let err = parse(t("webhook_url = \"https://x\"\ncolor = 1"))
                .expect_err("unknown key")
                .join("; ");
            assert!(err.contains("color"), "{err}");
            let spec =
                parse(t("webhook_url = \"https://hooks.example/T/B/s3cr3t\"")).expect("valid");
            assert!(!format!("{spec:?}").contains("s3cr3t"));
        }
    }
}

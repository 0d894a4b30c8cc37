//! The Slack sink (`[[sinks.slack]]`): one message per notification through
//! an incoming webhook, in Block Kit blocks with the fallback `text`
//! (shown in notifications and by clients that cannot draw blocks).
//!
//! Slack answers `200 ok` (text/plain). A refusal is a word in the body:
//! 400 `invalid_payload`/`no_text`, 403 `action_prohibited`/`invalid_token`,
//! 404 `no_service`/`channel_not_found`, 410 `channel_is_archived` — all
//! parked with that word; 429 (with `Retry-After`) and 5xx retry
//! ([`super::http`]). The webhook URL is the credential: it is a secret.
//!
//! Health: a POST of `{}` — Slack refuses it with 400 `no_text` and posts
//! nothing, which proves the webhook exists; 403/404/410 mean a revoked or
//! wrong URL.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::template::DEFAULT_TITLE;
use super::{CheckResult, Delivery, Notification, Outcome, Sink, SinkSpec, Status};
use super::{chat, http};
use crate::domain::rfc3339;

/// The template parts: `text` (the fallback and the header) and `detail`
/// (the context line).
pub const TEMPLATES: &[(&str, &str)] = &[("text", DEFAULT_TITLE), ("detail", chat::DEFAULT_DETAIL)];

/// Block Kit limits: a header's text, a section field, a context element.
const HEADER_MAX: usize = 150;
const FIELD_MAX: usize = 2000;
const CONTEXT_MAX: usize = 2000;
/// Slack truncates longer top-level `text`.
const TEXT_MAX: usize = 4000;

/// The registry's parser for `[[sinks.slack]]`: `webhook_url` and
/// `timeout_ms`.
pub fn parse(table: toml::Table) -> std::result::Result<Box<dyn SinkSpec>, Vec<String>> {
    chat::parse_webhook(table, "slack", |t| Arc::new(Slack(t)))
}

/// A Slack incoming webhook (one channel).
pub struct Slack(chat::Target);

/// The status's emoji (Block Kit has no colours outside legacy attachments).
fn emoji(status: Status) -> &'static str {
    match status {
        Status::Firing => ":red_circle:",
        Status::Acknowledged => ":large_yellow_circle:",
        Status::Resolved => ":large_green_circle:",
    }
}

fn plain(text: &str, max: usize) -> Value {
    json!({"type": "plain_text", "text": chat::truncate(text, max), "emoji": true})
}

fn mrkdwn(label: &str, value: &str) -> Value {
    let text = format!("*{label}*\n{}", escape(value));
    json!({"type": "mrkdwn", "text": chat::truncate(&text, FIELD_MAX)})
}

/// Slack's three control characters in message text.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Slack {
    /// The message: fallback `text` plus header, facts, detail and a
    /// button to the ticket.
    fn message(&self, n: &Notification) -> std::result::Result<Value, String> {
        let title = self.0.templates.render("text", n, &self.0.public_url)?;
        let detail = self.0.templates.render("detail", n, &self.0.public_url)?;
        let link = chat::ticket_link(&self.0.public_url, n.ticket_id);
        let check = if n.item.is_empty() {
            n.check.clone()
        } else {
            format!("{} {}", n.check, n.item)
        };
        let place = if n.site.is_empty() {
            n.tenant_name.clone()
        } else {
            format!("{} / {}", n.tenant_name, n.site)
        };
        let fields = [
            mrkdwn("Host", &n.host),
            mrkdwn("Check", &check),
            mrkdwn(
                "Severity",
                &format!("{} ({})", n.severity.as_str(), n.status.as_str()),
            ),
            mrkdwn("Priority", &format!("{} L{}", n.priority, n.tier)),
            mrkdwn("Tenant", &place),
            mrkdwn("Since", &rfc3339::format(n.opened_at)),
        ];
        let mut blocks = vec![
            json!({"type": "header", "text": plain(&format!("{} {}", emoji(n.status), title.trim()), HEADER_MAX)}),
            json!({"type": "section", "fields": fields}),
        ];
        if !detail.trim().is_empty() {
            blocks.push(json!({"type": "context", "elements": [
                {"type": "mrkdwn", "text": chat::truncate(&escape(detail.trim()), CONTEXT_MAX)}
            ]}));
        }
        blocks.push(json!({"type": "actions", "elements": [{
            "type": "button",
            "text": plain("Open ticket", 75),
            "url": link,
            "action_id": "forewarn-open-ticket",
        }]}));
        Ok(json!({
            "text": chat::truncate(&format!("{} {}", emoji(n.status), title.trim()), TEXT_MAX),
            "blocks": blocks,
        }))
    }
}

#[async_trait]
impl Sink for Slack {
    fn request_timeout(&self) -> Duration {
        self.0.timeout
    }

    async fn deliver(&self, d: &Delivery<'_>) -> Outcome {
        self.0.post(self.message(d.notification)).await
    }

    async fn health(&self) -> CheckResult {
        let resp = self
            .0
            .client
            .post(self.0.url.clone())
            .json(&json!({}))
            .send()
            .await
            .map_err(|e| format!("reaching Slack: {}", http::error_chain(&e.without_url())))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        let body = chat::truncate(body.trim(), 200);
        match (status, body.as_str()) {
            (400, "no_text") => Ok(
                "webhook exists: Slack refused an empty message with no_text (nothing was posted)"
                    .to_string(),
            ),
            (400, other) => Err(format!(
                "HTTP 400 {other:?} to an empty message (Slack says no_text): is this a Slack incoming webhook URL?"
            )),
            (403 | 404 | 410, word) => Err(format!(
                "HTTP {status} {word:?}: the webhook URL is wrong, revoked or its channel is gone"
            )),
            (200..=299, _) => Err(format!(
                "HTTP {status} to an empty message (Slack refuses it with no_text): is this a Slack incoming webhook URL?"
            )),
            (_, word) => Err(format!("HTTP {status} {word:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::notification::tests::sample;

    fn slack(templates: &str) -> Slack {
        Slack(chat::Target::for_tests(
            "https://hooks.slack.com/services/T1/B2/x",
            TEMPLATES,
            templates,
        ))
    }

    #[test]
    fn a_message_has_fallback_text_and_known_blocks() {
        let m = slack("").message(&sample()).expect("message");
        assert_eq!(m["text"], ":red_circle: CRIT [P1 L1] db1: disk /data");
        let types: Vec<_> = m["blocks"]
            .as_array()
            .expect("blocks")
            .iter()
            .map(|b| b["type"].as_str().expect("type"))
            .collect();
        assert_eq!(types, ["header", "section", "context", "actions"]);
        let fields = m["blocks"][1]["fields"].as_array().expect("fields");
        assert_eq!(fields.len(), 6);
        assert_eq!(fields[0]["text"], "*Host*\ndb1");
        assert_eq!(fields[1]["text"], "*Check*\ndisk /data");
        assert_eq!(fields[4]["text"], "*Tenant*\nacme / hq");
        assert_eq!(
            m["blocks"][2]["elements"][0]["text"],
            "opened (P1, L1): /data 97% used"
        );
        assert_eq!(
            m["blocks"][3]["elements"][0]["url"],
            "https://fw.example/tickets/42"
        );
    }

    #[test]
    fn status_picks_the_emoji_and_templates_override_per_tenant() {
        let mut n = sample();
        n.status = Status::Resolved;
        n.actor = "ann".into();
        let s = slack("[tenants.acme]\ntext = \"ACME {{ host }}\"\n");
        let m = s.message(&n).expect("message");
        assert_eq!(m["text"], ":large_green_circle: ACME db1");
        assert!(
            m["blocks"][0]["text"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("ACME db1"))
        );
        assert!(
            m["blocks"][2]["elements"][0]["text"]
                .as_str()
                .is_some_and(|t| t.ends_with("(by ann)"))
        );
    }

    #[test]
    fn text_is_escaped_and_cut_to_slack_limits() {
        let mut n = sample();
        n.host = "<!channel> & co".into();
        n.detail = "x".repeat(5000);
        let m = slack("text = \"{% for i in range(100) %}long {% endfor %}\"")
            .message(&n)
            .expect("message");
        assert_eq!(
            m["blocks"][1]["fields"][0]["text"],
            "*Host*\n&lt;!channel&gt; &amp; co"
        );
        let header = m["blocks"][0]["text"]["text"].as_str().expect("header");
        assert_eq!(header.chars().count(), HEADER_MAX);
        let ctx = m["blocks"][2]["elements"][0]["text"].as_str().expect("ctx");
        assert_eq!(ctx.chars().count(), CONTEXT_MAX);
    }
}

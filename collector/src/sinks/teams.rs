//! The Microsoft Teams sink (`[[sinks.teams]]`): an Adaptive Card posted
//! to a Workflows (Power Automate) "When a Teams webhook request is
//! received" trigger, which posts it to a channel or chat.
//!
//! The body is a `message` with one attachment of content type
//! `application/vnd.microsoft.card.adaptive` (card version 1.4, what Teams
//! renders everywhere). The retired Office 365 connector `MessageCard`
//! format is never sent.
//!
//! Workflows answers 202 Accepted. 400 (a card it refused), 401, 403 and 404
//! (a wrong or deleted flow) park; 429 and 5xx retry ([`super::http`]). The
//! trigger URL carries its own signature (`sig=`): it is a secret.
//!
//! Health: a Workflows trigger has no call without side effects (any POST
//! runs the flow), so the check only looks at the URL's shape.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::chat;
use super::template::DEFAULT_TITLE;
use super::{CheckResult, Delivery, Notification, Outcome, Sink, SinkSpec, Status};

/// The template parts: the card's title and detail text blocks.
pub const TEMPLATES: &[(&str, &str)] =
    &[("title", DEFAULT_TITLE), ("detail", chat::DEFAULT_DETAIL)];

/// The attachment content type of an Adaptive Card.
pub const CARD_CONTENT_TYPE: &str = "application/vnd.microsoft.card.adaptive";
/// The card schema version sent.
pub const CARD_VERSION: &str = "1.4";
/// Hosts Workflows trigger URLs live under (a URL elsewhere is only a
/// warning: a proxy or a test receiver may stand in front).
const WORKFLOW_HOSTS: [&str; 3] = ["logic.azure.com", "powerplatform.com", "webhook.office.com"];

/// The registry's parser for `[[sinks.teams]]`: `webhook_url` and
/// `timeout_ms`.
pub fn parse(table: toml::Table) -> std::result::Result<Box<dyn SinkSpec>, Vec<String>> {
    chat::parse_webhook(table, "teams", |t| Arc::new(Teams(t)))
}

/// A Teams channel (or chat) behind a Workflows webhook.
pub struct Teams(chat::Target);

/// The title's colour: Adaptive Cards name colours by meaning.
fn color(status: Status) -> &'static str {
    match status {
        Status::Firing => "Attention",
        Status::Acknowledged => "Warning",
        Status::Resolved => "Good",
    }
}

impl Teams {
    /// The Workflows message carrying the card.
    fn message(&self, n: &Notification) -> std::result::Result<Value, String> {
        let title = self.0.templates.render("title", n, &self.0.public_url)?;
        let detail = self.0.templates.render("detail", n, &self.0.public_url)?;
        let link = chat::ticket_link(&self.0.public_url, n.ticket_id);
        let facts: Vec<Value> = chat::facts(n, &link)
            .into_iter()
            .filter(|f| f.key != "detail" && f.key != "ticket")
            .map(|f| json!({"title": f.label, "value": f.value}))
            .collect();
        let mut body = vec![
            json!({"type": "TextBlock", "text": title.trim(), "weight": "Bolder",
                   "size": "Medium", "wrap": true, "color": color(n.status)}),
            json!({"type": "FactSet", "facts": facts}),
        ];
        if !detail.trim().is_empty() {
            body.push(json!({"type": "TextBlock", "text": detail.trim(), "wrap": true}));
        }
        Ok(json!({
            "type": "message",
            "attachments": [{
                "contentType": CARD_CONTENT_TYPE,
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": CARD_VERSION,
                    "body": body,
                    "actions": [{"type": "Action.OpenUrl", "title": "Open ticket", "url": link}],
                },
            }],
        }))
    }
}

/// What the URL's shape says, without quoting the URL (only its host,
/// which is not the secret part).
fn shape(url: &reqwest::Url) -> std::result::Result<String, String> {
    let host = url.host_str().unwrap_or_default();
    let known = WORKFLOW_HOSTS
        .iter()
        .any(|h| host == *h || host.ends_with(&format!(".{h}")));
    let mut warnings = Vec::new();
    if url.scheme() != "https" {
        warnings.push("it is not https".to_string());
    }
    if !known {
        warnings.push(format!(
            "its host {host} is not under {} (fine for a proxy in front of Workflows)",
            WORKFLOW_HOSTS.join(", ")
        ));
    }
    let what = "a Workflows trigger has no call without side effects (a POST runs the flow), \
                so only the URL's shape was checked";
    if warnings.is_empty() {
        Ok(format!("{what}: https on a Workflows host"))
    } else {
        Ok(format!("{what}; warning: {}", warnings.join("; ")))
    }
}

#[async_trait]
impl Sink for Teams {
    fn request_timeout(&self) -> Duration {
        self.0.timeout
    }

    async fn deliver(&self, d: &Delivery<'_>) -> Outcome {
        self.0.post(self.message(d.notification)).await
    }

    async fn health(&self) -> CheckResult {
        shape(&self.0.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::notification::tests::sample;

    fn teams(templates: &str) -> Teams {
        Teams(chat::Target::for_tests(
            "https://prod-1.westus.logic.azure.com/workflows/x/triggers/manual/paths/invoke",
            TEMPLATES,
            templates,
        ))
    }

    #[test]
    fn the_card_is_an_adaptive_card_in_a_message() {
        let m = teams("").message(&sample()).expect("message");
        assert_eq!(m["type"], "message");
        let a = &m["attachments"][0];
        assert_eq!(a["contentType"], CARD_CONTENT_TYPE);
        assert!(a["contentUrl"].is_null());
        let c = &a["content"];
        assert_eq!(c["type"], "AdaptiveCard");
        assert_eq!(c["version"], "1.4");
        assert_eq!(c["body"][0]["text"], "CRIT [P1 L1] db1: disk /data");
        assert_eq!(c["body"][0]["color"], "Attention");
        assert_eq!(c["body"][1]["type"], "FactSet");
        assert_eq!(c["body"][1]["facts"][0]["title"], "Tenant");
        assert_eq!(c["body"][1]["facts"][0]["value"], "acme");
        assert_eq!(c["body"][2]["text"], "opened (P1, L1): /data 97% used");
        assert_eq!(c["actions"][0]["type"], "Action.OpenUrl");
        assert_eq!(c["actions"][0]["url"], "https://fw.example/tickets/42");
        assert!(!m.to_string().contains("MessageCard"));
    }

    #[test]
    fn colour_follows_status_and_templates_override() {
        let mut n = sample();
        n.status = Status::Acknowledged;
        let m = teams("title = \"T {{ host }}\"\ndetail = \"D {{ check }}\"")
            .message(&n)
            .expect("message");
        let body = &m["attachments"][0]["content"]["body"];
        assert_eq!(body[0]["text"], "T db1");
        assert_eq!(body[0]["color"], "Warning");
        assert_eq!(body[2]["text"], "D disk");
        n.status = Status::Resolved;
        let m = teams("").message(&n).expect("message");
        assert_eq!(m["attachments"][0]["content"]["body"][0]["color"], "Good");
    }

    #[test]
    fn health_judges_the_url_shape_without_quoting_its_secret_part() {
        let ok = shape(
            &"https://x.environment.api.powerplatform.com/powerautomate/automations/direct/workflows/w/triggers/manual/paths/invoke?sig=s3cr3t"
                .parse()
                .expect("url"),
        )
        .expect("ok");
        assert!(
            ok.contains("Workflows host") && !ok.contains("warning"),
            "{ok}"
        );
        let warn = shape(&"http://127.0.0.1:9/hook?sig=s3cr3t".parse().expect("url")).expect("ok");
        assert!(
            warn.contains("warning") && warn.contains("not https"),
            "{warn}"
        );
        assert!(!warn.contains("s3cr3t"), "{warn}");
        let lookalike = shape(&"https://evillogic.azure.com/x".parse().expect("url")).expect("ok");
        assert!(lookalike.contains("warning"), "{lookalike}");
    }
}

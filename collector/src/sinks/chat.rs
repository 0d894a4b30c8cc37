//! What the paging and chat sinks (PagerDuty, Slack, Teams) share: the
//! facts of a notification as label/value pairs, the dashboard link, the
//! `timeout_ms` key, and webhook URLs that are secrets.
//!
//! A Slack or Teams webhook URL *is* the credential (anyone holding it can
//! post), so it is a [`SecretRef`] like a password: read at build time,
//! and never echoed in a config problem, a log line or an error.

use std::time::Duration;

use super::Notification;
use super::secret::SecretRef;
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
}

//! One notification → one email: recipients, threading headers, and a
//! multipart/alternative body (text, then HTML) from the sink's templates.
//!
//! Threading: every message about a ticket names the ticket's root id,
//! `<forewarn-ticket-{ticket}.{tenant}@{from domain}>`, in `In-Reply-To`
//! and `References`; the `opened` event's message *is* the root (its
//! `Message-ID`). Later events get
//! `<forewarn-ticket-{ticket}-event-{event}.{tenant}@{domain}>`, the same
//! on every retry, so a mail client (or a person) recognizes a repeat whose
//! first answer got lost. Mail clients thread on these headers, so open,
//! acknowledge, escalate and resolve read as one conversation.

use std::time::{Duration, SystemTime};

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};

use super::config::EmailSpec;
use crate::sinks::Notification;
use crate::sinks::template::{DEFAULT_BODY, DEFAULT_TITLE, Templates};

/// The email's template parts: `subject`, `body` (text/plain) and `html`
/// (text/html; autoescape is off, so the default escapes with `|e`).
pub const TEMPLATES: &[(&str, &str)] = &[
    ("subject", DEFAULT_TITLE),
    ("body", DEFAULT_BODY),
    ("html", DEFAULT_HTML),
];

/// Names the Forewarn ticket a message is about (its id).
pub const TICKET_HEADER: &str = "X-Forewarn-Ticket";
/// Names the timeline event (`opened`, `acknowledged`, …).
pub const EVENT_HEADER: &str = "X-Forewarn-Event";

/// The HTML part every email sink starts from: the facts in a small table
/// and a button to the ticket; inline styles only (mail clients drop
/// `<style>` blocks).
pub const DEFAULT_HTML: &str = r##"<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{ summary|e }}</title></head>
<body style="margin:0;padding:16px;background:#f4f5f7;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1f2328;">
{%- set colour = '#1a7f37' if status == 'resolved' else ('#0969da' if status == 'acknowledged' else ('#cf222e' if severity == 'crit' else '#9a6700')) %}
<div style="max-width:600px;margin:0 auto;background:#ffffff;border:1px solid #d0d7de;border-top:4px solid {{ colour }};border-radius:6px;padding:20px;">
<p style="margin:0 0 4px;font-size:12px;color:{{ colour }};font-weight:600;text-transform:uppercase;letter-spacing:.04em;">{{ status|e }} &middot; {{ event|e }}{% if actor != 'engine' %} by {{ actor|e }}{% endif %}</p>
<h1 style="margin:0 0 16px;font-size:18px;line-height:1.35;">{{ summary|e }}</h1>
<table role="presentation" cellpadding="0" cellspacing="0" style="border-collapse:collapse;width:100%;font-size:14px;line-height:1.5;">
<tr><td style="padding:3px 16px 3px 0;color:#57606a;white-space:nowrap;vertical-align:top;">Tenant</td><td>{{ tenant|e }}{% if site %} / site {{ site|e }}{% endif %}</td></tr>
<tr><td style="padding:3px 16px 3px 0;color:#57606a;white-space:nowrap;vertical-align:top;">Host</td><td>{{ host|e }}</td></tr>
<tr><td style="padding:3px 16px 3px 0;color:#57606a;white-space:nowrap;vertical-align:top;">Check</td><td>{{ check|e }}{% if item %} ({{ item|e }}){% endif %}</td></tr>
<tr><td style="padding:3px 16px 3px 0;color:#57606a;white-space:nowrap;vertical-align:top;">State</td><td>{{ severity|e }}, ticket {{ state|e }}</td></tr>
<tr><td style="padding:3px 16px 3px 0;color:#57606a;white-space:nowrap;vertical-align:top;">Priority</td><td>{{ priority|e }}, L{{ tier }}</td></tr>
<tr><td style="padding:3px 16px 3px 0;color:#57606a;white-space:nowrap;vertical-align:top;">Since</td><td>{{ since }}</td></tr>
{%- if detail %}
<tr><td style="padding:3px 16px 3px 0;color:#57606a;white-space:nowrap;vertical-align:top;">Detail</td><td>{{ detail|e }}</td></tr>
{%- endif %}
</table>
<p style="margin:20px 0 0;"><a href="{{ link|e }}" style="display:inline-block;padding:9px 16px;background:{{ colour }};color:#ffffff;text-decoration:none;border-radius:6px;font-weight:600;">Open ticket #{{ ticket_id }}</a></p>
</div>
<p style="max-width:600px;margin:8px auto 0;font-size:12px;color:#57606a;">Sent by Forewarn. Replies to this address are not read by Forewarn.</p>
</body></html>
"##;

/// The ticket's thread root: the `opened` message's id, referenced by
/// every later message about the ticket.
pub fn root_id(n: &Notification, domain: &str) -> String {
    format!(
        "<forewarn-ticket-{}.{}@{domain}>",
        n.ticket_id,
        atom(&n.tenant_id)
    )
}

/// This event's message id (the root for `opened`).
pub fn message_id(n: &Notification, domain: &str) -> String {
    if n.event == "opened" {
        return root_id(n, domain);
    }
    format!(
        "<forewarn-ticket-{}-event-{}.{}@{domain}>",
        n.ticket_id,
        n.event_id,
        atom(&n.tenant_id)
    )
}

/// Only what a message id's left part allows unquoted (tenant ids are
/// UUIDs; this keeps any other id valid).
fn atom(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

/// The recipients of `n`: its tenant's own list (by name, then id) if the
/// sink has one, else `to`; empty when neither covers the tenant.
pub fn recipients<'a>(spec: &'a EmailSpec, n: &Notification) -> &'a [Mailbox] {
    spec.to_tenants
        .get(&n.tenant_name)
        .or_else(|| spec.to_tenants.get(&n.tenant_id))
        .map_or(spec.to.as_slice(), Vec::as_slice)
}

/// The message for `n`, or why it cannot be made (a template that fails,
/// a tenant without recipients): such a delivery parks.
pub fn build(
    spec: &EmailSpec,
    templates: &Templates,
    public_url: &str,
    n: &Notification,
) -> std::result::Result<Message, String> {
    let to = recipients(spec, n);
    if to.is_empty() {
        return Err(format!(
            "no recipients for tenant {:?}: add it to to_tenants or set to",
            n.tenant_name
        ));
    }
    let subject = templates.render("subject", n, public_url)?;
    // One line: a template's newlines would break the header.
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = templates.render("body", n, public_url)?;
    let html = templates.render("html", n, public_url)?;
    let domain = spec.from.email.domain();
    let root = root_id(n, domain);
    let mut b = Message::builder()
        .from(spec.from.clone())
        .subject(subject)
        .message_id(Some(message_id(n, domain)))
        // The event's time: the same on every retry.
        .date(SystemTime::UNIX_EPOCH + Duration::from_millis(n.at.max(0).unsigned_abs()))
        .user_agent(concat!("forewarn-collector/", env!("CARGO_PKG_VERSION")).to_string());
    for m in to {
        b = b.to(m.clone());
    }
    if n.event != "opened" {
        b = b.in_reply_to(root.clone()).references(root);
    }
    b = b
        .raw_header(raw(TICKET_HEADER, n.ticket_id.to_string()))
        .raw_header(raw(EVENT_HEADER, n.event.clone()))
        // RFC 3834: machine-made, so out-of-office replies stay quiet.
        .raw_header(raw("Auto-Submitted", "auto-generated".to_string()));
    b.multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| format!("building the message: {e}"))
}

fn raw(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::email::config::tests::spec;
    use crate::sinks::notification::tests::sample;
    use crate::sinks::template::TemplateConfig;

    const SPEC: &str = "host = \"smtp.example\"\nfrom = \"Forewarn <alerts@msp.example>\"\n\
        to = [\"noc@msp.example\", \"Night Desk <night@msp.example>\"]\n\
        [to_tenants]\nglobex = [\"ops@globex.example\"]\n";

    fn templates() -> Templates {
        Templates::new(TEMPLATES, &TemplateConfig::default()).expect("defaults parse")
    }

    fn formatted(n: &Notification) -> String {
        let m = build(&spec(SPEC), &templates(), "https://fw.example", n).expect("builds");
        String::from_utf8(m.formatted()).expect("ascii message")
    }

    fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
        let head = msg.split("\r\n\r\n").next().unwrap_or_default();
        head.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
    }

    #[test]
    fn the_opened_message_is_the_thread_root() {
        let n = sample();
        let m = formatted(&n);
        assert_eq!(
            header(&m, "Message-ID"),
            Some("<forewarn-ticket-42.t-1@msp.example>")
        );
        assert_eq!(header(&m, "In-Reply-To"), None);
        assert_eq!(header(&m, "References"), None);
        assert_eq!(header(&m, "X-Forewarn-Ticket"), Some("42"));
        assert_eq!(header(&m, "X-Forewarn-Event"), Some("opened"));
        assert_eq!(header(&m, "Auto-Submitted"), Some("auto-generated"));
        assert_eq!(header(&m, "Subject"), Some("CRIT [P1 L1] db1: disk /data"));
        assert_eq!(header(&m, "From"), Some("Forewarn <alerts@msp.example>"));
        let to = header(&m, "To").expect("To");
        assert!(
            to.contains("noc@msp.example") && to.contains("night@msp.example"),
            "{to}"
        );
        assert_eq!(header(&m, "Date"), Some("Fri, 15 Jan 2027 08:00:00 +0000"));
    }

    #[test]
    fn later_events_reply_to_the_root_with_their_own_stable_id() {
        let mut n = sample();
        n.event = "acknowledged".into();
        n.event_id = 9;
        n.status = crate::sinks::Status::Acknowledged;
        let m = formatted(&n);
        let root = "<forewarn-ticket-42.t-1@msp.example>";
        assert_eq!(
            header(&m, "Message-ID"),
            Some("<forewarn-ticket-42-event-9.t-1@msp.example>")
        );
        assert_eq!(header(&m, "In-Reply-To"), Some(root));
        assert_eq!(header(&m, "References"), Some(root));
        assert!(header(&m, "Subject").is_some_and(|s| s.starts_with("ACKNOWLEDGED ")));
        // A retry makes the same ids.
        assert_eq!(
            header(&formatted(&n), "Message-ID"),
            header(&m, "Message-ID")
        );
    }

    /// The decoded content of the part of type `ctype`.
    fn part(msg: &str, ctype: &str) -> String {
        let at = msg.find(&format!("Content-Type: {ctype}")).expect("part");
        let rest = &msg[at..];
        let body = &rest[rest.find("\r\n\r\n").expect("part body") + 4..];
        let body = &body[..body.find("\r\n--").expect("boundary")];
        // Quoted-printable: soft line breaks and the escaped '='.
        body.replace("=\r\n", "").replace("=3D", "=")
    }

    #[test]
    fn the_body_is_text_then_html_with_escaped_values() {
        let mut n = sample();
        n.summary = "CRIT disk on <db1> & co".into();
        let m = formatted(&n);
        assert!(
            header(&m, "Content-Type").is_some_and(|c| c.starts_with("multipart/alternative;")),
            "{m}"
        );
        let text_at = m.find("Content-Type: text/plain").expect("text part");
        let html_at = m.find("Content-Type: text/html").expect("html part");
        assert!(
            text_at < html_at,
            "text first: clients show the last part they can"
        );
        let text = part(&m, "text/plain; charset=utf-8");
        assert!(text.starts_with("CRIT disk on <db1> & co\r\n"), "{text}");
        assert!(text.contains("Tenant:   acme / site hq"), "{text}");
        let html = part(&m, "text/html; charset=utf-8");
        assert!(html.contains("<h1 "), "{html}");
        assert!(
            html.contains(">CRIT disk on &lt;db1&gt; &amp; co</h1>"),
            "{html}"
        );
        assert!(!html.contains("<db1>"), "values are escaped: {html}");
        assert!(html.contains("<td>acme / site hq</td>"), "{html}");
        assert!(html.contains("Open ticket #42</a>"), "{html}");
    }

    #[test]
    fn a_tenant_list_replaces_to_and_an_uncovered_tenant_parks() {
        let mut n = sample();
        n.tenant_name = "globex".into();
        let to = header(&formatted(&n), "To").expect("To").to_string();
        assert_eq!(to, "ops@globex.example");
        // By id as well as by name.
        let s = spec(
            "host = \"h\"\nfrom = \"a@msp.example\"\n[to_tenants]\nt-1 = [\"first@acme.example\"]\n",
        );
        let n = sample();
        assert_eq!(
            recipients(&s, &n)[0].email.to_string(),
            "first@acme.example"
        );
        let mut other = sample();
        other.tenant_id = "t-2".into();
        other.tenant_name = "initech".into();
        let err = build(&s, &templates(), "x", &other).expect_err("no recipients");
        assert!(
            err.contains("initech") && err.contains("to_tenants"),
            "{err}"
        );
    }

    #[test]
    fn a_multiline_subject_template_becomes_one_line() {
        let t = Templates::new(
            TEMPLATES,
            &toml::from_str("subject = \"{{ host }}\\n{{ check }}\"").expect("toml"),
        )
        .expect("valid");
        let m = build(&spec(SPEC), &t, "x", &sample()).expect("builds");
        let m = String::from_utf8(m.formatted()).expect("ascii");
        assert_eq!(header(&m, "Subject"), Some("db1 disk"));
    }
}

//! Templates for what a sink says: a title and a body (and, per kind, more
//! parts such as an email's HTML), written in minijinja (Jinja2 syntax) so
//! an MSP can reword them per sink and per tenant without rebuilding.
//!
//! Every kind ships defaults that read well; a sink's table overrides any
//! of them, and a tenant's entry overrides the sink's:
//!
//! ```toml
//! [[sinks.email]]
//! name = "helpdesk"
//! # …
//! [sinks.email.templates]
//! title = "[{{ priority }}] {{ host }}: {{ check }} {{ severity }}"
//! [sinks.email.templates.tenants.acme]
//! title = "ACME ALERT {{ host }} {{ check }}"
//! ```
//!
//! The variables: every field of the notification (`status`, `event`,
//! `detail`, `actor`, `ticket_id`, `tenant_id`, `tenant_name`, `site`,
//! `host`, `agent_id`, `check`, `item`, `severity`, `priority`, `tier`,
//! `flapping`, `state`, `summary`, `assignee`, `acknowledged_by`,
//! `resolved_by`), plus `tenant` (the name), `since` and `at` (RFC 3339),
//! `link` (the ticket in the dashboard) and `key` (the episode key).
//! Rendering is bounded (minijinja fuel), so a runaway template fails
//! that one delivery (parked, with the reason) instead of the collector.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Notification;
use crate::domain::rfc3339;

/// The title every kind starts from.
pub const DEFAULT_TITLE: &str = "{% if status == 'resolved' %}RESOLVED{% elif status == 'acknowledged' %}ACKNOWLEDGED{% else %}{{ severity|upper }}{% endif %} \
[{{ priority }} L{{ tier }}] {{ host }}: {{ check }}{% if item %} {{ item }}{% endif %}";

/// The plain-text body every kind starts from.
pub const DEFAULT_BODY: &str = "{{ summary }}

Tenant:   {{ tenant }}{% if site %} / site {{ site }}{% endif %}
Host:     {{ host }}
Check:    {{ check }}{% if item %} ({{ item }}){% endif %}
State:    {{ severity }}, ticket {{ state }} ({{ event }}{% if actor != 'engine' %} by {{ actor }}{% endif %})
Priority: {{ priority }}, L{{ tier }}
Since:    {{ since }}
{% if detail %}Detail:   {{ detail }}
{% endif %}Ticket:   {{ link }}
";

/// Fuel per render: far beyond any sane notification template.
const FUEL: u64 = 50_000;

/// `[sinks.<kind>.templates]`: overrides of the kind's defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TemplateConfig {
    #[serde(flatten)]
    pub parts: BTreeMap<String, toml::Value>,
}

/// A sink's templates: its kind's defaults, the sink's overrides and each
/// tenant's overrides, checked at start.
#[derive(Debug, Clone)]
pub struct Templates {
    base: BTreeMap<String, String>,
    /// Tenant name or id → part → source.
    tenants: BTreeMap<String, BTreeMap<String, String>>,
}

/// What a template sees: the notification's fields and a few made for
/// reading.
#[derive(Serialize)]
struct View<'a> {
    #[serde(flatten)]
    n: &'a Notification,
    tenant: &'a str,
    since: String,
    at: String,
    link: String,
    key: String,
}

impl Templates {
    /// The templates of a sink of a kind whose defaults are `defaults`
    /// (part name → source), with `cfg`'s overrides. The error names the
    /// part (and tenant) whose template does not parse, or an unknown part.
    pub fn new(
        defaults: &[(&str, &str)],
        cfg: &TemplateConfig,
    ) -> std::result::Result<Self, String> {
        let base: BTreeMap<String, String> = defaults
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        let known = || base.keys().cloned().collect::<Vec<_>>().join(", ");
        let mut out = Self {
            base: base.clone(),
            tenants: BTreeMap::new(),
        };
        for (part, value) in &cfg.parts {
            if part == "tenants" {
                let Some(tenants) = value.as_table() else {
                    return Err("templates.tenants must be a table of tenants".to_string());
                };
                for (tenant, parts) in tenants {
                    let Some(parts) = parts.as_table() else {
                        return Err(format!("templates.tenants.{tenant} must be a table"));
                    };
                    let mut own = BTreeMap::new();
                    for (p, v) in parts {
                        let at = format!("templates.tenants.{tenant}.{p}");
                        let src = source(&at, v, base.contains_key(p), &known())?;
                        own.insert(p.clone(), src);
                    }
                    out.tenants.insert(tenant.clone(), own);
                }
                continue;
            }
            let at = format!("templates.{part}");
            let src = source(&at, value, base.contains_key(part), &known())?;
            out.base.insert(part.clone(), src);
        }
        Ok(out)
    }

    /// Renders `part` for `n` (the tenant's own template if it has one);
    /// `public_url` makes the dashboard link.
    pub fn render(
        &self,
        part: &str,
        n: &Notification,
        public_url: &str,
    ) -> std::result::Result<String, String> {
        let src = self
            .tenants
            .get(&n.tenant_name)
            .or_else(|| self.tenants.get(&n.tenant_id))
            .and_then(|t| t.get(part))
            .or_else(|| self.base.get(part))
            .ok_or_else(|| format!("no template {part:?}"))?;
        let view = View {
            n,
            tenant: &n.tenant_name,
            since: rfc3339::format(n.opened_at),
            at: rfc3339::format(n.at),
            link: format!(
                "{}/tickets/{}",
                public_url.trim_end_matches('/'),
                n.ticket_id
            ),
            key: n.episode_key(),
        };
        let mut env = environment();
        env.set_fuel(Some(FUEL));
        env.render_str(src, minijinja::Value::from(minijinja::value::Serde(&view)))
            .map_err(|e| format!("template {part:?}: {e}"))
    }
}

fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    // Plain text: the kinds that send HTML or JSON escape for themselves
    // (`|e`, `|tojson`) where they need to.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env
}

/// A configured template's source, checked to parse.
fn source(
    at: &str,
    value: &toml::Value,
    known: bool,
    parts: &str,
) -> std::result::Result<String, String> {
    if !known {
        return Err(format!("{at}: unknown template (this kind has: {parts})"));
    }
    let Some(src) = value.as_str() else {
        return Err(format!("{at} must be a string"));
    };
    let env = environment();
    env.template_from_str(src)
        .map_err(|e| format!("{at}: {e}"))?;
    Ok(src.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::notification::tests::sample;

    fn cfg(text: &str) -> TemplateConfig {
        toml::from_str(text).expect("toml")
    }

    const KIND: &[(&str, &str)] = &[("title", DEFAULT_TITLE), ("body", DEFAULT_BODY)];

    #[test]
    fn defaults_read_well() {
        let t = Templates::new(KIND, &TemplateConfig::default()).expect("valid");
        let n = sample();
        assert_eq!(
            t.render("title", &n, "https://fw.example/").expect("title"),
            "CRIT [P1 L1] db1: disk /data"
        );
        let body = t.render("body", &n, "https://fw.example").expect("body");
        for want in [
            "CRIT disk /data on db1",
            "Tenant:   acme / site hq",
            "Since:    2027-01-15T08:00:00Z",
            "Ticket:   https://fw.example/tickets/42",
        ] {
            assert!(body.contains(want), "{want:?} not in:\n{body}");
        }
        let mut resolved = sample();
        resolved.status = crate::sinks::Status::Resolved;
        assert!(
            t.render("title", &resolved, "x")
                .expect("title")
                .starts_with("RESOLVED ")
        );
    }

    #[test]
    fn a_tenant_overrides_the_sink_which_overrides_the_kind() {
        let t = Templates::new(
            KIND,
            &cfg(
                "title = \"S {{ host }}\"\n[tenants.acme]\ntitle = \"A {{ host }} {{ tenant }}\"\n",
            ),
        )
        .expect("valid");
        let mut n = sample();
        assert_eq!(t.render("title", &n, "x").expect("acme"), "A db1 acme");
        n.tenant_name = "globex".into();
        assert_eq!(t.render("title", &n, "x").expect("other"), "S db1");
        assert!(t.render("body", &n, "x").expect("body").contains("db1"));
    }

    #[test]
    fn bad_templates_are_named() {
        let err = Templates::new(KIND, &cfg("title = \"{{ host \"\n")).expect_err("syntax");
        assert!(err.contains("templates.title"), "{err}");
        let err = Templates::new(KIND, &cfg("subject = \"x\"\n")).expect_err("unknown");
        assert!(
            err.contains("templates.subject") && err.contains("title, body")
                || err.contains("body, title"),
            "{err}"
        );
        let err = Templates::new(KIND, &cfg("[tenants.acme]\nbody = \"{% if %}\"\n"))
            .expect_err("tenant");
        assert!(err.contains("templates.tenants.acme.body"), "{err}");
        // An unknown variable fails the render with its name.
        let t = Templates::new(KIND, &cfg("title = \"{{ hostname }}\"\n")).expect("parses");
        let err = t.render("title", &sample(), "x").expect_err("undefined");
        assert!(err.contains("title"), "{err}");
    }

    #[test]
    fn a_runaway_template_runs_out_of_fuel() {
        let t = Templates::new(
            KIND,
            &cfg("body = \"{% for a in range(1000) %}{% for b in range(1000) %}x{% endfor %}{% endfor %}\"\n"),
        )
        .expect("parses");
        assert!(t.render("body", &sample(), "x").is_err());
    }
}

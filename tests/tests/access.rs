//! The access model on the real collector: every route × every role ×
//! own/other tenant, for API keys and browser sessions alike; sessions
//! that survive a restart; CSRF; login limits and setup links.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::Collector;
use common::sim::{SimAgent, State};
use forewarn_collector::access::authz::{Need, RULES};
use reqwest::{Client, Method, StatusCode, redirect};
use serde_json::{Value, json};

/// What a path parameter names, so each case gets a real id of the
/// caller's own tenant or of the other one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    None,
    Agent,
    Ticket,
    Token,
    Window,
    Silence,
    Operator,
    Key,
    Asset,
    /// `{tenant}/{month}`: a tenant's report.
    Report,
    /// A configured sink's name.
    Sink,
    /// An outbox row (a delivery of the tenant's ticket).
    Outbox,
}

/// The one sink of the test's collector: a webhook to a closed port, so
/// its deliveries stay pending (retrying).
const SINK: &str =
    "[[sinks.webhook]]\nname = \"ops\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"k\"\n";

/// Every route the test covers, with what its `{…}` stands for. Must be
/// exactly the collector's rule table: a route added without a case here
/// fails `every_rule_has_a_case`.
const CASES: &[(&str, &str, Param)] = &[
    ("GET", "/healthz", Param::None),
    ("GET", "/metrics", Param::None),
    ("GET", "/assets/{file}", Param::Asset),
    ("GET", "/login", Param::None),
    ("POST", "/login", Param::None),
    ("POST", "/logout", Param::None),
    ("GET", "/setup", Param::None),
    ("POST", "/setup", Param::None),
    ("GET", "/", Param::None),
    ("GET", "/hosts/{id}", Param::Agent),
    ("GET", "/noc", Param::None),
    ("GET", "/events", Param::None),
    ("GET", "/api/v1/openapi.json", Param::None),
    ("GET", "/api/v1/tenants", Param::None),
    ("GET", "/api/v1/agents", Param::None),
    ("GET", "/api/v1/agents/{id}", Param::Agent),
    ("GET", "/api/v1/agents/{id}/metrics", Param::Agent),
    ("POST", "/api/v1/agents/{id}/revoke", Param::Agent),
    ("GET", "/api/v1/tickets", Param::None),
    ("GET", "/api/v1/tickets/{id}", Param::Ticket),
    ("POST", "/api/v1/tickets/{id}/acknowledge", Param::Ticket),
    ("POST", "/api/v1/tickets/{id}/assign", Param::Ticket),
    ("POST", "/api/v1/tickets/{id}/escalate", Param::Ticket),
    ("POST", "/api/v1/tickets/{id}/notes", Param::Ticket),
    ("POST", "/api/v1/tickets/{id}/resolve", Param::Ticket),
    ("GET", "/api/v1/audit", Param::None),
    ("GET", "/api/v1/kpis", Param::None),
    ("GET", "/api/v1/outbox", Param::None),
    ("POST", "/api/v1/outbox/{id}/retry", Param::Outbox),
    ("POST", "/api/v1/outbox/retry", Param::None),
    ("GET", "/api/v1/sinks", Param::None),
    ("POST", "/api/v1/sinks/{name}/test", Param::Sink),
    ("GET", "/api/v1/tokens", Param::None),
    ("POST", "/api/v1/tokens/{id}/revoke", Param::Token),
    ("GET", "/api/v1/maintenance", Param::None),
    ("POST", "/api/v1/maintenance", Param::None),
    ("DELETE", "/api/v1/maintenance/{id}", Param::Window),
    ("GET", "/api/v1/silences", Param::None),
    ("POST", "/api/v1/silences", Param::None),
    ("DELETE", "/api/v1/silences/{id}", Param::Silence),
    ("GET", "/api/v1/operators", Param::None),
    ("POST", "/api/v1/operators", Param::None),
    ("POST", "/api/v1/operators/{name}/disable", Param::Operator),
    ("POST", "/api/v1/operators/{name}/enable", Param::Operator),
    ("POST", "/api/v1/operators/{name}/revoke", Param::Operator),
    ("POST", "/api/v1/operators/{name}/reset", Param::Operator),
    ("GET", "/api/v1/keys", Param::None),
    ("POST", "/api/v1/keys", Param::None),
    ("POST", "/api/v1/keys/{id}/disable", Param::Key),
    ("POST", "/api/v1/keys/{id}/enable", Param::Key),
    ("POST", "/api/v1/keys/{id}/revoke", Param::Key),
    ("GET", "/api/v1/me", Param::None),
    // === dashboard pages and forms ===
    ("GET", "/tickets", Param::None),
    ("POST", "/tickets/act", Param::None),
    ("GET", "/tickets/{id}", Param::Ticket),
    ("POST", "/tickets/{id}/act", Param::Ticket),
    ("GET", "/maintenance", Param::None),
    ("POST", "/maintenance/windows", Param::None),
    ("POST", "/maintenance/silences", Param::None),
    ("POST", "/maintenance/{id}/delete", Param::Window),
    ("GET", "/policies", Param::None),
    ("POST", "/policies/time-zone", Param::None),
    ("GET", "/reports", Param::None),
    ("GET", "/reports/{tenant}/{month}", Param::Report),
    ("GET", "/audit", Param::None),
    ("GET", "/admin", Param::None),
    ("POST", "/admin/operators", Param::None),
    ("POST", "/admin/operators/{name}/{op}", Param::Operator),
    ("POST", "/admin/keys", Param::None),
    ("POST", "/admin/keys/{id}/{op}", Param::Key),
    ("GET", "/tokens", Param::None),
    ("POST", "/tokens", Param::None),
    ("POST", "/tokens/{id}/revoke", Param::Token),
    ("GET", "/sinks", Param::None),
    ("POST", "/sinks/{name}/test", Param::Sink),
    ("POST", "/sinks/retry/{id}", Param::Outbox),
];

#[test]
fn every_rule_has_a_case() {
    let rules: BTreeSet<_> = RULES.iter().map(|r| (r.method, r.path)).collect();
    let cases: BTreeSet<_> = CASES.iter().map(|(m, p, _)| (*m, *p)).collect();
    let missing: Vec<_> = rules.difference(&cases).collect();
    let extra: Vec<_> = cases.difference(&rules).collect();
    assert!(
        missing.is_empty(),
        "routes with a rule but no case: {missing:?}"
    );
    assert!(extra.is_empty(), "cases for routes with no rule: {extra:?}");
}

/// One tenant's resources, made fresh where a case destroys one.
struct Fixture<'a> {
    c: &'a Collector,
    tenant: &'static str,
    agent: String,
    ticket: i64,
}

impl Fixture<'_> {
    async fn id(&self, p: Param) -> String {
        let c = self.c;
        match p {
            Param::None => String::new(),
            Param::Agent => self.agent.clone(),
            Param::Ticket => self.ticket.to_string(),
            Param::Sink => "ops".to_string(),
            Param::Outbox => {
                let rows = c.get("/api/v1/outbox").await;
                rows.as_array()
                    .expect("outbox")
                    .iter()
                    .find(|r| r["ticket_id"] == self.ticket)
                    .and_then(|r| r["id"].as_i64())
                    .expect("an outbox row of the ticket")
                    .to_string()
            }
            Param::Report => format!("{}/2026-12", self.tenant),
            Param::Asset => forewarn_collector::dashboard::asset_url("htmx.js")
                .trim_start_matches("/assets/")
                .to_string(),
            Param::Token => {
                c.cli_json(&["token", "create", "--tenant", self.tenant, "--json"])["id"]
                    .as_str()
                    .expect("token id")
                    .to_string()
            }
            Param::Window | Param::Silence => {
                let (path, body) = if p == Param::Window {
                    (
                        "/api/v1/maintenance",
                        json!({"tenant": self.tenant, "start": "2030-01-01T00:00:00Z", "end": "2030-01-01T02:00:00Z", "reason": "t"}),
                    )
                } else {
                    (
                        "/api/v1/silences",
                        json!({"tenant": self.tenant, "duration": "1h", "reason": "t"}),
                    )
                };
                let (status, v) = c.post(path, &body).await;
                assert_eq!(status, 201, "{path}: {v}");
                v["id"].to_string()
            }
            Param::Operator => {
                let name = format!("op{}", rand_suffix());
                c.cli_json(&[
                    "operator",
                    "add",
                    &name,
                    "--role",
                    "viewer",
                    "--tenant",
                    self.tenant,
                    "--json",
                ]);
                name
            }
            Param::Key => c.cli_json(&[
                "api-key",
                "create",
                "--name",
                "k",
                "--tenant",
                self.tenant,
                "--json",
            ])["id"]
                .as_str()
                .expect("key id")
                .to_string(),
        }
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

/// How a case authenticates.
enum Auth {
    Key(String),
    /// Session cookie and its CSRF token.
    Session(String, String),
}

async fn call(
    c: &Collector,
    auth: Option<&Auth>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> StatusCode {
    let client = Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("client");
    let m = Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client.request(m, format!("http://{}{path}", c.http));
    match auth {
        Some(Auth::Key(k)) => req = req.bearer_auth(k),
        Some(Auth::Session(cookie, csrf)) => {
            req = req
                .header("cookie", format!("forewarn_session={cookie}"))
                .header("x-csrf-token", csrf);
        }
        None => {}
    }
    match body {
        // Dashboard forms post urlencoded fields.
        Some(Value::Object(fields)) if !path.starts_with("/api/") => {
            let pairs: Vec<(String, String)> = fields
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            req = req.form(&pairs);
        }
        Some(b) => req = req.json(b),
        None => {}
    }
    req.send().await.expect("request").status()
}

/// A valid body for the routes that take one.
fn body_for(method: &str, pattern: &str, tenant: &str) -> Option<Value> {
    if method != "POST" {
        return None;
    }
    Some(match pattern {
        "/api/v1/tickets/{id}/assign" => json!({"assignee": "bob"}),
        "/api/v1/tickets/{id}/notes" => json!({"text": "looked at it"}),
        "/api/v1/maintenance" => {
            json!({"tenant": tenant, "start": "2031-01-01T00:00:00Z", "end": "2031-01-01T01:00:00Z", "reason": "r"})
        }
        "/api/v1/silences" => json!({"tenant": tenant, "duration": "30m", "reason": "r"}),
        "/api/v1/operators" => {
            json!({"username": format!("new{}", rand_suffix()), "role": "viewer", "tenants": [tenant]})
        }
        "/api/v1/keys" => json!({"name": "n", "role": "viewer", "tenant": tenant}),
        "/api/v1/outbox/retry" => json!({"sink": "ops"}),
        "/tickets/{id}/act" => json!({"action": "acknowledge"}),
        _ => json!({}),
    })
}

/// Routes whose `{…}` is not a tenant's resource (the tenant column of the
/// table does not apply), or that are not about a tenant at all.
fn tenant_free(p: Param) -> bool {
    matches!(
        p,
        Param::None | Param::Asset | Param::Operator | Param::Key | Param::Sink
    )
}

async fn ticket_in(c: &Collector, tenant: &'static str) -> (String, i64) {
    let (token, _) = c.token(tenant, &[]);
    let mut a = SimAgent::enroll(c, &token, &format!("host-{tenant}")).await;
    a.connect(60).await;
    a.change("service", "nginx", State::Crit, "nginx stopped")
        .await;
    let tickets = c.get("/api/v1/tickets?state=open").await;
    let id = tickets
        .as_array()
        .expect("tickets")
        .iter()
        .find(|t| t["agent_id"] == a.agent_id.as_str())
        .and_then(|t| t["id"].as_i64())
        .expect("a ticket for the agent");
    (a.agent_id.clone(), id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_by_role_and_tenant_for_keys_and_sessions() {
    let c = Collector::start_with_config(SINK);
    assert!(c.cli(&["tenant", "add", "other"]).status.success());
    let (agent, ticket) = ticket_in(&c, "default").await;
    let own = Fixture {
        c: &c,
        tenant: "default",
        agent,
        ticket,
    };
    let (agent, ticket) = ticket_in(&c, "other").await;
    let other = Fixture {
        c: &c,
        tenant: "other",
        agent,
        ticket,
    };

    // Callers: a key and a signed-in operator per role, scoped to
    // "default" (msp-admins see every tenant).
    let mut callers: Vec<(String, &str, Auth)> = Vec::new();
    for role in ["viewer", "technician", "msp-admin"] {
        let mut args = vec![
            "api-key", "create", "--name", role, "--role", role, "--json",
        ];
        if role != "msp-admin" {
            args.extend(["--tenant", "default"]);
        }
        let key = c.cli_json(&args)["key"].as_str().expect("key").to_string();
        callers.push((format!("key:{role}"), role, Auth::Key(key)));
        let name = format!("{}-op", role.replace('-', ""));
        let tenants: &[&str] = if role == "msp-admin" {
            &[]
        } else {
            &["default"]
        };
        let password = c.operator(&name, role, tenants).await;
        let (cookie, csrf) = login(&c, &name, &password).await;
        callers.push((format!("session:{role}"), role, Auth::Session(cookie, csrf)));
    }

    let need: BTreeMap<_, _> = RULES.iter().map(|r| ((r.method, r.path), r.need)).collect();
    let mut failures = Vec::new();
    let mut cases = 0;
    // Destructive routes last, so the reads before them find their ids.
    let mut order: Vec<_> = CASES.iter().collect();
    order.sort_by_key(|(m, p, _)| {
        (
            p.ends_with("/revoke") && p.contains("agents"),
            *m == "DELETE",
        )
    });
    for (method, pattern, param) in order {
        // Sign-in routes are exercised by their own tests below.
        if matches!(*pattern, "/login" | "/logout" | "/setup") {
            continue;
        }
        let need = need[&(*method, *pattern)];
        let tenants: &[&Fixture] = if tenant_free(*param) {
            &[&own]
        } else {
            &[&own, &other]
        };
        // Anonymous.
        for fx in tenants {
            let path = concrete(pattern, &fx.id(*param).await);
            let body = body_for(method, pattern, fx.tenant);
            let got = call(&c, None, method, &path, body.as_ref()).await;
            let ok = if need == Need::Public {
                got != StatusCode::UNAUTHORIZED && got != StatusCode::FORBIDDEN
            } else {
                got == StatusCode::UNAUTHORIZED
            };
            cases += 1;
            if !ok {
                failures.push(format!("anonymous {method} {path}: {got}"));
            }
        }
        for (who, role, auth) in &callers {
            for fx in tenants {
                let path = concrete(pattern, &fx.id(*param).await);
                let body = body_for(method, pattern, fx.tenant);
                let got = call(&c, Some(auth), method, &path, body.as_ref()).await;
                let allowed = match need {
                    Need::Public | Need::Read => true,
                    Need::Work => *role != "viewer",
                    Need::Admin => *role == "msp-admin",
                };
                let sees_other = *role == "msp-admin";
                let want = if !allowed {
                    "403"
                } else if fx.tenant == "other" && !sees_other {
                    "404"
                } else {
                    "allowed"
                };
                let ok = match want {
                    "403" => got == StatusCode::FORBIDDEN,
                    "404" => got == StatusCode::NOT_FOUND,
                    _ => !matches!(got.as_u16(), 401 | 403 | 404 | 405) && !got.is_server_error(),
                };
                cases += 1;
                if !ok {
                    failures.push(format!(
                        "{who} {method} {path} ({} tenant): {got}, want {want}",
                        fx.tenant
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(cases > 300, "only {cases} cases ran");
}

fn pattern_param(pattern: &str) -> &str {
    for p in ["{tenant}/{month}", "{id}", "{name}", "{file}"] {
        if pattern.contains(p) {
            return p;
        }
    }
    "\u{0}"
}

/// The path of a case: its `{…}` filled with `id`, and a form's `{op}`
/// with one the form takes.
fn concrete(pattern: &str, id: &str) -> String {
    pattern
        .replace(pattern_param(pattern), id)
        .replace("{op}", "disable")
}

/// Signs in through the form; returns the session cookie and its CSRF
/// token (from `/api/v1/me`).
async fn login(c: &Collector, user: &str, password: &str) -> (String, String) {
    let client = Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("client");
    let resp = client
        .post(format!("http://{}/login", c.http))
        .form(&[("username", user), ("password", password), ("next", "/")])
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "login {user}");
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("forewarn_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string();
    let me: Value = client
        .get(format!("http://{}/api/v1/me", c.http))
        .header("cookie", format!("forewarn_session={cookie}"))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    let csrf = me["csrf_token"].as_str().expect("csrf_token").to_string();
    (cookie, csrf)
}

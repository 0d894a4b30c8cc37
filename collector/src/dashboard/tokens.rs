//! Enrollment tokens (`GET /tokens`, msp-admins): list them, revoke one,
//! and create one, shown once with the one-line install commands (POSIX
//! shell and PowerShell, each with a copy button) that install, enroll and
//! start an agent with it (see `crate::install`).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::page::{Page, render};
use super::work_util::{Fields, said, see_other, utc};
use crate::api::AppState;
use crate::api::auth::{Caller, Csrf};
use crate::domain::now_millis;
use crate::install::oneliner::{AgentPort, Enrollment};
use crate::tickets::agents::NewToken;
use crate::{Error, Result};

/// Longest lifetime a token may be given here: 90 days.
const MAX_VALID_HOURS: i64 = 90 * 24;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(tokens).post(create))
        .route("/tokens/{id}/revoke", post(revoke))
}

struct TokenLine {
    id: String,
    tenant: String,
    site: String,
    role: String,
    expires: String,
    uses: String,
    state: &'static str,
}

/// A token just made: its secret and the commands, shown once.
struct Created {
    tenant: String,
    token: String,
    sh: String,
    powershell: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    page: Page,
    tokens: Vec<TokenLine>,
    tenants: Vec<String>,
    /// The agent port's URL the one-liners use (editable in the form).
    agent_url: String,
    fingerprint: String,
    created: Option<Created>,
    flash: String,
    errors: Vec<String>,
}

async fn tokens(
    State(s): State<AppState>,
    caller: Caller,
    csrf: Option<Extension<Csrf>>,
    port: Option<Extension<AgentPort>>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let q = Fields::query(raw);
    let errors = q.errors();
    let port = port.map(|Extension(p)| p);
    page(
        &s,
        &caller,
        csrf.as_deref(),
        port.as_ref(),
        None,
        q.text("flash"),
        errors,
    )
    .await
}

async fn page(
    s: &AppState,
    caller: &Caller,
    csrf: Option<&Csrf>,
    port: Option<&AgentPort>,
    created: Option<Created>,
    flash: String,
    errors: Vec<String>,
) -> Result<Response> {
    let now = now_millis();
    let tenants = s.svc.store().list_tenants(&caller.0.scope).await?;
    let tokens = s
        .svc
        .store()
        .list_enrollment_tokens(&caller.0.scope)
        .await?
        .into_iter()
        .map(|t| TokenLine {
            state: if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at <= now {
                "expired"
            } else if t.uses >= t.max_uses {
                "used up"
            } else {
                "active"
            },
            uses: format!("{}/{}", t.uses, t.max_uses),
            expires: utc(t.expires_at),
            site: if t.site.is_empty() {
                "-".into()
            } else {
                t.site
            },
            id: t.id,
            tenant: t.tenant_name,
            role: t.role,
        })
        .collect();
    Ok(render(&TokensPage {
        page: Page::new(caller, csrf, "Enrollment tokens", "/tokens"),
        tokens,
        tenants: tenants.into_iter().map(|t| t.name).collect(),
        agent_url: port.map(|p| p.url.clone()).unwrap_or_default(),
        fingerprint: port.map(|p| p.fingerprint.clone()).unwrap_or_default(),
        created,
        flash,
        errors,
    }))
}

/// A whole number field of the form, naming it when it is not one.
fn number(f: &Fields, key: &str, default: i64, max: i64) -> Result<i64> {
    match f.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{key} must be a whole number from 1 to {max}, not {v:?}"
                ))
            }),
    }
}

/// Creates a token and shows it with its one-liners (the page rendered
/// again, not a redirect: the secret must not land in a URL or history).
async fn create(
    State(s): State<AppState>,
    caller: Caller,
    csrf: Option<Extension<Csrf>>,
    port: Option<Extension<AgentPort>>,
    body: Bytes,
) -> Response {
    let f = Fields::parse(&body);
    let port = port.map(|Extension(p)| p);
    let done = async {
        let hours = number(&f, "valid_hours", 24, MAX_VALID_HOURS)?;
        let max_uses = number(&f, "max_uses", 1, 100_000)?;
        let url = f
            .get("agent_url")
            .map(str::to_string)
            .or_else(|| port.as_ref().map(|p| p.url.clone()))
            .unwrap_or_default();
        if !url.starts_with("https://") || url.contains(char::is_whitespace) {
            return Err(Error::InvalidArgument(format!(
                "agent_url must be https://HOST:PORT (the collector's agent port), not {url:?}"
            )));
        }
        let tenant = f.text("tenant");
        let (_, token) = s
            .svc
            .create_enrollment_token(
                &caller.0,
                &NewToken {
                    tenant: &tenant,
                    site: f.get("site").unwrap_or_default(),
                    role: f.get("role").unwrap_or("workstation"),
                    valid_for_ms: hours * 3_600_000,
                    max_uses: u32::try_from(max_uses).unwrap_or(u32::MAX),
                },
                now_millis(),
            )
            .await?;
        let fingerprint = port
            .as_ref()
            .map(|p| p.fingerprint.clone())
            .unwrap_or_default();
        let line = Enrollment {
            url: &url,
            fingerprint: &fingerprint,
            token: &token,
        };
        Ok(Created {
            sh: line.sh(),
            powershell: line.powershell(),
            tenant,
            token,
        })
    }
    .await;
    let (created, flash, errors) = match done {
        Ok(c) => {
            let flash = format!("enrollment token created for tenant {}", c.tenant);
            (Some(c), flash, vec![])
        }
        Err(e) => (None, String::new(), vec![said(&e)]),
    };
    match page(
        &s,
        &caller,
        csrf.as_deref(),
        port.as_ref(),
        created,
        flash,
        errors,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}

async fn revoke(State(s): State<AppState>, caller: Caller, Path(id): Path<String>) -> Response {
    match s
        .svc
        .revoke_enrollment_token(&caller.0, &id, now_millis())
        .await
    {
        Ok(t) => see_other(
            "/tokens",
            &format!("token of tenant {} revoked", t.tenant_name),
            &[],
        ),
        Err(e) => see_other("/tokens", "", &[format!("token {id}: {}", said(&e))]),
    }
}

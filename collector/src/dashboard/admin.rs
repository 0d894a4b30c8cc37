//! Operators and API keys (`GET /admin`, msp-admins): list them, add an
//! operator (its one-time setup link shown once), disable, enable, revoke
//! or reset one; create a key (its secret shown once), disable, enable or
//! revoke one. Everything goes through [`crate::access::Access`], which
//! checks the role again and audits.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::page::{Page, render};
use super::work_util::{Fields, said, see_other, tenant_name, utc};
use crate::api::AppState;
use crate::api::auth::{Caller, Csrf};
use crate::domain::{Role, now_millis};
use crate::{Error, Result};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(admin))
        .route("/admin/operators", post(add_operator))
        .route("/admin/operators/{name}/{op}", post(operator_op))
        .route("/admin/keys", post(add_key))
        .route("/admin/keys/{id}/{op}", post(key_op))
}

struct OperatorLine {
    username: String,
    status: &'static str,
    role: String,
    tenants: String,
    totp: bool,
    last_login: String,
}

struct KeyLine {
    id: String,
    name: String,
    role: String,
    tenant: String,
    state: &'static str,
    last_used: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    page: Page,
    operators: Vec<OperatorLine>,
    keys: Vec<KeyLine>,
    tenants: Vec<String>,
    /// A secret shown once: a setup link or an API key.
    secret: Option<(String, String)>,
    flash: String,
    errors: Vec<String>,
}

async fn admin(
    State(s): State<AppState>,
    caller: Caller,
    csrf: Option<Extension<Csrf>>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let q = Fields::query(raw);
    let errors = q.errors();
    page(&s, &caller, csrf.as_deref(), None, q.text("flash"), errors).await
}

async fn page(
    s: &AppState,
    caller: &Caller,
    csrf: Option<&Csrf>,
    secret: Option<(String, String)>,
    flash: String,
    errors: Vec<String>,
) -> Result<Response> {
    let tenants = s.svc.store().list_tenants(&caller.0.scope).await?;
    let name = |id: &str| tenant_name(&tenants, id);
    let operators = s
        .access
        .list_operators(&caller.0)
        .await?
        .into_iter()
        .map(|o| OperatorLine {
            tenants: if o.role == Role::MspAdmin.as_str() {
                "all".into()
            } else {
                o.tenant_ids
                    .iter()
                    .map(|t| name(t))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            username: o.username,
            status: o.status,
            role: o.role,
            totp: o.totp,
            last_login: o.last_login_at.map(utc).unwrap_or_else(|| "never".into()),
        })
        .collect();
    let keys = s
        .access
        .list_keys(&caller.0)
        .await?
        .into_iter()
        .map(|k| KeyLine {
            state: if k.revoked_at.is_some() {
                "revoked"
            } else if k.disabled_at.is_some() {
                "disabled"
            } else {
                "active"
            },
            tenant: k.tenant_name.clone().unwrap_or_else(|| "all".into()),
            last_used: k.last_used_at.map(utc).unwrap_or_else(|| "never".into()),
            id: k.id,
            name: k.name,
            role: k.role,
        })
        .collect();
    Ok(render(&AdminPage {
        page: Page::new(caller, csrf, "Operators & keys", "/admin"),
        operators,
        keys,
        tenants: tenants.into_iter().map(|t| t.name).collect(),
        secret,
        flash,
        errors,
    }))
}

fn role(f: &Fields) -> Result<Role> {
    let v = f.text("role");
    Role::parse(&v).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "role must be msp-admin, technician or viewer, not {v:?}"
        ))
    })
}

/// Renders the page again (not a redirect) when it carries a secret: the
/// secret must not land in a URL, history or logs.
async fn shown(
    s: &AppState,
    caller: &Caller,
    csrf: Option<&Csrf>,
    done: Result<(String, String, String)>,
) -> Response {
    let (secret, flash, errors) = match done {
        Ok((label, value, flash)) => (Some((label, value)), flash, vec![]),
        Err(e) => (None, String::new(), vec![said(&e)]),
    };
    match page(s, caller, csrf, secret, flash, errors).await {
        Ok(r) => r,
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}

async fn add_operator(
    State(s): State<AppState>,
    caller: Caller,
    csrf: Option<Extension<Csrf>>,
    body: Bytes,
) -> Response {
    let f = Fields::parse(&body);
    let done = async {
        let tenants: Vec<String> = f.all("tenant").into_iter().map(str::to_string).collect();
        let invited = s
            .access
            .create_operator(
                &caller.0,
                &f.text("username"),
                role(&f)?,
                &tenants,
                now_millis(),
            )
            .await?;
        Ok((
            format!(
                "Setup link for {} (works once; send it privately)",
                invited.operator.username
            ),
            invited.setup_path,
            format!("operator {} added", invited.operator.username),
        ))
    }
    .await;
    shown(&s, &caller, csrf.as_deref(), done).await
}

async fn operator_op(
    State(s): State<AppState>,
    caller: Caller,
    csrf: Option<Extension<Csrf>>,
    Path((name, op)): Path<(String, String)>,
) -> Response {
    let now = now_millis();
    let a = &s.access;
    let done = match op.as_str() {
        "disable" => a
            .set_operator_disabled(&caller.0, &name, true, now)
            .await
            .map(|_| None),
        "enable" => a
            .set_operator_disabled(&caller.0, &name, false, now)
            .await
            .map(|_| None),
        "revoke" => a.revoke_operator(&caller.0, &name, now).await.map(|_| None),
        "reset" => a.reset_operator(&caller.0, &name, now).await.map(Some),
        other => Err(Error::NotFound(format!("no operator action {other:?}"))),
    };
    match done {
        Ok(Some(link)) => {
            let shown_link = (format!("New setup link for {name} (works once)"), link);
            let flash = format!("operator {name} reset: their sessions ended");
            shown(
                &s,
                &caller,
                csrf.as_deref(),
                Ok((shown_link.0, shown_link.1, flash)),
            )
            .await
        }
        Ok(None) => see_other("/admin", &format!("operator {name}: {op} done"), &[]),
        Err(e) => see_other("/admin", "", &[format!("operator {name}: {}", said(&e))]),
    }
}

async fn add_key(
    State(s): State<AppState>,
    caller: Caller,
    csrf: Option<Extension<Csrf>>,
    body: Bytes,
) -> Response {
    let f = Fields::parse(&body);
    let done = async {
        let k = s
            .access
            .create_key(
                &caller.0,
                &f.text("name"),
                f.get("tenant"),
                role(&f)?,
                now_millis(),
            )
            .await?;
        Ok((
            format!("API key {} (shown once; store it now)", k.key.name),
            k.secret,
            format!("key {} created", k.key.name),
        ))
    }
    .await;
    shown(&s, &caller, csrf.as_deref(), done).await
}

async fn key_op(
    State(s): State<AppState>,
    caller: Caller,
    Path((id, op)): Path<(String, String)>,
) -> Response {
    let now = now_millis();
    let a = &s.access;
    let done = match op.as_str() {
        "disable" => a.set_key_disabled(&caller.0, &id, true, now).await,
        "enable" => a.set_key_disabled(&caller.0, &id, false, now).await,
        "revoke" => a.revoke_key(&caller.0, &id, now).await,
        other => Err(Error::NotFound(format!("no key action {other:?}"))),
    };
    match done {
        Ok(k) => see_other("/admin", &format!("key {}: {op} done", k.name), &[]),
        Err(e) => see_other("/admin", "", &[format!("key {id}: {}", said(&e))]),
    }
}

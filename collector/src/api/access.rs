//! Operators and API keys over the API (msp-admins), and `GET /api/v1/me`.
//! Every change is audited by `crate::access`.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::{Caller, Csrf};
use crate::access::OperatorView;
use crate::domain::{Role, now_millis};
use crate::store::ApiKeyRow;
use crate::{Error, Result};

/// The operator and key routes, merged into [`super::router`].
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_operators, create_operator))
        .routes(routes!(disable_operator))
        .routes(routes!(enable_operator))
        .routes(routes!(revoke_operator))
        .routes(routes!(reset_operator))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(disable_key))
        .routes(routes!(enable_key))
        .routes(routes!(revoke_key))
}

fn role(v: &str) -> Result<Role> {
    Role::parse(v).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "role must be msp-admin, technician or viewer, not {v:?}"
        ))
    })
}

/// Who the caller is: name, role and tenants; for a browser session, also
/// the CSRF token its scripts send (same-origin only: no CORS).
#[utoipa::path(get, path = "/api/v1/me", tag = "access",
    responses((status = 200, description = "The caller: name, role, tenants (and a session's CSRF token)", body = Object)))]
async fn me(caller: Caller, csrf: Option<axum::Extension<Csrf>>) -> Json<Value> {
    let c = &caller.0;
    let tenants = match &c.scope {
        crate::domain::Scope::All => Value::String("all".into()),
        crate::domain::Scope::Tenant(t) => json!([t]),
        crate::domain::Scope::Tenants(ts) => json!(ts),
    };
    let mut me = json!({"name": c.name, "role": c.role, "tenants": tenants});
    if let Some(axum::Extension(Csrf(t))) = csrf {
        me["csrf_token"] = Value::String(t);
    }
    Json(me)
}

#[utoipa::path(get, path = "/api/v1/operators", tag = "access",
    responses((status = 200, description = "Every operator", body = [OperatorView])))]
async fn list_operators(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<OperatorView>>> {
    Ok(Json(s.access.list_operators(&caller.0).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewOperatorBody {
    username: String,
    role: String,
    /// Tenant names or ids (technicians and viewers need one at least).
    #[serde(default)]
    tenants: Vec<String>,
}

/// Creates an operator; the answer carries the one-time setup link.
#[utoipa::path(post, path = "/api/v1/operators", tag = "access", request_body = NewOperatorBody,
    responses((status = 200, description = "The operator and its one-time setup path", body = Object)))]
async fn create_operator(
    State(s): State<AppState>,
    caller: Caller,
    Json(b): Json<NewOperatorBody>,
) -> Result<Json<Value>> {
    let invited = s
        .access
        .create_operator(
            &caller.0,
            b.username.trim(),
            role(&b.role)?,
            &b.tenants,
            now_millis(),
        )
        .await?;
    Ok(Json(
        json!({"operator": invited.operator, "setup_path": invited.setup_path}),
    ))
}

async fn set_disabled(
    s: &AppState,
    caller: &Caller,
    name: &str,
    disabled: bool,
) -> Result<Json<OperatorView>> {
    Ok(Json(
        s.access
            .set_operator_disabled(&caller.0, name, disabled, now_millis())
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/operators/{name}/disable", tag = "access",
    params(("name" = String, Path, description = "Username")),
    responses((status = 200, description = "The operator, disabled (sessions ended)", body = OperatorView)))]
async fn disable_operator(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<OperatorView>> {
    set_disabled(&s, &caller, &name, true).await
}

#[utoipa::path(post, path = "/api/v1/operators/{name}/enable", tag = "access",
    params(("name" = String, Path, description = "Username")),
    responses((status = 200, description = "The operator, enabled", body = OperatorView)))]
async fn enable_operator(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<OperatorView>> {
    set_disabled(&s, &caller, &name, false).await
}

#[utoipa::path(post, path = "/api/v1/operators/{name}/revoke", tag = "access",
    params(("name" = String, Path, description = "Username")),
    responses((status = 200, description = "The operator, revoked for good", body = OperatorView)))]
async fn revoke_operator(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<OperatorView>> {
    Ok(Json(
        s.access
            .revoke_operator(&caller.0, &name, now_millis())
            .await?,
    ))
}

/// A new setup link (forgotten password); the operator's sessions end.
#[utoipa::path(post, path = "/api/v1/operators/{name}/reset", tag = "access",
    params(("name" = String, Path, description = "Username")),
    responses((status = 200, description = "A new one-time setup path", body = Object)))]
async fn reset_operator(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>> {
    let path = s
        .access
        .reset_operator(&caller.0, &name, now_millis())
        .await?;
    Ok(Json(json!({"setup_path": path})))
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "access",
    responses((status = 200, description = "API keys in scope (never their secrets)", body = [ApiKeyRow])))]
async fn list_keys(State(s): State<AppState>, caller: Caller) -> Result<Json<Vec<ApiKeyRow>>> {
    Ok(Json(s.access.list_keys(&caller.0).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewKeyBody {
    name: String,
    role: String,
    /// Tenant name or id; without it the key sees every tenant.
    tenant: Option<String>,
}

/// Creates a key; the secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/keys", tag = "access", request_body = NewKeyBody,
    responses((status = 200, description = "The key's secret (shown once) and its row", body = Object)))]
async fn create_key(
    State(s): State<AppState>,
    caller: Caller,
    Json(b): Json<NewKeyBody>,
) -> Result<Json<Value>> {
    let k = s
        .access
        .create_key(
            &caller.0,
            &b.name,
            b.tenant.as_deref(),
            role(&b.role)?,
            now_millis(),
        )
        .await?;
    Ok(Json(json!({"key": k.secret, "api_key": k.key})))
}

#[utoipa::path(post, path = "/api/v1/keys/{id}/disable", tag = "access",
    params(("id" = String, Path, description = "Key id")),
    responses((status = 200, description = "The key, disabled", body = ApiKeyRow)))]
async fn disable_key(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyRow>> {
    Ok(Json(
        s.access
            .set_key_disabled(&caller.0, &id, true, now_millis())
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/keys/{id}/enable", tag = "access",
    params(("id" = String, Path, description = "Key id")),
    responses((status = 200, description = "The key, enabled", body = ApiKeyRow)))]
async fn enable_key(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyRow>> {
    Ok(Json(
        s.access
            .set_key_disabled(&caller.0, &id, false, now_millis())
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/keys/{id}/revoke", tag = "access",
    params(("id" = String, Path, description = "Key id")),
    responses((status = 200, description = "The key, revoked for good", body = ApiKeyRow)))]
async fn revoke_key(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyRow>> {
    Ok(Json(
        s.access.revoke_key(&caller.0, &id, now_millis()).await?,
    ))
}

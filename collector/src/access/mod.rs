//! Who may use the collector: operators (people at the dashboard, with a
//! password and optional TOTP), API keys (scripts), their roles and
//! tenants, browser sessions, and the one function that decides every
//! route ([`authz::authorize`]).
//!
//! Decisions live here; `store::KeyStore` and `store::OperatorStore` only
//! read and write rows.

pub mod authz;
pub mod cli;
pub mod keys;
pub mod login;
pub mod operators;
pub mod password;
pub mod sessions;

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{ApiCaller, Role, Scope};
use crate::store::{OperatorRow, Storage};

/// Access decisions over the store, shared by the API, the dashboard and
/// the CLI.
#[derive(Clone)]
pub struct Access {
    store: Arc<dyn Storage>,
    limits: Arc<login::LoginLimits>,
    /// A session unused this long has expired.
    pub session_idle: Duration,
    /// How long a setup link works.
    pub setup_link_ttl: Duration,
    /// Session cookies are `Secure` (HTTPS, or localhost).
    pub secure_cookies: bool,
}

impl Access {
    pub fn new(store: Arc<dyn Storage>, session_idle: Duration) -> Self {
        Self {
            store,
            limits: Arc::new(login::LoginLimits::default()),
            session_idle,
            setup_link_ttl: Duration::from_secs(24 * 3600),
            secure_cookies: true,
        }
    }

    pub fn store(&self) -> &Arc<dyn Storage> {
        &self.store
    }
}

/// The caller an operator row acts as: msp-admins see all tenants, others
/// the tenants granted to them.
pub fn operator_caller(op: &OperatorRow, source: &str) -> Option<ApiCaller> {
    let role = Role::parse(&op.role)?;
    let scope = match role {
        Role::MspAdmin => Scope::All,
        _ => Scope::Tenants(op.tenant_ids.clone()),
    };
    Some(ApiCaller {
        scope,
        name: op.username.clone(),
        role,
        source: source.to_string(),
    })
}

/// An operator as the API shows it (never the password hash or TOTP secret).
#[derive(Debug, Clone, serde::Serialize, PartialEq, utoipa::ToSchema)]
pub struct OperatorView {
    pub id: String,
    pub username: String,
    pub role: String,
    pub tenant_ids: Vec<String>,
    pub totp: bool,
    /// `active`, `disabled`, `revoked`, or `pending` (no password set yet).
    pub status: &'static str,
    #[serde(with = "crate::domain::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: crate::domain::Millis,
    pub created_by: String,
    #[serde(with = "crate::domain::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_login_at: Option<crate::domain::Millis>,
}

impl From<&OperatorRow> for OperatorView {
    fn from(o: &OperatorRow) -> Self {
        let status = if o.revoked_at.is_some() {
            "revoked"
        } else if o.disabled_at.is_some() {
            "disabled"
        } else if o.password_hash.is_none() {
            "pending"
        } else {
            "active"
        };
        Self {
            id: o.id.clone(),
            username: o.username.clone(),
            role: o.role.clone(),
            tenant_ids: o.tenant_ids.clone(),
            totp: o.totp_secret.is_some(),
            status,
            created_at: o.created_at,
            created_by: o.created_by.clone(),
            last_login_at: o.last_login_at,
        }
    }
}

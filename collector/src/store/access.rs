//! Storage of access: API keys, operators, their tenants, browser
//! sessions and setup links. Rows only; `crate::access` decides.

use async_trait::async_trait;

use super::{ApiKeyRow, NewOperator, OperatorRow, OperatorSession, SetupLinkRow};
use crate::Result;
use crate::domain::{Millis, NewApiKey, Scope};

#[async_trait]
pub trait KeyStore {
    async fn create_api_key(&self, key: &NewApiKey) -> Result<()>;
    /// The key with this hash, whatever its state (the caller decides
    /// whether a disabled or revoked key may call).
    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRow>>;
    /// Keys in scope (never their secrets), newest first.
    async fn list_api_keys(&self, scope: &Scope) -> Result<Vec<ApiKeyRow>>;
    /// Sets or clears `disabled_at`; `false` if no unrevoked key has this id.
    async fn set_api_key_disabled(&self, id: &str, at: Option<Millis>) -> Result<bool>;
    /// Revokes for good; `false` if no unrevoked key has this id.
    async fn revoke_api_key(&self, id: &str, at: Millis) -> Result<bool>;
    /// Records a use (the caller throttles how often).
    async fn touch_api_key(&self, id: &str, at: Millis) -> Result<()>;
}

/// Operators, their tenants, browser sessions and setup links.
#[async_trait]
pub trait OperatorStore {
    /// A duplicate username is `Error::Conflict`.
    async fn create_operator(&self, op: &NewOperator<'_>) -> Result<()>;
    async fn operator_by_name(&self, username: &str) -> Result<Option<OperatorRow>>;
    async fn operator(&self, id: &str) -> Result<Option<OperatorRow>>;
    async fn list_operators(&self) -> Result<Vec<OperatorRow>>;
    async fn count_operators(&self) -> Result<i64>;
    /// Replaces the operator's granted tenants.
    async fn set_operator_tenants(&self, id: &str, tenant_ids: &[String]) -> Result<()>;
    async fn set_operator_password(&self, id: &str, password_hash: &str) -> Result<()>;
    async fn set_operator_totp(&self, id: &str, secret: Option<&str>) -> Result<()>;
    /// Sets or clears `disabled_at`; `false` if no unrevoked operator has this id.
    async fn set_operator_disabled(&self, id: &str, at: Option<Millis>) -> Result<bool>;
    /// Revokes for good and ends every session; `false` if none to revoke.
    async fn revoke_operator(&self, id: &str, at: Millis) -> Result<bool>;
    async fn record_login(&self, id: &str, at: Millis) -> Result<()>;

    async fn insert_setup_link(&self, link: &SetupLinkRow) -> Result<()>;
    /// Marks the link used and returns its operator, if it was unused and
    /// `expires_at > now`; `None` (nothing written) otherwise.
    async fn take_setup_link(&self, token_hash: &str, now: Millis) -> Result<Option<String>>;

    async fn insert_session(&self, s: &OperatorSession) -> Result<()>;
    async fn session(&self, id_hash: &str) -> Result<Option<OperatorSession>>;
    async fn touch_session(&self, id_hash: &str, at: Millis) -> Result<()>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
    async fn delete_operator_sessions(&self, operator_id: &str) -> Result<u64>;
    /// Sessions last seen before `before`.
    async fn prune_sessions(&self, before: Millis) -> Result<u64>;
}

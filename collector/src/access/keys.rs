//! API keys: authenticate a bearer key, and create, list, disable, enable
//! and revoke keys (audited).

use super::Access;
use super::operators::require_admin;
use crate::domain::{ApiCaller, Millis, NewApiKey, Role, Scope};
use crate::store::{ApiKeyRow, Audit};
use crate::{Error, Result, secrets};

/// Last use is recorded at most this often (ms).
const TOUCH_EVERY_MS: Millis = 60_000;

/// A key just made: its secret is shown once.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub key: ApiKeyRow,
    pub secret: String,
}

impl Access {
    /// The caller a bearer key stands for. An unknown, disabled or revoked
    /// key is `Unauthenticated`, saying which.
    pub async fn key_caller(&self, key: &str, source: &str, now: Millis) -> Result<ApiCaller> {
        let row = self
            .store
            .api_key_by_hash(&secrets::hash(key))
            .await?
            .ok_or_else(|| Error::Unauthenticated("unknown API key".into()))?;
        if row.revoked_at.is_some() {
            return Err(Error::Unauthenticated(format!(
                "API key {:?} is revoked",
                row.name
            )));
        }
        if row.disabled_at.is_some() {
            return Err(Error::Unauthenticated(format!(
                "API key {:?} is disabled",
                row.name
            )));
        }
        let role = Role::parse(&row.role)
            .ok_or_else(|| Error::Corrupt(format!("API key {} has role {:?}", row.id, row.role)))?;
        if row.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY_MS) {
            self.store.touch_api_key(&row.id, now).await?;
        }
        Ok(ApiCaller {
            scope: row.tenant_id.map_or(Scope::All, Scope::Tenant),
            name: format!("key:{}", row.name),
            role,
            source: source.to_string(),
        })
    }

    async fn key_audit(
        &self,
        by: &ApiCaller,
        key: &ApiKeyRow,
        action: &str,
        now: Millis,
    ) -> Result<()> {
        self.store
            .record_audit(Audit {
                tenant_id: key.tenant_id.as_deref(),
                at: now,
                actor: &by.name,
                source: &by.source,
                action,
                target: &format!("api-key:{} ({})", key.id, key.name),
                detail: &key.role,
            })
            .await
    }

    /// Makes a key for one tenant (`Some(name or id)`) or all tenants.
    pub async fn create_key(
        &self,
        by: &ApiCaller,
        name: &str,
        tenant: Option<&str>,
        role: Role,
        now: Millis,
    ) -> Result<CreatedKey> {
        require_admin(by)?;
        let name = name.trim();
        if name.is_empty() || name.len() > 128 {
            return Err(Error::InvalidArgument("name: 1 to 128 characters".into()));
        }
        let tenant_id = match tenant {
            None => None,
            Some(t) => Some(
                self.store
                    .list_tenants(&Scope::All)
                    .await?
                    .into_iter()
                    .find(|x| x.id == t || x.name == t)
                    .ok_or_else(|| Error::NotFound(format!("tenant {t:?} (see `tenant list`)")))?
                    .id,
            ),
        };
        let secret = secrets::generate(secrets::API_KEY_PREFIX);
        let id = uuid::Uuid::new_v4().to_string();
        self.store
            .create_api_key(&NewApiKey {
                id: id.clone(),
                tenant_id,
                name: name.to_string(),
                key_hash: secrets::hash(&secret),
                role,
            })
            .await?;
        let key = self.key(&id).await?;
        self.key_audit(by, &key, "api_key.created", now).await?;
        Ok(CreatedKey { key, secret })
    }

    async fn key(&self, id: &str) -> Result<ApiKeyRow> {
        self.store
            .list_api_keys(&Scope::All)
            .await?
            .into_iter()
            .find(|k| k.id == id)
            .ok_or_else(|| Error::NotFound(format!("API key {id}")))
    }

    pub async fn list_keys(&self, by: &ApiCaller) -> Result<Vec<ApiKeyRow>> {
        require_admin(by)?;
        self.store.list_api_keys(&by.scope).await
    }

    /// Disables (`true`) or enables a key.
    pub async fn set_key_disabled(
        &self,
        by: &ApiCaller,
        id: &str,
        disabled: bool,
        now: Millis,
    ) -> Result<ApiKeyRow> {
        require_admin(by)?;
        let key = self.key(id).await?;
        if !self
            .store
            .set_api_key_disabled(id, disabled.then_some(now))
            .await?
        {
            return Err(Error::Conflict(format!("API key {id} is revoked")));
        }
        let action = if disabled {
            "api_key.disabled"
        } else {
            "api_key.enabled"
        };
        self.key_audit(by, &key, action, now).await?;
        self.key(id).await
    }

    /// Revokes a key for good.
    pub async fn revoke_key(&self, by: &ApiCaller, id: &str, now: Millis) -> Result<ApiKeyRow> {
        require_admin(by)?;
        let key = self.key(id).await?;
        if !self.store.revoke_api_key(id, now).await? {
            return Err(Error::Conflict(format!("API key {id} is already revoked")));
        }
        self.key_audit(by, &key, "api_key.revoked", now).await?;
        self.key(id).await
    }
}

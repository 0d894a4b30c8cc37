//! Operators: create (with a one-time setup link, never a default
//! password), set a password through the link, list, disable, enable,
//! revoke, grant tenants, TOTP; and the first msp-admin at first start.
//! Every change is audited with who, when and from where.

use super::{Access, OperatorView, password};
use crate::domain::{ApiCaller, Millis, Role, Scope};
use crate::store::{Audit, NewOperator, SetupLinkRow};
use crate::{Error, Result, secrets};

/// Prefix of setup-link tokens.
pub const SETUP_PREFIX: &str = "fws_";

/// The name of the operator made at first start.
pub const FIRST_ADMIN: &str = "admin";

/// An operator and the setup link to give them (shown once).
#[derive(Debug, Clone)]
pub struct Invited {
    pub operator: OperatorView,
    /// `/setup?token=…`, relative to the collector's public URL.
    pub setup_path: String,
}

/// `PermissionDenied` unless the caller is an msp-admin.
pub fn require_admin(caller: &ApiCaller) -> Result<()> {
    if caller.role == Role::MspAdmin {
        Ok(())
    } else {
        Err(Error::PermissionDenied(format!(
            "{:?} is a {}; only an msp-admin manages operators and keys",
            caller.name, caller.role
        )))
    }
}

/// A username: 1–64 of letters, digits and `._@-`.
pub fn check_username(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(
            "username: 1 to 64 of letters, digits, '.', '_', '@' and '-'".into(),
        ))
    }
}

impl Access {
    async fn audit(
        &self,
        by: &ApiCaller,
        at: Millis,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<()> {
        self.store
            .record_audit(Audit {
                tenant_id: None,
                at,
                actor: &by.name,
                source: &by.source,
                action,
                target,
                detail,
            })
            .await
    }

    /// Tenant names or ids → ids, each of which must exist.
    async fn tenant_ids(&self, tenants: &[String]) -> Result<Vec<String>> {
        let all = self.store.list_tenants(&Scope::All).await?;
        let mut ids = Vec::new();
        for t in tenants {
            let found = all
                .iter()
                .find(|x| x.id == *t || x.name == *t)
                .ok_or_else(|| Error::NotFound(format!("tenant {t:?} (see `tenant list`)")))?;
            ids.push(found.id.clone());
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    async fn operator_named(&self, username: &str) -> Result<crate::store::OperatorRow> {
        self.store
            .operator_by_name(username)
            .await?
            .ok_or_else(|| Error::NotFound(format!("operator {username:?}")))
    }

    async fn new_setup_link(&self, operator_id: &str, now: Millis) -> Result<String> {
        let token = secrets::generate(SETUP_PREFIX);
        let ttl = Millis::try_from(self.setup_link_ttl.as_millis()).unwrap_or(Millis::MAX);
        self.store
            .insert_setup_link(&SetupLinkRow {
                token_hash: secrets::hash(&token),
                operator_id: operator_id.to_string(),
                created_at: now,
                expires_at: now.saturating_add(ttl),
            })
            .await?;
        Ok(format!("/setup?token={token}"))
    }

    /// Creates an operator with no password and returns its setup link.
    /// Technicians and viewers need at least one tenant.
    pub async fn create_operator(
        &self,
        by: &ApiCaller,
        username: &str,
        role: Role,
        tenants: &[String],
        now: Millis,
    ) -> Result<Invited> {
        require_admin(by)?;
        check_username(username)?;
        let tenant_ids = self.tenant_ids(tenants).await?;
        if role != Role::MspAdmin && tenant_ids.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "tenants: a {role} needs at least one tenant (an msp-admin sees all)"
            )));
        }
        let id = uuid::Uuid::new_v4().to_string();
        self.store
            .create_operator(&NewOperator {
                id: &id,
                username,
                role: role.as_str(),
                created_at: now,
                created_by: &by.name,
            })
            .await?;
        if role != Role::MspAdmin {
            self.store.set_operator_tenants(&id, &tenant_ids).await?;
        }
        let setup_path = self.new_setup_link(&id, now).await?;
        let target = format!("operator:{username}");
        self.audit(by, now, "operator.created", &target, role.as_str())
            .await?;
        let op = self.operator_named(username).await?;
        Ok(Invited {
            operator: OperatorView::from(&op),
            setup_path,
        })
    }

    /// Makes the first msp-admin when there is no operator at all; `None`
    /// when operators exist (or another replica made the first one).
    pub async fn ensure_first_admin(&self, now: Millis) -> Result<Option<Invited>> {
        if self.store.count_operators().await? > 0 {
            return Ok(None);
        }
        let collector = ApiCaller {
            scope: Scope::All,
            name: "collector".into(),
            role: Role::MspAdmin,
            source: String::new(),
        };
        match self
            .create_operator(&collector, FIRST_ADMIN, Role::MspAdmin, &[], now)
            .await
        {
            Ok(i) => Ok(Some(i)),
            Err(Error::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A new setup link for an operator (a forgotten password, an expired
    /// link). Their sessions end.
    pub async fn reset_operator(
        &self,
        by: &ApiCaller,
        username: &str,
        now: Millis,
    ) -> Result<String> {
        require_admin(by)?;
        let op = self.operator_named(username).await?;
        if op.revoked_at.is_some() {
            return Err(Error::Conflict(format!("operator {username:?} is revoked")));
        }
        self.store.delete_operator_sessions(&op.id).await?;
        let link = self.new_setup_link(&op.id, now).await?;
        self.audit(
            by,
            now,
            "operator.reset",
            &format!("operator:{username}"),
            "",
        )
        .await?;
        Ok(link)
    }

    /// Sets a password through a setup link (used once, until it expires).
    pub async fn complete_setup(
        &self,
        token: &str,
        new_password: &str,
        source: &str,
        now: Millis,
    ) -> Result<OperatorView> {
        password::check_new(new_password)?;
        let invalid = || {
            Error::PermissionDenied(
                "this setup link is invalid, used or expired; ask an msp-admin for a new one"
                    .into(),
            )
        };
        if !token.starts_with(SETUP_PREFIX) || token.len() > 128 {
            return Err(invalid());
        }
        let id = self
            .store
            .take_setup_link(&secrets::hash(token), now)
            .await?
            .ok_or_else(invalid)?;
        let op = self.store.operator(&id).await?.ok_or_else(invalid)?;
        if op.revoked_at.is_some() {
            return Err(invalid());
        }
        let phc = password::hash(new_password)?;
        self.store.set_operator_password(&id, &phc).await?;
        self.store.delete_operator_sessions(&id).await?;
        let me = ApiCaller {
            scope: Scope::All,
            name: op.username.clone(),
            role: Role::Viewer,
            source: source.to_string(),
        };
        self.audit(
            &me,
            now,
            "operator.password_set",
            &format!("operator:{}", op.username),
            "",
        )
        .await?;
        let op = self.operator_named(&op.username).await?;
        Ok(OperatorView::from(&op))
    }

    pub async fn list_operators(&self, by: &ApiCaller) -> Result<Vec<OperatorView>> {
        require_admin(by)?;
        Ok(self
            .store
            .list_operators()
            .await?
            .iter()
            .map(OperatorView::from)
            .collect())
    }

    /// Disables (`true`) or enables an operator; disabling ends their sessions.
    pub async fn set_operator_disabled(
        &self,
        by: &ApiCaller,
        username: &str,
        disabled: bool,
        now: Millis,
    ) -> Result<OperatorView> {
        require_admin(by)?;
        let op = self.operator_named(username).await?;
        if disabled && op.username == by.name {
            return Err(Error::InvalidArgument(
                "an operator cannot disable themself".into(),
            ));
        }
        if !self
            .store
            .set_operator_disabled(&op.id, disabled.then_some(now))
            .await?
        {
            return Err(Error::Conflict(format!("operator {username:?} is revoked")));
        }
        if disabled {
            self.store.delete_operator_sessions(&op.id).await?;
        }
        let action = if disabled {
            "operator.disabled"
        } else {
            "operator.enabled"
        };
        self.audit(by, now, action, &format!("operator:{username}"), "")
            .await?;
        Ok(OperatorView::from(&self.operator_named(username).await?))
    }

    /// Revokes an operator for good and ends their sessions.
    pub async fn revoke_operator(
        &self,
        by: &ApiCaller,
        username: &str,
        now: Millis,
    ) -> Result<OperatorView> {
        require_admin(by)?;
        let op = self.operator_named(username).await?;
        if op.username == by.name {
            return Err(Error::InvalidArgument(
                "an operator cannot revoke themself".into(),
            ));
        }
        if !self.store.revoke_operator(&op.id, now).await? {
            return Err(Error::Conflict(format!(
                "operator {username:?} is already revoked"
            )));
        }
        self.audit(
            by,
            now,
            "operator.revoked",
            &format!("operator:{username}"),
            "",
        )
        .await?;
        Ok(OperatorView::from(&self.operator_named(username).await?))
    }

    /// Turns TOTP on (returns the `otpauth://` URL to enroll, shown once)
    /// or off for an operator.
    pub async fn set_operator_totp(
        &self,
        by: &ApiCaller,
        username: &str,
        enable: bool,
        now: Millis,
    ) -> Result<Option<String>> {
        if by.name != username {
            require_admin(by)?;
        }
        let op = self.operator_named(username).await?;
        let (secret, url) = if enable {
            let s = password::new_totp_secret();
            let url = password::totp_url(&s, username)?;
            (Some(s), Some(url))
        } else {
            (None, None)
        };
        self.store
            .set_operator_totp(&op.id, secret.as_deref())
            .await?;
        let action = if enable {
            "operator.totp_enabled"
        } else {
            "operator.totp_disabled"
        };
        self.audit(by, now, action, &format!("operator:{username}"), "")
            .await?;
        Ok(url)
    }
}

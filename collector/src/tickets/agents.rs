//! Agents and their identity, where a decision is involved: whether an
//! enrollment token may enroll, certificate renewal and token revocation
//! (audited), and agents as the API shows them (clock skew judged against
//! the configured tolerance).

use super::service::Service;
use crate::domain::{
    Agent, AgentDetail, AgentFilter, ApiCaller, EnrollmentToken, Millis, NewAgent, Page, Scope,
    TokenGrant,
};
use crate::store::{Audit, TokenRow};
use crate::{Error, Result};

/// A token to create ([`Service::create_enrollment_token`]).
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// Tenant name.
    pub tenant: &'a str,
    /// Site, empty for none (at most 128 bytes).
    pub site: &'a str,
    /// Role of the agents it enrolls (`server` or `workstation`).
    pub role: &'a str,
    /// Lifetime from now.
    pub valid_for_ms: i64,
    pub max_uses: u32,
}

/// Whether a stored token may enroll at `now`: `Unauthenticated` when
/// unknown, revoked or expired, `PermissionDenied` when used up.
fn grant(row: Option<TokenRow>, now: Millis) -> Result<TokenGrant> {
    let row = row.ok_or_else(|| Error::Unauthenticated("unknown enrollment token".into()))?;
    if row.revoked_at.is_some() {
        return Err(Error::Unauthenticated("enrollment token revoked".into()));
    }
    if row.expires_at <= now {
        return Err(Error::Unauthenticated("enrollment token expired".into()));
    }
    if row.uses >= row.max_uses {
        return Err(Error::PermissionDenied(
            "enrollment token has no uses left".into(),
        ));
    }
    Ok(TokenGrant {
        tenant_id: row.tenant_id,
        tenant_name: row.tenant_name,
        site: row.site,
        role: row.role,
    })
}

impl Service {
    /// Whether a token may enroll right now. Consumes nothing.
    pub async fn check_enrollment_token(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> Result<TokenGrant> {
        grant(self.store().token_by_hash(token_hash).await?, now)
    }

    /// Consumes one use of the token and creates the agent, atomically; the
    /// same refusals as [`Service::check_enrollment_token`] leave nothing
    /// behind.
    pub async fn enroll_agent(
        &self,
        token_hash: &str,
        now: Millis,
        agent: &NewAgent,
    ) -> Result<()> {
        if self.store().enroll_agent(token_hash, now, agent).await? {
            return Ok(());
        }
        // Lost a race with another enrollment or the clock: say why.
        self.check_enrollment_token(token_hash, now).await?;
        Err(Error::PermissionDenied(
            "enrollment token no longer valid".into(),
        ))
    }

    /// Records a renewed client certificate: the agent's `cert_not_after`
    /// and an `agent.renewed` audit entry, together. A revoked or unknown
    /// agent is `PermissionDenied` and nothing is written.
    pub async fn renew_agent_cert(
        &self,
        tenant_id: &str,
        agent_id: &str,
        cert_not_after: Millis,
        now: Millis,
        actor: &str,
    ) -> Result<()> {
        let mut desk = self.begin().await?;
        if !desk
            .tx
            .set_cert_not_after(tenant_id, agent_id, cert_not_after)
            .await?
        {
            return Err(Error::PermissionDenied(
                "unknown or revoked agent".to_owned(),
            ));
        }
        desk.tx
            .insert_audit(Audit {
                tenant_id: Some(tenant_id),
                at: now,
                actor,
                source: "",
                action: "agent.renewed",
                target: &format!("agent/{agent_id}"),
                detail: &format!("certificate valid until {cert_not_after} (unix ms)"),
            })
            .await?;
        desk.commit().await
    }

    /// Creates an enrollment token for a tenant in the caller's scope and
    /// audits it; returns the token (its secret shown once, only its hash
    /// kept). A tenant outside the scope is `NotFound`; a bad use count,
    /// role or site is `InvalidArgument` naming the field.
    pub async fn create_enrollment_token(
        &self,
        caller: &ApiCaller,
        new: &NewToken<'_>,
        now: Millis,
    ) -> Result<(EnrollmentToken, String)> {
        caller.require_write()?;
        if new.max_uses == 0 {
            return Err(Error::InvalidArgument("max_uses must be at least 1".into()));
        }
        if !super::policy::ROLES.contains(&new.role) {
            return Err(Error::InvalidArgument(format!(
                "role must be server or workstation, not {:?}",
                new.role
            )));
        }
        if new.site.len() > 128 {
            return Err(Error::InvalidArgument("site is longer than 128".into()));
        }
        if new.valid_for_ms <= 0 {
            return Err(Error::InvalidArgument(
                "expiry must be in the future".into(),
            ));
        }
        let tenant = self
            .store()
            .list_tenants(&caller.scope)
            .await?
            .into_iter()
            .find(|t| t.name == new.tenant)
            .ok_or_else(|| Error::NotFound(format!("tenant {:?}", new.tenant)))?;
        let secret = crate::secrets::generate(crate::secrets::TOKEN_PREFIX);
        let id = uuid::Uuid::new_v4().to_string();
        self.store()
            .create_enrollment_token(&crate::domain::NewEnrollmentToken {
                id: id.clone(),
                tenant_id: tenant.id.clone(),
                site: new.site.to_string(),
                token_hash: crate::secrets::hash(&secret),
                expires_at: now.saturating_add(new.valid_for_ms),
                max_uses: new.max_uses,
                role: new.role.to_string(),
            })
            .await?;
        let mut desk = self.begin().await?;
        desk.tx
            .insert_audit(Audit {
                tenant_id: Some(&tenant.id),
                at: now,
                actor: &caller.name,
                source: &caller.source,
                action: "enrollment_token.created",
                target: &format!("enrollment_token/{id}"),
                detail: &format!(
                    "{} use(s), role {}, site {:?}",
                    new.max_uses, new.role, new.site
                ),
            })
            .await?;
        let token = desk.tx.token(&id).await?;
        desk.commit().await?;
        Ok((token, secret))
    }

    /// Revokes an enrollment token (refused from now on) and audits it;
    /// viewers are refused, another tenant's token is `NotFound`, a second
    /// revoke is `Conflict`.
    pub async fn revoke_enrollment_token(
        &self,
        caller: &ApiCaller,
        id: &str,
        now: Millis,
    ) -> Result<EnrollmentToken> {
        caller.require_write()?;
        let mut desk = self.begin().await?;
        let tenant = desk
            .tx
            .token_tenant(&caller.scope, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("enrollment token {id}")))?;
        if !desk.tx.revoke_token(id, now).await? {
            return Err(Error::Conflict(format!(
                "enrollment token {id} is already revoked"
            )));
        }
        desk.tx
            .insert_audit(Audit {
                tenant_id: Some(&tenant),
                at: now,
                actor: &caller.name,
                source: &caller.source,
                action: "enrollment_token.revoked",
                target: &format!("enrollment_token/{id}"),
                detail: "refused from now on",
            })
            .await?;
        let token = desk.tx.token(id).await?;
        desk.commit().await?;
        Ok(token)
    }

    /// Agents in scope, with `clock_skewed` judged against the tolerance.
    pub async fn list_agents(&self, scope: &Scope) -> Result<Vec<Agent>> {
        self.find_agents(scope, &AgentFilter::default(), Page::everything())
            .await
    }

    /// One page of the agents in scope matching `filter`, with
    /// `clock_skewed` judged as in `list_agents`.
    pub async fn find_agents(
        &self,
        scope: &Scope,
        filter: &AgentFilter,
        page: Page,
    ) -> Result<Vec<Agent>> {
        let mut agents = self.store().find_agents(scope, filter, page).await?;
        for a in &mut agents {
            a.clock_skewed = self.limits.clock_skewed(a.clock_offset_ms);
        }
        Ok(agents)
    }

    /// One agent with its checks, `clock_skewed` judged as in `list_agents`.
    pub async fn get_agent(&self, scope: &Scope, agent_id: &str) -> Result<Option<AgentDetail>> {
        let mut detail = self.store().get_agent(scope, agent_id).await?;
        if let Some(d) = detail.as_mut() {
            d.agent.clock_skewed = self.limits.clock_skewed(d.agent.clock_offset_ms);
        }
        Ok(detail)
    }
}

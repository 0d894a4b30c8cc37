//! The tenant's effective ticket policy where a decision is made from a
//! ticket row (escalation, site tickets, operator escalation): overrides
//! are keyed by tenant name, rows carry the tenant id.

use std::borrow::Cow;

use super::problems::Tx;
use crate::Result;
use crate::tickets::policy::Policy;

/// `policy` as it applies to tenant `tenant_id`. Without any override
/// table this costs nothing (no query).
pub(super) async fn for_tenant_id<'p>(
    tx: &mut Tx,
    policy: &'p Policy,
    tenant_id: &str,
) -> Result<Cow<'p, Policy>> {
    if policy.tenants.is_empty() {
        return Ok(Cow::Borrowed(policy));
    }
    let name: Option<String> = sqlx::query_scalar("SELECT name FROM tenants WHERE id = ?")
        .bind(tenant_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match name {
        Some(n) => policy.for_tenant(&n),
        None => Cow::Borrowed(policy),
    })
}

/// The id of the tenant named `name`, if it exists.
pub(super) async fn tenant_id(tx: &mut Tx, name: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT id FROM tenants WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?)
}

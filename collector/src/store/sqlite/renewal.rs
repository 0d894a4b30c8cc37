//! Certificate renewal: the agent's new `cert_not_after` and its audit
//! entry, in one transaction.

use super::SqliteStore;
use crate::domain::Millis;
use crate::{Error, Result};

pub(super) async fn renew_agent_cert(
    store: &SqliteStore,
    tenant_id: &str,
    agent_id: &str,
    cert_not_after: Millis,
    now: Millis,
    actor: &str,
) -> Result<()> {
    let mut tx = store.write_tx().await?;
    let updated = sqlx::query(
        "UPDATE agents SET cert_not_after = ?
         WHERE id = ? AND tenant_id = ? AND revoked_at IS NULL",
    )
    .bind(cert_not_after)
    .bind(agent_id)
    .bind(tenant_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(Error::PermissionDenied(
            "unknown or revoked agent".to_owned(),
        ));
    }
    super::insert_audit(
        &mut *tx,
        Some(tenant_id),
        now,
        actor,
        "agent.renewed",
        &format!("agent/{agent_id}"),
        &format!("certificate valid until {cert_not_after} (unix ms)"),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

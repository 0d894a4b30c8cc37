//! Enrollment token administration (list, revoke) and the enrollment audit
//! trail.
//!
//! Tokens are looked up by the SHA-256 of the presented secret through the
//! UNIQUE index on `token_hash`. That is not a timing side channel: the
//! index compares hashes, and an attacker who learns how many leading hash
//! bytes matched learns nothing about a 256-bit secret (they cannot steer
//! the hash of their guesses toward a prefix without inverting SHA-256).

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{SqliteStore, scope_tenant};
use crate::domain::{ApiCaller, EnrollmentToken, Millis, Scope};
use crate::{Error, Result};

/// The columns of [`EnrollmentToken`] (a macro so queries stay static
/// strings).
macro_rules! select {
    () => {
        "SELECT t.id, t.tenant_id, n.name AS tenant_name, t.site, t.role, t.created_at,
        t.expires_at, t.uses, t.max_uses, t.revoked_at
    FROM enrollment_tokens t JOIN tenants n ON n.id = t.tenant_id"
    };
}

fn token_from_row(r: &SqliteRow) -> Result<EnrollmentToken> {
    let uses: i64 = r.try_get("uses")?;
    let max_uses: i64 = r.try_get("max_uses")?;
    Ok(EnrollmentToken {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        tenant_name: r.try_get("tenant_name")?,
        site: r.try_get("site")?,
        role: r.try_get("role")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        uses: u32::try_from(uses).unwrap_or(u32::MAX),
        max_uses: u32::try_from(max_uses).unwrap_or(u32::MAX),
        revoked_at: r.try_get("revoked_at")?,
    })
}

pub(super) async fn list(store: &SqliteStore, scope: &Scope) -> Result<Vec<EnrollmentToken>> {
    let rows = sqlx::query(concat!(
        select!(),
        " WHERE (?1 IS NULL OR t.tenant_id = ?1) ORDER BY t.created_at DESC, t.id"
    ))
    .bind(scope_tenant(scope))
    .fetch_all(&store.pool)
    .await?;
    rows.iter().map(token_from_row).collect()
}

pub(super) async fn revoke(
    store: &SqliteStore,
    caller: &ApiCaller,
    id: &str,
    now: Millis,
) -> Result<EnrollmentToken> {
    caller.require_write()?;
    let mut tx = store.write_tx().await?;
    let tenant: Option<String> = sqlx::query_scalar(
        "SELECT tenant_id FROM enrollment_tokens WHERE id = ?2 AND (?1 IS NULL OR tenant_id = ?1)",
    )
    .bind(scope_tenant(&caller.scope))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let tenant = tenant.ok_or_else(|| Error::NotFound(format!("enrollment token {id}")))?;
    let changed = sqlx::query(
        "UPDATE enrollment_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(Error::Conflict(format!(
            "enrollment token {id} is already revoked"
        )));
    }
    super::insert_audit(
        &mut *tx,
        Some(&tenant),
        now,
        &caller.name,
        "enrollment_token.revoked",
        &format!("enrollment_token/{id}"),
        "refused from now on",
    )
    .await?;
    let row = sqlx::query(concat!(select!(), " WHERE t.id = ?"))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let token = token_from_row(&row)?;
    tx.commit().await?;
    Ok(token)
}

pub(super) async fn audit_enrollment(
    store: &SqliteStore,
    token_hash: &str,
    now: Millis,
    entry: (&str, &str, &str, &str),
) -> Result<()> {
    let (actor, action, target, detail) = entry;
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, at, actor, action, target, detail)
         VALUES ((SELECT tenant_id FROM enrollment_tokens WHERE token_hash = ?), ?, ?, ?, ?, ?)",
    )
    .bind(token_hash)
    .bind(now)
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(detail)
    .execute(&store.pool)
    .await?;
    Ok(())
}

//! `token list` and `token revoke`: enrollment token administration from
//! the command line (the same store calls as the API, as an MSP-wide admin).

use serde_json::json;

use crate::commands::{operator, store, tenant_id};
use crate::domain::{EnrollmentToken, Scope, now_millis, rfc3339};
use crate::serve::open_store;
use crate::{Config, Result};

/// `token list [--tenant NAME] [--json]`: every token, newest first.
pub async fn token_list(cfg: &Config, tenant: Option<&str>, as_json: bool) -> Result<()> {
    let s = store(cfg).await?;
    let scope = match tenant {
        None => Scope::All,
        Some(name) => Scope::Tenant(tenant_id(&s, name).await?),
    };
    let tokens = s.store().list_enrollment_tokens(&scope).await?;
    if as_json {
        println!("{}", json!(tokens));
        return Ok(());
    }
    println!(
        "{:<36}  {:<20}  {:<12}  {:<11}  {:<20}  {:>9}  REVOKED",
        "ID", "TENANT", "SITE", "ROLE", "EXPIRES", "USES/MAX"
    );
    for t in &tokens {
        println!("{}", row(t));
    }
    Ok(())
}

fn row(t: &EnrollmentToken) -> String {
    format!(
        "{:<36}  {:<20}  {:<12}  {:<11}  {:<20}  {:>9}  {}",
        t.id,
        t.tenant_name,
        if t.site.is_empty() { "-" } else { &t.site },
        t.role,
        rfc3339::format(t.expires_at),
        format!("{}/{}", t.uses, t.max_uses),
        t.revoked_at
            .map_or_else(|| "-".to_string(), rfc3339::format),
    )
}

/// `token revoke ID [--by NAME]`: refused from now on; audited.
pub async fn token_revoke(cfg: &Config, id: &str, actor: &str) -> Result<()> {
    let s = open_store(cfg).await?;
    let t = s
        .revoke_enrollment_token(&operator(actor), id, now_millis())
        .await?;
    println!(
        "revoked enrollment token {} (tenant {}, {}/{} uses); it is refused from now on",
        t.id, t.tenant_name, t.uses, t.max_uses
    );
    Ok(())
}

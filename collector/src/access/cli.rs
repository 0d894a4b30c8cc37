//! `forewarn-collector operator …` and `api-key …`: the same operations
//! (and audit) as the API, acting as `cli:<user>`, an msp-admin.

use clap::Subcommand;
use serde_json::json;

use super::{Access, OperatorView};
use crate::commands::{operator, store, whoami};
use crate::domain::{Role, now_millis, rfc3339};
use crate::{Config, Result};

fn parse_role(v: &str) -> std::result::Result<Role, String> {
    Role::parse(v).ok_or_else(|| format!("must be msp-admin, technician or viewer, not {v:?}"))
}

/// `operator …`: people who sign in to the dashboard.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Create an operator and print a one-time setup link (24 h) where they
    /// set their password. There is never a default password.
    Add {
        username: String,
        /// msp-admin (everything), technician (works tickets and maintenance
        /// of their tenants) or viewer (reads their tenants).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// A tenant a technician or viewer works on (repeat for several).
        #[arg(long = "tenant")]
        tenants: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List operators and their state (active, pending, disabled, revoked).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop an operator from signing in (their sessions end); `enable` undoes it.
    Disable { username: String },
    /// Let a disabled operator sign in again.
    Enable { username: String },
    /// Revoke an operator for good (their sessions end).
    Revoke { username: String },
    /// Print a new setup link (forgotten password, expired link); their
    /// sessions end.
    Reset { username: String },
    /// Turn TOTP on (prints the otpauth:// URL for an authenticator app) or off.
    Totp {
        username: String,
        #[arg(long)]
        off: bool,
    },
}

/// `api-key …`: keys for scripts and integrations.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key and print it once.
    Create {
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
        /// Restrict the key to one tenant; without it the key sees all tenants.
        #[arg(long)]
        tenant: Option<String>,
        /// msp-admin, technician (may act on tickets) or viewer (read-only).
        #[arg(long, default_value = "technician", value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Refuse a key until it is enabled again.
    Disable { id: String },
    /// Accept a disabled key again.
    Enable { id: String },
    /// Revoke a key for good.
    Revoke { id: String },
}

async fn access(cfg: &Config) -> Result<Access> {
    let s = store(cfg).await?;
    Ok(Access::new(
        s.store().clone(),
        std::time::Duration::from_secs(cfg.http.session_idle_secs),
    ))
}

fn setup_url(cfg: &Config, path: &str) -> String {
    format!(
        "{}{path}",
        cfg.http
            .public_url(cfg.http.listen_addr)
            .trim_end_matches('/')
    )
}

fn print_operator(o: &OperatorView) {
    println!(
        "{:<20} {:<11} {:<9} totp={:<3} tenants={} last_login={}",
        o.username,
        o.role,
        o.status,
        if o.totp { "on" } else { "off" },
        if o.tenant_ids.is_empty() {
            "all".to_string()
        } else {
            o.tenant_ids.join(",")
        },
        o.last_login_at.map_or("never".into(), rfc3339::format),
    );
}

/// Runs an `operator` command.
pub async fn operator_cmd(cfg: &Config, cmd: OperatorCommand) -> Result<()> {
    let a = access(cfg).await?;
    let by = operator(&whoami());
    let now = now_millis();
    match cmd {
        OperatorCommand::Add {
            username,
            role,
            tenants,
            json,
        } => {
            let i = a
                .create_operator(&by, username.trim(), role, &tenants, now)
                .await?;
            let url = setup_url(cfg, &i.setup_path);
            if json {
                println!("{}", json!({"operator": i.operator, "setup_url": url}));
            } else {
                println!(
                    "operator {:?} created ({role}); send them this one-time setup link (24 h):\n\n  {url}\n",
                    i.operator.username
                );
            }
        }
        OperatorCommand::List { json } => {
            let ops = a.list_operators(&by).await?;
            if json {
                println!("{}", json!(ops));
            } else {
                ops.iter().for_each(print_operator);
            }
        }
        OperatorCommand::Disable { username } => {
            print_operator(&a.set_operator_disabled(&by, &username, true, now).await?)
        }
        OperatorCommand::Enable { username } => {
            print_operator(&a.set_operator_disabled(&by, &username, false, now).await?)
        }
        OperatorCommand::Revoke { username } => {
            print_operator(&a.revoke_operator(&by, &username, now).await?)
        }
        OperatorCommand::Reset { username } => {
            let path = a.reset_operator(&by, &username, now).await?;
            println!(
                "new one-time setup link for {username:?} (24 h):\n\n  {}\n",
                setup_url(cfg, &path)
            );
        }
        OperatorCommand::Totp { username, off } => {
            match a.set_operator_totp(&by, &username, !off, now).await? {
                Some(url) => println!(
                    "TOTP on for {username:?}; add it to an authenticator app (shown once):\n\n  {url}\n"
                ),
                None => println!("TOTP off for {username:?}"),
            }
        }
    }
    Ok(())
}

/// Runs an `api-key` command.
pub async fn api_key_cmd(cfg: &Config, cmd: ApiKeyCommand) -> Result<()> {
    let a = access(cfg).await?;
    let by = operator(&whoami());
    let now = now_millis();
    let show = |k: &crate::store::ApiKeyRow| {
        let state = if k.revoked_at.is_some() {
            "revoked"
        } else if k.disabled_at.is_some() {
            "disabled"
        } else {
            "active"
        };
        println!(
            "{}  {:<20} {:<11} {:<8} tenant={} last_used={}",
            k.id,
            k.name,
            k.role,
            state,
            k.tenant_name.as_deref().unwrap_or("all"),
            k.last_used_at.map_or("never".into(), rfc3339::format),
        );
    };
    match cmd {
        ApiKeyCommand::Create {
            name,
            tenant,
            role,
            json,
        } => {
            let k = a
                .create_key(&by, &name, tenant.as_deref(), role, now)
                .await?;
            if json {
                println!(
                    "{}",
                    json!({"key": k.secret, "id": k.key.id, "name": k.key.name, "tenant": tenant, "role": role,
                           "scope": if tenant.is_some() { "tenant" } else { "all" }})
                );
            } else {
                let scope = tenant.map_or("all tenants".to_string(), |t| format!("tenant {t:?}"));
                println!(
                    "API key {name:?} ({role}) for {scope}; shown only once:\n\n  {}\n\nuse it as: Authorization: Bearer {}",
                    k.secret, k.secret
                );
            }
        }
        ApiKeyCommand::List { json } => {
            let keys = a.list_keys(&by).await?;
            if json {
                println!("{}", json!(keys));
            } else {
                keys.iter().for_each(show);
            }
        }
        ApiKeyCommand::Disable { id } => show(&a.set_key_disabled(&by, &id, true, now).await?),
        ApiKeyCommand::Enable { id } => show(&a.set_key_disabled(&by, &id, false, now).await?),
        ApiKeyCommand::Revoke { id } => show(&a.revoke_key(&by, &id, now).await?),
    }
    Ok(())
}

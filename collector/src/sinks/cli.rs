//! `forewarn-collector sink …`: see, test, map and unpark the configured
//! ticket sinks from a shell, with the same operations (and audit) as
//! the API and the dashboard ([`super::ops`]).

use clap::Subcommand;
use serde_json::json;

use super::config::Parsed;
use super::{Built, SinkContext, ops};
use crate::commands::{operator, store, whoami};
use crate::domain::{now_millis, rfc3339};
use crate::{Config, Error, Result};

/// `sink …`: the ticket sinks of the config file (`[[sinks.<kind>]]`).
#[derive(Debug, Subcommand)]
pub enum SinkCommand {
    /// List the configured sinks: name, kind, routes (tenants, tiers) and
    /// backlog (pending, oldest pending, failed = parked or given up).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Build one sink from the config (reading its secrets) and run its
    /// health check: the real call to the receiver, without side effects
    /// where the vendor allows it. Exit 0 if it passed, 1 if not.
    Test {
        /// The sink's `name`.
        name: String,
    },
    /// Show the receiver's side of one tenant's mapping, read from the
    /// receiver (PSA kinds: company, board or queue, statuses,
    /// priorities), for confirmation before tickets flow. Kinds without a
    /// mapping say so (exit 1).
    Map {
        /// The sink's `name`.
        name: String,
        /// The tenant (name) whose mapping to show.
        #[arg(long)]
        tenant: String,
    },
    /// Send the sink's parked or given-up deliveries again (after fixing
    /// the cause), audited as `cli:<user>`: all of them, one tenant's, or
    /// one row (`--id`, from `GET /api/v1/outbox`).
    Retry {
        /// The sink's `name`.
        name: String,
        /// Only this outbox row.
        #[arg(long, conflicts_with = "tenant")]
        id: Option<i64>,
        /// Only this tenant's deliveries (name or id).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value_t = whoami())]
        by: String,
    },
}

/// Runs one `sink` command.
pub async fn run(cfg: &Config, cmd: SinkCommand) -> Result<()> {
    match cmd {
        SinkCommand::List { json } => list(cfg, json).await,
        SinkCommand::Test { name } => {
            let b = build(cfg, &name)?;
            match b.sink.health().await {
                Ok(what) => {
                    println!("sink {name} ({}): ok: {what}", b.kind);
                    Ok(())
                }
                Err(problem) => Err(Error::Unavailable(format!(
                    "sink {name} ({}): health check failed: {problem}",
                    b.kind
                ))),
            }
        }
        SinkCommand::Map { name, tenant } => {
            let b = build(cfg, &name)?;
            match b.sink.mapping(&tenant).await {
                Ok(mapping) => {
                    println!("sink {name} ({}), tenant {tenant}:\n{mapping}", b.kind);
                    Ok(())
                }
                Err(problem) => Err(Error::Unavailable(format!(
                    "sink {name} ({}), tenant {tenant}: {problem}",
                    b.kind
                ))),
            }
        }
        SinkCommand::Retry {
            name,
            id,
            tenant,
            by,
        } => {
            let name = find_parsed(cfg, &name)?.settings.name;
            let svc = store(cfg).await?;
            let s = svc.store().as_ref();
            let caller = operator(&by);
            let n = match (id, tenant) {
                (Some(id), _) => ops::retry_one(s, &caller, id, now_millis()).await?,
                (None, t) => {
                    let t = match t {
                        Some(t) => Some(ops::tenant_in_scope(s, &caller.scope, &t).await?),
                        None => None,
                    };
                    ops::retry_sink(s, &caller, &name, t.as_deref(), now_millis()).await?
                }
            };
            println!("sink {name}: {n} deliveries sent again");
            Ok(())
        }
    }
}

/// Every configured sink, parsed (no secret read).
fn parsed(cfg: &Config) -> Result<Vec<Parsed>> {
    cfg.sinks
        .parse()
        .map_err(|problems| Error::Config(problems.join("; ")))
}

/// The sink named `name`, parsed; an unknown name lists the configured
/// ones.
fn find_parsed(cfg: &Config, name: &str) -> Result<Parsed> {
    let mut all = parsed(cfg)?;
    match all.iter().position(|p| p.settings.name == name) {
        Some(i) => Ok(all.swap_remove(i)),
        None => Err(ops::unknown_sink(
            name,
            all.iter().map(|p| p.settings.name.as_str()),
        )),
    }
}

/// Builds the one sink named `name` (reading its secrets only).
fn build(cfg: &Config, name: &str) -> Result<Built> {
    let ctx = SinkContext {
        public_url: cfg.http.public_url(cfg.http.listen_addr),
    };
    super::build_one(find_parsed(cfg, name)?, &ctx)
}

async fn list(cfg: &Config, as_json: bool) -> Result<()> {
    let all = parsed(cfg)?;
    let svc = store(cfg).await?;
    let depth = svc.store().outbox_depth().await?;
    let now = now_millis();
    let mut rows = Vec::new();
    for p in &all {
        let s = &p.settings;
        let d = depth.iter().find(|d| d.sink == s.name);
        let (pending, oldest, failed) =
            d.map_or((0, None, 0), |d| (d.pending, d.oldest_pending_at, d.failed));
        if as_json {
            rows.push(json!({
                "name": s.name, "kind": p.kind, "tenants": s.tenants, "tiers": s.tiers,
                "backlog": {
                    "pending": pending,
                    "oldest_pending_at": oldest.map(rfc3339::format),
                    "failed": failed,
                },
            }));
        } else {
            let routes = |v: Vec<String>| {
                if v.is_empty() {
                    "all".to_string()
                } else {
                    v.join(",")
                }
            };
            let tiers = routes(s.tiers.iter().map(|t| format!("L{t}")).collect());
            let age = oldest.map_or("-".to_string(), |at| {
                format!("{}s", (now - at).max(0) / 1000)
            });
            println!(
                "{:<20} {:<12} tenants={} tiers={} pending={pending} oldest={age} failed={failed}",
                s.name,
                p.kind,
                routes(s.tenants.clone()),
                tiers
            );
        }
    }
    if as_json {
        println!("{}", serde_json::Value::Array(rows));
    } else if all.is_empty() {
        println!("no sinks configured ([[sinks.<kind>]] in the config file)");
    }
    Ok(())
}

//! `forewarn-collector maintenance add|list|remove` and `silence
//! add|list|remove`: the same validation and audit as the HTTP API, acting
//! as operator `cli:<user>` on every tenant.

use clap::{Args, Subcommand};
use serde_json::json;

use super::request::{self, RecurrenceRequest, SilenceRequest, WeeklyRequest, WindowRequest};
use super::{Kind, WindowView};
use crate::commands::{operator, store, tenant_id, whoami};
use crate::domain::{Scope, now_millis};
use crate::tickets::Service;
use crate::{Config, Error, Result};

/// Who a window covers.
#[derive(Debug, Clone, Args)]
pub struct ScopeArgs {
    /// Tenant name (default: the config's `default_tenant`).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only hosts of this site.
    #[arg(long)]
    pub site: Option<String>,
    /// Only this host: agent id or hostname.
    #[arg(long)]
    pub host: Option<String>,
    /// Only this check kind (e.g. backup, disk; `agent` is liveness).
    #[arg(long)]
    pub check: Option<String>,
}

/// `maintenance …`: planned windows.
// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Plan a window: one-off (--start/--end), weekly (--weekly/--at/--duration)
    /// or by an RRULE (--rrule/--at/--duration), in the tenant's time zone.
    Add {
        #[command(flatten)]
        scope: ScopeArgs,
        /// One-off start: RFC 3339 (2026-05-01T20:00:00Z) or local "2026-05-01 22:00".
        #[arg(long, requires = "end", conflicts_with_all = ["weekly", "rrule"])]
        start: Option<String>,
        /// One-off end, same formats.
        #[arg(long, requires = "start")]
        end: Option<String>,
        /// Recurring days: mon,tue or mon-fri or daily.
        #[arg(long, requires_all = ["at", "duration"], conflicts_with = "rrule")]
        weekly: Option<String>,
        /// Recurrence as an RFC 5545 RRULE subset, e.g. 'FREQ=MONTHLY;BYDAY=2TU'
        /// (Patch Tuesday) or 'FREQ=MONTHLY;BYMONTHDAY=-1' (last day of the month).
        #[arg(long, requires_all = ["at", "duration"])]
        rrule: Option<String>,
        /// Anchor date of an --rrule series (DTSTART), YYYY-MM-DD: INTERVAL
        /// counts from it (default: today in the tenant's time zone).
        #[arg(long, requires = "rrule")]
        dtstart: Option<String>,
        /// Local start time of a recurring window, HH:MM.
        #[arg(long)]
        at: Option<String>,
        /// Length of a recurring window, e.g. 2h, 90m.
        #[arg(long)]
        duration: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
        /// Who is acting (recorded in the audit log).
        #[arg(long, default_value_t = whoami())]
        by: String,
        #[arg(long)]
        json: bool,
    },
    /// List windows (current and upcoming; --all adds ended ones).
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Remove a window.
    Remove {
        id: i64,
        #[arg(long, default_value_t = whoami())]
        by: String,
    },
}

/// `silence …`: ad-hoc, from now.
#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Silence a scope from now on, e.g. --host web1 --for 30m --reason "disk swap".
    Add {
        #[command(flatten)]
        scope: ScopeArgs,
        /// How long, e.g. 30m, 2h.
        #[arg(long = "for")]
        duration: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
        #[arg(long, default_value_t = whoami())]
        by: String,
        #[arg(long)]
        json: bool,
    },
    /// List silences (current; --all adds ended ones).
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// End a silence now (removes it).
    Remove {
        id: i64,
        #[arg(long, default_value_t = whoami())]
        by: String,
    },
}

/// Runs a `maintenance` command.
pub async fn maintenance(cfg: &Config, cmd: MaintenanceCommand) -> Result<()> {
    let s = store(cfg).await?;
    match cmd {
        MaintenanceCommand::Add {
            scope,
            start,
            end,
            weekly,
            rrule,
            dtstart,
            at,
            duration,
            reason,
            by,
            json,
        } => {
            let (weekly, recurrence) = match (weekly, rrule, at, duration) {
                (Some(days), None, Some(at), Some(duration)) => {
                    (Some(WeeklyRequest { days, at, duration }), None)
                }
                (None, Some(rrule), Some(at), Some(duration)) => (
                    None,
                    Some(RecurrenceRequest {
                        rrule,
                        at,
                        duration,
                        dtstart,
                    }),
                ),
                (None, None, None, None) => (None, None),
                _ => {
                    return Err(Error::InvalidArgument(
                        "--at and --duration go with one of --weekly or --rrule".into(),
                    ));
                }
            };
            let req = WindowRequest {
                tenant: Some(scope.tenant.unwrap_or_else(|| cfg.default_tenant.clone())),
                site: scope.site,
                host: scope.host,
                check: scope.check,
                start,
                end,
                weekly,
                recurrence,
                reason,
            };
            let now = now_millis();
            let w = request::create_window(&s, &operator(&by), req, now).await?;
            print_one(&WindowView::new(&w, now), json, "created");
        }
        MaintenanceCommand::List { tenant, all, json } => {
            list(&s, tenant.as_deref(), &Kind::WINDOWS, all, json).await?;
        }
        MaintenanceCommand::Remove { id, by } => {
            remove(&s, id, &Kind::WINDOWS, &by).await?;
        }
    }
    Ok(())
}

/// Runs a `silence` command.
pub async fn silence(cfg: &Config, cmd: SilenceCommand) -> Result<()> {
    let s = store(cfg).await?;
    match cmd {
        SilenceCommand::Add {
            scope,
            duration,
            reason,
            by,
            json,
        } => {
            let req = SilenceRequest {
                tenant: Some(scope.tenant.unwrap_or_else(|| cfg.default_tenant.clone())),
                site: scope.site,
                host: scope.host,
                check: scope.check,
                duration,
                reason,
            };
            let now = now_millis();
            let w = request::create_silence(&s, &operator(&by), req, now).await?;
            print_one(&WindowView::new(&w, now), json, "created");
        }
        SilenceCommand::List { tenant, all, json } => {
            list(&s, tenant.as_deref(), &Kind::SILENCES, all, json).await?;
        }
        SilenceCommand::Remove { id, by } => {
            remove(&s, id, &Kind::SILENCES, &by).await?;
        }
    }
    Ok(())
}

async fn remove(s: &Service, id: i64, kinds: &[Kind], by: &str) -> Result<()> {
    let now = now_millis();
    let w = s.delete_maintenance(&operator(by), id, kinds, now).await?;
    print_one(&WindowView::new(&w, now), false, "removed");
    Ok(())
}

fn print_one(v: &WindowView, as_json: bool, what: &str) {
    if as_json {
        println!("{}", json!(v));
    } else {
        println!("{what}:\n{}", v.line());
    }
}

async fn list(
    s: &Service,
    tenant: Option<&str>,
    kinds: &[Kind],
    all: bool,
    as_json: bool,
) -> Result<()> {
    let scope = match tenant {
        Some(name) => Scope::Tenant(tenant_id(s, name).await?),
        None => Scope::All,
    };
    let now = now_millis();
    let views: Vec<WindowView> = s
        .list_maintenance(&scope, kinds)
        .await?
        .iter()
        .map(|w| WindowView::new(w, now))
        .filter(|v| all || !v.ended)
        .collect();
    if as_json {
        println!("{}", json!(views));
    } else {
        println!(
            "{:>5}  {:<7}  {:<7}  {:<40}  WHEN",
            "ID", "KIND", "STATE", "SCOPE"
        );
        for v in &views {
            println!("{}", v.line());
        }
    }
    Ok(())
}

/// `tenant set-time-zone NAME TZ` (and `tenant add --time-zone`).
pub async fn set_time_zone(s: &Service, tenant: &str, time_zone: &str, by: &str) -> Result<String> {
    let (_, canonical) = super::time_zone(time_zone).map_err(Error::InvalidArgument)?;
    let id = tenant_id(s, tenant).await?;
    s.set_tenant_time_zone(&operator(by), &id, &canonical, now_millis())
        .await?;
    Ok(canonical)
}

/// `tenant set-time-zone NAME TZ`.
pub async fn tenant_set_time_zone(cfg: &Config, tenant: &str, time_zone: &str) -> Result<()> {
    let s = store(cfg).await?;
    let tz = set_time_zone(&s, tenant, time_zone, &whoami()).await?;
    println!("tenant {tenant:?} now uses time zone {tz}");
    Ok(())
}

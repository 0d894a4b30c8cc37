//! `forewarn-collector`: argument parsing and wiring only.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use forewarn_collector::commands::whoami;
use forewarn_collector::domain::{TicketAction, TicketState};
use forewarn_collector::{Config, commands, serve};

/// Forewarn collector: receives agent reports over mutual TLS, keeps the
/// fleet's state in an embedded SQLite store or on PostgreSQL ([store] url),
/// opens and resolves tickets, and serves the operator HTTP API.
///
/// With no config file it runs on built-in defaults: data (SQLite) in
/// /var/lib/forewarn-collector, gRPC on 127.0.0.1:4443, HTTP on
/// 127.0.0.1:8080, a self-generated CA and a tenant named "default".
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// Config file (TOML). Default: /etc/forewarn/collector.toml if it exists,
    /// else built-in defaults.
    #[arg(long, global = true, env = "FOREWARN_COLLECTOR_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides `data_dir` from the config.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collector (gRPC ingest + HTTP API) until SIGINT/SIGTERM.
    Serve,
    /// Manage tenants (MSP client companies).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage enrollment tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage API keys for the HTTP API.
    #[command(subcommand, name = "api-key")]
    ApiKey(forewarn_collector::access::cli::ApiKeyCommand),
    /// Operators: people who sign in to the dashboard (add, list, disable, enable, revoke, reset, totp).
    #[command(subcommand)]
    Operator(forewarn_collector::access::cli::OperatorCommand),
    /// Ticket sinks: list (routes, backlog), test NAME (health check, exit
    /// 0/1), map NAME --tenant T (the receiver's mapping), retry NAME
    /// (send parked deliveries again).
    #[command(subcommand)]
    Sink(forewarn_collector::sinks::cli::SinkCommand),
    /// Inspect and revoke agents.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Inspect and act on tickets: list, show, ack, assign, escalate, note, resolve.
    #[command(subcommand)]
    Tickets(TicketsCommand),
    /// The collector's certificate authority.
    #[command(subcommand)]
    Ca(CaCommand),
    /// The store: copy a whole install into a new one (SQLite -> PostgreSQL).
    #[command(subcommand)]
    Store(forewarn_collector::store::copy::StoreCommand),
    /// Planned maintenance windows: no tickets open for their scope.
    #[command(subcommand)]
    Maintenance(forewarn_collector::maintenance::cli::MaintenanceCommand),
    /// Ad-hoc silences: no tickets for a scope from now on, for a while.
    #[command(subcommand)]
    Silence(forewarn_collector::maintenance::cli::SilenceCommand),
    /// Signed agent releases: keygen and sign (offline), list (what
    /// [releases] dir serves and offers).
    #[command(subcommand)]
    Release(forewarn_collector::releases::cli::ReleaseCommand),
    /// KPIs per tenant: tickets opened, auto-resolved, escalated, SLA
    /// breaches, time to detect / acknowledge / resolve.
    Kpis {
        /// Tickets opened in the last N days.
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant.
    Add {
        /// Unique tenant name, e.g. the client company.
        name: String,
        /// IANA time zone recurring maintenance windows are read in.
        #[arg(long)]
        time_zone: Option<String>,
    },
    /// Set a tenant's IANA time zone (e.g. Europe/Berlin).
    SetTimeZone { name: String, time_zone: String },
    /// List tenants.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an enrollment token and print it with the CA fingerprint and
    /// the exact `forewarn-agent enroll` command to run on the machine.
    Create {
        /// Tenant the enrolled agents belong to.
        #[arg(long)]
        tenant: String,
        /// Site of the enrolled agents (optional).
        #[arg(long, default_value = "")]
        site: String,
        /// Validity, e.g. 30m, 24h, 7d.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        expires_in: std::time::Duration,
        /// How many agents may enroll with it.
        #[arg(long, default_value_t = 1)]
        max_uses: u32,
        /// Role of the enrolled hosts: server or workstation (drives priority).
        #[arg(long, default_value = "workstation")]
        role: String,
        /// Collector URL as agents reach it (printed in the enroll command).
        #[arg(long)]
        collector_url: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List enrollment tokens (never their secrets), newest first.
    List {
        /// Only this tenant's tokens.
        #[arg(long)]
        tenant: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an enrollment token: refused from now on, like an expired one.
    Revoke {
        id: String,
        #[arg(long, default_value_t = whoami())]
        by: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum StateFilter {
    Open,
    Resolved,
    All,
}

#[derive(Subcommand)]
enum TicketsCommand {
    /// List tickets, newest first.
    List {
        #[arg(long, value_enum, default_value = "open")]
        state: StateFilter,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One ticket with its timeline.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge a ticket (stops its escalation timer).
    Ack {
        id: i64,
        /// Who is acting (recorded in the timeline and audit log).
        #[arg(long, default_value_t = whoami())]
        by: String,
    },
    /// Assign a ticket to someone.
    Assign {
        id: i64,
        assignee: String,
        #[arg(long, default_value_t = whoami())]
        by: String,
    },
    /// Escalate a ticket to the next tier by hand.
    Escalate {
        id: i64,
        #[arg(long, default_value_t = whoami())]
        by: String,
    },
    /// Add a note to a ticket's timeline.
    Note {
        id: i64,
        text: String,
        #[arg(long, default_value_t = whoami())]
        by: String,
    },
    /// Resolve a ticket by hand (if the problem is still there, the engine
    /// says so and reopens it).
    Resolve {
        id: i64,
        #[arg(long, default_value_t = whoami())]
        by: String,
    },
}

#[derive(Subcommand)]
enum AgentsCommand {
    /// List enrolled agents.
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke an agent: its certificate is refused from now on and its open
    /// sessions close within a second.
    Revoke {
        id: String,
        #[arg(long, default_value_t = whoami())]
        by: String,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Print the CA fingerprint agents pin at enrollment.
    Fingerprint,
    /// Write a new key-encryption key (32 random bytes, hex, mode 0600) for
    /// `[pki] kek_file`: needed with a PostgreSQL store, the same file on
    /// every replica.
    KekCreate {
        /// Where to write it; an existing file is never overwritten.
        path: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: journald and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .init();
    // Before the config: it is how one makes the file a PostgreSQL config needs.
    if let Command::Ca(CaCommand::KekCreate { path }) = &cli.command {
        return match commands::kek_create(path) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("forewarn-collector: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // Offline signing needs no config.
    if let Command::Release(cmd) = &cli.command
        && forewarn_collector::releases::cli::is_offline(cmd)
    {
        return match forewarn_collector::releases::cli::run_offline(cmd) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("forewarn-collector: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut cfg = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("forewarn-collector: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(d) = cli.data_dir {
        cfg.data_dir = d;
    }
    // Admin commands say which config and store they act on: found the way
    // `serve` finds them (--config, FOREWARN_COLLECTOR_CONFIG, then
    // /etc/forewarn/collector.toml, else built-in defaults).
    if !matches!(cli.command, Command::Serve | Command::Store(_)) {
        let config = cli.config.as_deref().map_or_else(
            || {
                let default = std::path::Path::new(forewarn_collector::config::DEFAULT_CONFIG_PATH);
                if default.exists() {
                    default.display().to_string()
                } else {
                    "none (built-in defaults)".to_string()
                }
            },
            |p| p.display().to_string(),
        );
        let store = cfg
            .store_url()
            .map_or_else(|e| e.to_string(), |u| u.display());
        eprintln!("forewarn-collector: config {config}; store {store}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("forewarn-collector: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Serve => serve::serve(cfg).await,
            Command::Tenant(TenantCommand::Add { name, time_zone }) => {
                commands::tenant_add(&cfg, &name, time_zone.as_deref()).await
            }
            Command::Tenant(TenantCommand::SetTimeZone { name, time_zone }) => {
                forewarn_collector::maintenance::cli::tenant_set_time_zone(&cfg, &name, &time_zone)
                    .await
            }
            Command::Maintenance(cmd) => {
                forewarn_collector::maintenance::cli::maintenance(&cfg, cmd).await
            }
            Command::Silence(cmd) => forewarn_collector::maintenance::cli::silence(&cfg, cmd).await,
            Command::Tenant(TenantCommand::List { json }) => {
                commands::tenant_list(&cfg, json).await
            }
            Command::Token(TokenCommand::Create {
                tenant,
                site,
                expires_in,
                max_uses,
                role,
                collector_url,
                json,
            }) => {
                commands::token_create(
                    &cfg,
                    commands::TokenOptions {
                        tenant: &tenant,
                        site: &site,
                        expires_in,
                        max_uses,
                        role: &role,
                        collector_url: collector_url.as_deref(),
                        json,
                    },
                )
                .await
            }
            Command::ApiKey(cmd) => forewarn_collector::access::cli::api_key_cmd(&cfg, cmd).await,
            Command::Sink(cmd) => forewarn_collector::sinks::cli::run(&cfg, cmd).await,
            Command::Operator(cmd) => {
                forewarn_collector::access::cli::operator_cmd(&cfg, cmd).await
            }
            Command::Tickets(TicketsCommand::Show { id, json }) => {
                commands::ticket_show(&cfg, id, json).await
            }
            Command::Tickets(TicketsCommand::Ack { id, by }) => {
                commands::ticket_action(&cfg, id, TicketAction::Acknowledge, &by).await
            }
            Command::Tickets(TicketsCommand::Assign { id, assignee, by }) => {
                commands::ticket_action(&cfg, id, TicketAction::Assign(assignee), &by).await
            }
            Command::Tickets(TicketsCommand::Escalate { id, by }) => {
                commands::ticket_action(&cfg, id, TicketAction::Escalate, &by).await
            }
            Command::Tickets(TicketsCommand::Note { id, text, by }) => {
                commands::ticket_action(&cfg, id, TicketAction::Note(text), &by).await
            }
            Command::Tickets(TicketsCommand::Resolve { id, by }) => {
                commands::ticket_action(&cfg, id, TicketAction::Resolve, &by).await
            }
            Command::Tickets(TicketsCommand::List {
                state,
                tenant,
                json,
            }) => {
                let state = match state {
                    StateFilter::Open => Some(TicketState::Open),
                    StateFilter::Resolved => Some(TicketState::Resolved),
                    StateFilter::All => None,
                };
                commands::tickets_list(&cfg, state, tenant.as_deref(), json).await
            }
            Command::Ca(CaCommand::Fingerprint) => commands::ca_fingerprint(&cfg).await,
            Command::Ca(CaCommand::KekCreate { path }) => commands::kek_create(&path),
            Command::Store(cmd) => forewarn_collector::store::copy::run(cmd).await,
            Command::Agents(AgentsCommand::List { tenant, json }) => {
                commands::agents_list(&cfg, tenant.as_deref(), json).await
            }
            Command::Token(TokenCommand::List { tenant, json }) => {
                forewarn_collector::token_cli::token_list(&cfg, tenant.as_deref(), json).await
            }
            Command::Token(TokenCommand::Revoke { id, by }) => {
                forewarn_collector::token_cli::token_revoke(&cfg, &id, &by).await
            }
            Command::Agents(AgentsCommand::Revoke { id, by }) => {
                commands::agent_revoke(&cfg, &id, &by).await
            }
            Command::Release(forewarn_collector::releases::cli::ReleaseCommand::List { json }) => {
                forewarn_collector::releases::cli::list(&cfg, json).await
            }
            Command::Release(cmd) => forewarn_collector::releases::cli::run_offline(&cmd),
            Command::Kpis { days, tenant, json } => {
                commands::kpis(&cfg, days, tenant.as_deref(), json).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("forewarn-collector: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `forewarn-agent`: argument parsing and wiring only; see the library.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use forewarn_agent::checks::{CheckState, output};
use forewarn_agent::collectors::Collectors;
use forewarn_agent::config::Config;
use forewarn_agent::enroll::EnrollOptions;
use forewarn_agent::pin::Fingerprint;
use forewarn_agent::run;

/// Exit code for configuration and usage errors.
const EXIT_CONFIG: u8 = 2;
/// Exit code for other failures (collector, host, state dir).
const EXIT_FAILURE: u8 = 1;

/// Forewarn endpoint monitoring agent: evaluates health checks on this
/// machine and reports them to a Forewarn collector over mutual TLS.
#[derive(Parser)]
#[command(name = "forewarn-agent", version = forewarn_agent::VERSION)]
struct Cli {
    #[cfg_attr(
        not(windows),
        doc = "Config file (TOML). Default: /etc/forewarn/agent.toml; when that"
    )]
    #[cfg_attr(
        windows,
        doc = "Config file (TOML). Default: %ProgramData%\\Forewarn\\agent.toml; when that"
    )]
    /// file does not exist, built-in defaults are used. A file given here
    /// must exist.
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enroll this agent with a collector (once per machine).
    ///
    /// Pins the collector CA by its fingerprint, generates the agent's key
    /// pair locally, sends a certificate request with the enrollment token
    /// and writes identity.json, agent.key, agent.crt and ca.crt into the
    /// state dir.
    Enroll(EnrollArgs),
    #[cfg_attr(
        not(windows),
        doc = "Run as the service: report to the collector until SIGTERM/SIGINT."
    )]
    #[cfg_attr(
        windows,
        doc = "Run in this console: report to the collector until Ctrl-C (the service runs the same loop until it is stopped)."
    )]
    Run,
    /// Evaluate every configured check and print the results.
    ///
    /// CPU and memory checks normally decide on an average over their
    /// window; here they decide on a single short sample (CPU over ~200 ms).
    /// Exit code: the most severe state, CRIT > WARN > UNKNOWN > OK, as
    /// 0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN. A config or host error also exits 3
    /// (UNKNOWN) with the error on stderr.
    Check(CheckArgs),
    /// Manage the Windows service "ForewarnAgent" (elevated prompt).
    #[cfg(windows)]
    #[command(subcommand)]
    Service(ServiceCommand),
}

#[cfg(windows)]
#[derive(Subcommand)]
enum ServiceCommand {
    /// Register the service: LocalSystem, automatic (delayed) start,
    /// restarted on failure, with the Event Log source "Forewarn Agent".
    /// A --config given here is the file the service reads. Enroll first.
    Install,
    /// Stop and remove the service and its Event Log source; config, state
    /// and logs stay.
    Uninstall,
    /// Start the service and wait until it runs.
    Start,
    /// Stop the service and wait until it has stopped.
    Stop,
    /// What the service manager starts; from a console, use `run`.
    #[command(hide = true)]
    Run,
}

#[derive(Args)]
struct EnrollArgs {
    /// Collector gRPC address, https://HOST:PORT. Several collectors
    /// (replicas on one database): repeat it or separate with commas; they
    /// are tried in turn, and `run` uses them all unless the config's
    /// `[collector]` says otherwise.
    #[arg(long, value_name = "URL", required = true, value_delimiter = ',')]
    collector: Vec<String>,
    /// Enrollment token from `forewarn-collector token create`.
    #[arg(long, env = "FOREWARN_ENROLL_TOKEN", hide_env_values = true)]
    token: String,
    /// SHA-256 fingerprint of the collector CA certificate, sha256:HEX
    /// (prefix, `:` separators and case are optional).
    #[arg(long, value_name = "FINGERPRINT")]
    ca_fingerprint: String,
    /// Name every collector's certificate must carry [default: the first URL's host].
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// Enroll again even if this agent is already enrolled.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct CheckArgs {
    /// Evaluate once and exit (the only mode for now).
    #[arg(long, required = true)]
    once: bool,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let is_check = matches!(cli.command, Command::Check(_));
    let config_failure = if is_check {
        CheckState::Unknown.exit_code()
    } else {
        EXIT_CONFIG
    };
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => return fail(&anyhow::Error::new(e), config_failure),
    };
    // The log file (Windows) is for the long-running commands only.
    let log_dir = matches!(cli.command, Command::Run).then_some(config.state_dir.as_path());
    #[cfg(windows)]
    let log_dir = match cli.command {
        Command::Service(ServiceCommand::Run) => Some(config.state_dir.as_path()),
        _ => log_dir,
    };
    let problems = forewarn_agent::platform::logging::init(&config.log_level, log_dir);
    for problem in problems {
        tracing::warn!("{problem}");
    }
    // The file a reload re-reads: the one given, or the default if it exists.
    let config_path = cli.config.clone().or_else(|| {
        let default = forewarn_agent::config::default_config_path();
        default.exists().then_some(default)
    });
    match execute(cli.command, config, config_path) {
        Ok(code) => code,
        Err(e) => {
            let code = match e.downcast_ref::<forewarn_agent::Error>() {
                _ if is_check => CheckState::Unknown.exit_code(),
                Some(e) if e.is_config() => EXIT_CONFIG,
                _ => EXIT_FAILURE,
            };
            fail(&e, code)
        }
    }
}

fn execute(
    command: Command,
    config: Config,
    config_path: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    // One thread: the agent's work is tiny and every thread costs memory.
    // Host reads run on a small blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(2)
        .build()
        .context("cannot start the async runtime")?;
    match command {
        Command::Run => {
            runtime.block_on(run::run(config, config_path))?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(windows)]
        Command::Service(command) => {
            use forewarn_agent::platform::windows::{install, service};
            match command {
                ServiceCommand::Install => {
                    install::install(config_path.as_deref())?;
                    println!(
                        "installed the service {}; start it with `forewarn-agent service start`",
                        forewarn_agent::platform::service::SERVICE_NAME
                    );
                }
                ServiceCommand::Uninstall => install::uninstall()?,
                ServiceCommand::Start => install::start()?,
                ServiceCommand::Stop => install::stop()?,
                ServiceCommand::Run => service::run(Box::new(move || {
                    runtime.block_on(run::run(config, config_path))?;
                    Ok(())
                }))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => {
            let results = runtime.block_on(run::check_once(&config))?;
            let text = if args.json {
                format!("{}\n", output::json(&results))
            } else {
                output::table(&results)
            };
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
            Ok(ExitCode::from(output::worst(&results).exit_code()))
        }
        Command::Enroll(args) => {
            let options = EnrollOptions {
                collectors: Collectors::parse(&args.collector)?,
                token: args.token,
                ca_fingerprint: args.ca_fingerprint.parse::<Fingerprint>()?,
                server_name: args.server_name,
                force: args.force,
            };
            let identity = runtime.block_on(run::enroll(&config, options))?;
            let site = if identity.site.is_empty() {
                "none"
            } else {
                &identity.site
            };
            println!(
                "enrolled as agent {} in tenant {} (site {site})",
                identity.agent_id, identity.tenant_name
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints the error and its causes on one line.
fn fail(error: &anyhow::Error, code: u8) -> ExitCode {
    eprintln!(
        "forewarn-agent: error: {}",
        forewarn_agent::error::chain(&**error)
    );
    ExitCode::from(code)
}

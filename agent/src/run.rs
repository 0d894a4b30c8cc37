//! Wiring for the three commands: `run` (scheduler + session until a stop
//! signal), `check --once` and `enroll`. Everything here is orchestration;
//! the behaviour lives in the modules it calls.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::info;

use crate::checks::{CheckResult, Mode};
use crate::collectors::Collectors;
use crate::config::Config;
use crate::enroll::{self, EnrollOptions};
use crate::error::{Error, Result};
use crate::host::{Host, MINIMUM_CPU_SAMPLE};
use crate::identity::{Credentials, Identity, StateDir};
use crate::outbox::Outbox;
use crate::renew::RenewConfig;
use crate::scheduler::Scheduler;
use crate::session::{self, SessionConfig, SessionIo};
use crate::signals::Stop;
use crate::update::{self, UpdateIo, Updater};

/// The enrolled identity in the state dir, the collectors to report to
/// (`[collector]`, else those it enrolled with) and the name their
/// certificates must carry.
pub(crate) async fn enrolled(config: &Config) -> Result<(Credentials, Collectors, String)> {
    let state = StateDir::new(&config.state_dir);
    let credentials = tokio::task::spawn_blocking(move || state.load()).await??;
    let identity = &credentials.identity;
    let collectors = Collectors::parse(
        &config
            .collector
            .addresses()
            .unwrap_or_else(|| identity.collector_urls()),
    )?;
    let server_name = config
        .collector
        .server_name
        .clone()
        .unwrap_or_else(|| identity.server_name.clone());
    Ok((credentials, collectors, server_name))
}

/// Observations buffered between the scheduler and the session.
const OBSERVATION_BUFFER: usize = 64;

/// `forewarn-agent run`: reports until SIGTERM or SIGINT (Windows: the
/// service's stop, Ctrl-C, console close or shutdown), then says Goodbye.
/// `config_path`: the file SIGHUP or a change of it reloads.
pub async fn run(config: Config, config_path: Option<std::path::PathBuf>) -> Result<()> {
    // A new binary under trial by a running agent's self-update: report once and exit.
    if update::trial::requested() {
        return update::trial::run(&config).await;
    }
    // Installed first, so a stop during startup is not lost.
    let mut stop = Stop::install().map_err(Error::Signal)?;

    let (credentials, collectors, server_name) = enrolled(&config).await?;
    let identity = &credentials.identity;
    let mounts = config.checks.disk.mounts.clone();
    let host =
        tokio::task::spawn_blocking(move || Host::new().map(|h| h.with_mounts(&mounts))).await??;
    let facts = host.facts();
    let boot_id = uuid::Uuid::new_v4().to_string();
    info!(
        agent_id = %identity.agent_id,
        tenant = %identity.tenant_name,
        %boot_id,
        collectors = %collectors,
        version = crate::VERSION,
        "agent starting"
    );

    // Before the checks start, so the first report already finds it.
    let outbox = Outbox::open(
        config.spool.options(&config.state_dir),
        &identity.agent_id,
        &boot_id,
    )
    .await?;

    let (observations_tx, observations_rx) = mpsc::channel(OBSERVATION_BUFFER);
    let (interval_tx, interval_rx) = watch::channel(Duration::from_secs(config.interval_secs));
    let (stop_tx, stop_rx) = watch::channel(false);

    let (reload_tx, reload_rx) = watch::channel(std::sync::Arc::new(config.clone()));
    tokio::spawn(crate::reload::watch_config(
        config_path,
        config.clone(),
        reload_tx,
        interval_tx.clone(),
        stop_rx.clone(),
    ));
    let (credentials_tx, credentials_rx) = watch::channel(credentials.clone());
    tokio::spawn(crate::renew::run(
        RenewConfig {
            state: StateDir::new(&config.state_dir),
            collectors: collectors.clone(),
            server_name: server_name.clone(),
            fraction: config.renew_at_fraction,
        },
        credentials_tx,
        stop_rx.clone(),
    ));
    // Self-update: offers from the session, results back to it, and the
    // hand-over once a new binary is installed.
    let (offers_tx, offers_rx) = mpsc::channel(1);
    let (results_tx, results_rx) = mpsc::channel(4);
    let (handover_tx, mut handover_rx) = tokio::sync::oneshot::channel();
    if let Some(done) = update::take_pending(&config.state_dir) {
        info!(from = done.from_version, outcome = ?done.outcome, "running after a self-update");
        let _ = results_tx.try_send(done);
    }
    tokio::spawn(update::run(
        Updater {
            config: config.update.clone(),
            state_dir: config.state_dir.clone(),
            collectors: collectors.clone(),
            server_name: server_name.clone(),
            credentials: credentials_rx.clone(),
        },
        UpdateIo {
            offers: offers_rx,
            results: results_tx,
            handover: handover_tx,
        },
    ));
    let scheduler = Scheduler::new(host, &config, Mode::Continuous);
    let resync = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut scheduler = tokio::spawn(scheduler.run(
        observations_tx,
        resync.clone(),
        interval_rx,
        reload_rx,
        stop_rx.clone(),
    ));
    let mut session = tokio::spawn(session::run(
        SessionConfig {
            collectors,
            server_name,
            credentials,
            boot_id,
            facts,
        },
        outbox,
        SessionIo {
            observations: observations_rx,
            interval: interval_tx,
            shutdown: stop_rx,
            credentials: credentials_rx,
            resync,
            offers: offers_tx,
            update_results: results_rx,
        },
    ));

    let mut handover = None;
    let failure = tokio::select! {
        signal = stop.recv() => { info!(signal, "stop requested"); None }
        Ok(exe) = &mut handover_rx => {
            info!(exe = %exe.display(), "stopping to hand over to the updated binary");
            handover = Some(exe);
            None
        }
        result = &mut scheduler => Some(match result {
            Ok(Ok(())) => Error::Host("checks stopped unexpectedly".to_owned()),
            Ok(Err(e)) => e,
            Err(e) => e.into(),
        }),
        result = &mut session => Some(match result {
            Ok(()) => Error::Protocol("session ended unexpectedly".to_owned()),
            Err(e) => e.into(),
        }),
    };
    let _ = stop_tx.send(true);
    if !scheduler.is_finished() {
        let _ = scheduler.await;
    }
    if !session.is_finished() {
        let _ = session.await;
    }
    if let Some(exe) = handover {
        // Returns only if the new binary could not be started here (on
        // Windows always: the service manager restarts the service).
        let e = update::swap::exec(&exe);
        return Err(Error::Host(format!("hand-over to {}: {e}", exe.display())));
    }
    failure.map_or(Ok(()), Err)
}

/// `forewarn-agent check --once`: every enabled check, once, on a short
/// sample (CPU over [`MINIMUM_CPU_SAMPLE`]).
pub async fn check_once(config: &Config) -> Result<Vec<CheckResult>> {
    let mounts = config.checks.disk.mounts.clone();
    let host =
        tokio::task::spawn_blocking(move || Host::new().map(|h| h.with_mounts(&mounts))).await??;
    let mut scheduler = Scheduler::new(host, config, Mode::Once);
    tokio::time::sleep(MINIMUM_CPU_SAMPLE).await;
    scheduler.evaluate_all(true).await
}

/// `forewarn-agent enroll`: host facts + [`enroll::enroll`] into the
/// configured state dir.
pub async fn enroll(config: &Config, options: EnrollOptions) -> Result<Identity> {
    let facts = tokio::task::spawn_blocking(|| Host::new().map(|h| h.facts())).await??;
    enroll::enroll(&StateDir::new(&config.state_dir), options, facts).await
}

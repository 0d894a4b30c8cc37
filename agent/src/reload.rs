//! Config reload without a restart: SIGHUP, or a change of the config file
//! (watched with notify), re-reads and validates the file. A valid new
//! config goes to the scheduler, which applies it as a diff (only changed
//! check kinds are rebuilt); an invalid one is rejected with a clear log line
//! and the running config stays. Keys that only take effect at start
//! (`state_dir`, `collector`, `spool`, `log_level`) are logged as needing a
//! restart.
//! Windows has no SIGHUP: there a change of the file is the only trigger.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::checks::watch::{Pacing, Target, Watch};
use crate::config::Config;
use crate::error::chain;
use crate::signals::Hangup;

/// Watches for reload requests until `shutdown`.
pub async fn watch_config(
    path: Option<PathBuf>,
    mut current: Config,
    configs: watch::Sender<Arc<Config>>,
    interval: watch::Sender<Duration>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut hangup = match Hangup::install() {
        Ok(s) => Some(s),
        Err(error) => {
            warn!(%error, "cannot listen for SIGHUP; reload on file change only");
            None
        }
    };
    let pacing = Pacing {
        settle: Duration::from_millis(200),
        max_delay: Some(Duration::from_secs(2)),
    };
    let mut file = path
        .as_deref()
        .and_then(Target::file)
        .and_then(|t| Watch::start(vec![t], pacing));
    loop {
        let hup = async {
            match hangup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        let changed = async {
            match file.as_mut() {
                Some((_watch, rx)) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let why = tokio::select! {
            _ = hup => "SIGHUP",
            woke = changed => {
                if woke.is_none() {
                    file = None;
                    continue;
                }
                "config file changed"
            }
            _ = shutdown.changed() => return,
        };
        match Config::load(path.as_deref()) {
            Err(error) => {
                warn!(error = %chain(&error), trigger = why, "config reload rejected; the running config stays");
            }
            Ok(new) if new == current => debug!(trigger = why, "config unchanged"),
            Ok(mut new) => {
                if new.state_dir != current.state_dir {
                    warn!("state_dir changes need a restart; keeping the running value");
                    new.state_dir = current.state_dir.clone();
                }
                if new.collector != current.collector {
                    warn!("collector changes need a restart; keeping the running value");
                    new.collector = current.collector.clone();
                }
                if new.spool != current.spool {
                    warn!("spool changes need a restart; keeping the running value");
                    new.spool = current.spool;
                }
                if new.log_level != current.log_level {
                    warn!("log_level changes need a restart; keeping the running value");
                    new.log_level = current.log_level.clone();
                }
                if new.interval_secs != current.interval_secs {
                    interval.send_replace(Duration::from_secs(new.interval_secs));
                }
                info!(trigger = why, "config reload accepted");
                current = new.clone();
                configs.send_replace(Arc::new(new));
            }
        }
    }
}

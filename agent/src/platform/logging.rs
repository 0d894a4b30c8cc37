//! Where the agent logs, per OS.
//!
//! - Linux and macOS: standard error only. systemd's journal and launchd
//!   capture it (`journalctl -u forewarn-agent`, the plist's
//!   `StandardErrorPath`), with their own rotation.
//! - Windows: standard error (seen in a console), plus, for `run` and the
//!   service, a file in the state dir (`logs\agent.YYYY-MM-DD.log`, one a
//!   day, the last 7 kept) and warnings and errors in the Event Log under
//!   the source "Forewarn Agent" (Windows Logs > Application).
//!
//! `RUST_LOG` wins over the config's `log_level`.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;

use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Log files kept (one a day).
pub const LOG_FILES_KEPT: usize = 7;

/// Sets up logging. `state_dir`: where the Windows log file goes (`None`
/// for the short commands, which log to the console only). Returns what
/// could not be set up, for the caller to report once logging works.
pub fn init(level: &str, state_dir: Option<&Path>) -> Vec<String> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let registry = tracing_subscriber::registry().with(filter).with(stderr);
    #[cfg(windows)]
    {
        let (file, event_log, problems) = super::windows::logging::layers(state_dir);
        registry.with(file).with(event_log).init();
        problems
    }
    #[cfg(not(windows))]
    {
        let _ = state_dir;
        registry.init();
        Vec::new()
    }
}

/// One event as a single line: the message, then `key=value` for the other
/// fields (what the Event Log shows).
#[derive(Default)]
pub struct OneLine(pub String);

impl Visit for OneLine {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, &format!("{value:?}"));
    }
}

impl OneLine {
    fn push(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            self.0 = value.to_owned();
            if !rest.is_empty() {
                self.0.push(' ');
                self.0.push_str(&rest);
            }
            return;
        }
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        let _ = write!(self.0, "{}={value}", field.name());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::Layer;

    /// Collects every event's line.
    struct Lines(Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> Layer<S> for Lines {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let mut line = OneLine::default();
            event.record(&mut line);
            self.0.lock().expect("lock").push(line.0);
        }
    }

    #[test]
    fn an_event_becomes_one_line_message_first() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Lines(lines.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(collector = "https://c:4443", attempt = 3, "cannot connect");
            tracing::error!("plain");
        });
        assert_eq!(
            *lines.lock().expect("lock"),
            ["cannot connect collector=https://c:4443 attempt=3", "plain"]
        );
    }
}

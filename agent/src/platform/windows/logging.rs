//! The Windows log destinations beside standard error: a file in the state
//! dir, one a day, and the Event Log for warnings and errors.

use std::path::Path;

use tracing::{Event, Level, Subscriber};
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

use crate::platform::logging::{LOG_FILES_KEPT, OneLine};
use crate::platform::service::{EVENT_SOURCE, event_id};

/// A boxed layer over the registry the agent builds.
type Boxed<S> = Box<dyn Layer<S> + Send + Sync>;

/// The file layer (when `state_dir` is given and its `logs` folder can be
/// made) and the Event Log layer (when the Event Log answers), plus what
/// failed.
pub fn layers<S>(state_dir: Option<&Path>) -> (Option<Boxed<S>>, Option<EventLogLayer>, Vec<String>)
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let mut problems = Vec::new();
    let file = state_dir.and_then(|dir| match file_appender(dir) {
        Ok(appender) => Some(
            tracing_subscriber::fmt::layer()
                .with_writer(appender)
                .with_ansi(false)
                .with_target(false)
                .boxed(),
        ),
        Err(e) => {
            problems.push(format!("no log file in {}: {e}", dir.display()));
            None
        }
    });
    let event_log = match forewarn_winffi::EventSource::open(EVENT_SOURCE) {
        Ok(source) => Some(EventLogLayer { source }),
        Err(e) => {
            problems.push(format!("no Event Log entries: {e}"));
            None
        }
    };
    (file, event_log, problems)
}

/// `<state_dir>\logs\agent.YYYY-MM-DD.log`; the state dir gets its private
/// ACL first, which the logs folder inherits.
fn file_appender(state_dir: &Path) -> std::io::Result<RollingFileAppender> {
    crate::files::create_private_dir(state_dir)?;
    let dir = state_dir.join("logs");
    std::fs::create_dir_all(&dir)?;
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix("agent")
        .filename_suffix("log")
        .max_log_files(LOG_FILES_KEPT)
        .build(&dir)
        .map_err(std::io::Error::other)
}

/// Warnings and errors as Event Log entries.
pub struct EventLogLayer {
    source: forewarn_winffi::EventSource,
}

impl<S: Subscriber> Layer<S> for EventLogLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let (level, id) = match *event.metadata().level() {
            Level::ERROR => (forewarn_winffi::EventLevel::Error, event_id::ERROR),
            Level::WARN => (forewarn_winffi::EventLevel::Warning, event_id::WARNING),
            _ => return,
        };
        let mut line = OneLine::default();
        event.record(&mut line);
        // Nowhere to report a failure to report.
        let _ = self.source.report(level, id, &line.0);
    }
}

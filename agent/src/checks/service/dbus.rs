//! systemd over D-Bus: a unit's state read from `org.freedesktop.systemd1`
//! on the system bus, and its changes followed through systemd's signals, so
//! a stopped service is reported the moment systemd says so rather than at
//! the next poll.
//!
//! One [`Bus`] (one connection) is shared by the service probes built from
//! one config. On its first use it connects and calls `Manager.Subscribe`
//! (systemd only emits unit signals while a client is subscribed). Each
//! probe then loads its unit (`LoadUnit`, which also answers for units that
//! do not exist: `LoadState=not-found`), matches `PropertiesChanged` on the
//! unit's object and `JobRemoved` naming the unit, and re-reads
//! `ActiveState`, `SubState`, `LoadState` and `UnitFileState` on every such
//! signal. The periodic run stays as a safety net (a lost signal, a bus
//! restart).
//!
//! Where there is no system bus or no systemd on it (containers, WSL,
//! minimal images, this build machine) the probes use `systemctl show`
//! ([`super::systemd`]), and the agent says so once in its log, not per
//! poll. A lost connection is dropped and tried again after [`RETRY`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, mpsc};
use tokio_stream::StreamExt as _;
use tracing::{debug, info};
use zbus::message::Type;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};
use zbus::{Connection, MatchRule, MessageStream};

use super::systemd::UnitProperties;

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// How long after a failed connect (or a lost connection) the bus is tried
/// again; meanwhile the probes poll `systemctl`.
pub const RETRY: Duration = Duration::from_secs(60);
/// Longest a connect or one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether "no systemd on the bus" has been logged in this process.
static UNAVAILABLE_LOGGED: AtomicBool = AtomicBool::new(false);

/// Why a bus read failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("{0}")]
    Bus(#[from] zbus::Error),
    #[error("no answer from systemd within {} s", CALL_TIMEOUT.as_secs())]
    Timeout,
}

async fn bounded<T>(call: impl Future<Output = zbus::Result<T>>) -> Result<T, BusError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(BusError::Timeout),
    }
}

// === impl Bus ===

/// The system bus connection shared by the service probes of one config.
pub struct Bus {
    state: Mutex<State>,
}

enum State {
    Untried,
    Connected(Connection),
    /// Not reachable at this instant; tried again [`RETRY`] later.
    Unavailable(Instant),
}

impl Bus {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::Untried),
        })
    }

    /// The connection to systemd, connecting first when needed and due;
    /// `None` while there is none (the caller polls `systemctl`).
    pub async fn connection(&self) -> Option<Connection> {
        let mut state = self.state.lock().await;
        match &*state {
            State::Connected(conn) if !conn.is_closed() => return Some(conn.clone()),
            State::Unavailable(at) if at.elapsed() < RETRY => return None,
            _ => {}
        }
        match connect().await {
            Ok(conn) => {
                info!("service checks follow systemd over the system bus");
                *state = State::Connected(conn.clone());
                Some(conn)
            }
            Err(error) => {
                if !UNAVAILABLE_LOGGED.swap(true, Ordering::Relaxed) {
                    info!(
                        %error,
                        "systemd is not reachable on the system bus: service checks poll systemctl every interval_secs"
                    );
                } else {
                    debug!(%error, "systemd still not reachable on the system bus");
                }
                *state = State::Unavailable(Instant::now());
                None
            }
        }
    }

    /// Forgets `conn` after a failed call: the next use reconnects after
    /// [`RETRY`].
    pub async fn lost(&self, conn: &Connection) {
        let mut state = self.state.lock().await;
        if matches!(&*state, State::Connected(c) if c.unique_name() == conn.unique_name()) {
            *state = State::Unavailable(Instant::now());
        }
    }
}

/// Connects to the system bus (`DBUS_SYSTEM_BUS_ADDRESS` or the standard
/// socket) and subscribes to systemd's signals; an error when either fails
/// (no bus, or a bus without systemd on it).
async fn connect() -> Result<Connection, BusError> {
    let conn = bounded(Connection::system()).await?;
    bounded(conn.call_method(Some(SYSTEMD), MANAGER_PATH, Some(MANAGER), "Subscribe", &())).await?;
    Ok(conn)
}

/// `nginx` → `nginx.service`, as `systemctl` completes a name without a
/// unit type.
pub fn unit_name(name: &str) -> String {
    const TYPES: [&str; 11] = [
        "service",
        "socket",
        "device",
        "mount",
        "automount",
        "swap",
        "target",
        "path",
        "timer",
        "slice",
        "scope",
    ];
    match name.rsplit_once('.') {
        Some((_, suffix)) if TYPES.contains(&suffix) => name.to_owned(),
        _ => format!("{name}.service"),
    }
}

/// The object path of `unit`, loading it if systemd has not (`LoadUnit`
/// answers for units that do not exist too: `LoadState=not-found`).
pub async fn load(conn: &Connection, unit: &str) -> Result<OwnedObjectPath, BusError> {
    let reply = bounded(conn.call_method(
        Some(SYSTEMD),
        MANAGER_PATH,
        Some(MANAGER),
        "LoadUnit",
        &(unit,),
    ))
    .await?;
    Ok(reply.body().deserialize()?)
}

/// The unit's state properties, read from its object at `path`.
pub async fn properties(
    conn: &Connection,
    path: &OwnedObjectPath,
) -> Result<UnitProperties, BusError> {
    let reply =
        bounded(conn.call_method(Some(SYSTEMD), path, Some(PROPERTIES), "GetAll", &(UNIT,)))
            .await?;
    let all: HashMap<String, OwnedValue> = reply.body().deserialize()?;
    let text = |key: &str| {
        all.get(key)
            .and_then(|v| <&str>::try_from(&**v).ok())
            .unwrap_or_default()
            .to_owned()
    };
    Ok(UnitProperties {
        load_state: text("LoadState"),
        active_state: text("ActiveState"),
        sub_state: text("SubState"),
        unit_file_state: text("UnitFileState"),
    })
}

/// Wakes `wake` on every change systemd signals for `unit` (at `path`):
/// `PropertiesChanged` on the unit, `JobRemoved` naming it. The match
/// rules are in place when this returns; the task ends with the
/// connection or when the receiver of `wake` is gone.
pub async fn follow(
    conn: &Connection,
    unit: &str,
    path: &OwnedObjectPath,
    wake: mpsc::Sender<()>,
) -> Result<tokio::task::JoinHandle<()>, BusError> {
    let changed = MatchRule::builder()
        .msg_type(Type::Signal)
        .sender(SYSTEMD)?
        .path(path.as_ref())?
        .interface(PROPERTIES)?
        .member("PropertiesChanged")?
        .add_arg(UNIT)?
        .build();
    let jobs = MatchRule::builder()
        .msg_type(Type::Signal)
        .sender(SYSTEMD)?
        .path(MANAGER_PATH)?
        .interface(MANAGER)?
        .member("JobRemoved")?
        .arg(2, unit)?
        .build();
    let changed = bounded(MessageStream::for_match_rule(changed, conn, Some(4))).await?;
    let jobs = bounded(MessageStream::for_match_rule(jobs, conn, Some(4))).await?;
    Ok(tokio::spawn(async move {
        let mut signals = changed.merge(jobs);
        loop {
            tokio::select! {
                signal = signals.next() => match signal {
                    // A full channel already holds a wake-up: coalesced.
                    Some(_) => {
                        let _ = wake.try_send(());
                    }
                    None => {
                        // The connection closed: wake once so that the
                        // probe notices and falls back.
                        let _ = wake.try_send(());
                        return;
                    }
                },
                () = wake.closed() => return,
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_without_a_unit_type_are_services() {
        assert_eq!(unit_name("nginx"), "nginx.service");
        assert_eq!(unit_name("nginx.service"), "nginx.service");
        assert_eq!(unit_name("getty@tty1"), "getty@tty1.service");
        assert_eq!(unit_name("backup.timer"), "backup.timer");
        assert_eq!(unit_name("php8.2-fpm"), "php8.2-fpm.service");
    }

    /// Without a system bus (as on this build machine) there is no
    /// connection, and it is not tried again before [`RETRY`]. Where a
    /// system bus exists this has nothing to show and returns; the D-Bus
    /// path itself is tested end to end against a private bus
    /// (tests/tests/detect.rs).
    #[tokio::test(flavor = "current_thread")]
    async fn no_system_bus_is_none_and_not_retried_at_once() {
        if std::path::Path::new("/run/dbus/system_bus_socket").exists()
            || std::env::var_os("DBUS_SYSTEM_BUS_ADDRESS").is_some()
        {
            return;
        }
        let bus = Bus::new();
        assert!(bus.connection().await.is_none());
        assert!(matches!(&*bus.state.lock().await, State::Unavailable(_)));
        // Within RETRY the answer is known without a connect.
        assert!(bus.connection().await.is_none());
        assert!(UNAVAILABLE_LOGGED.load(Ordering::Relaxed));
    }
}

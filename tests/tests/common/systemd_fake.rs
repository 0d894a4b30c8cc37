//! A private D-Bus bus with a **local fake** of systemd on it, for the
//! agent's service checks over D-Bus. systemd cannot run here (it is not
//! PID 1 and there is no system bus), so the part of
//! `org.freedesktop.systemd1` the agent uses is served by this test code:
//! `Manager.Subscribe`, `Manager.LoadUnit`, the `JobRemoved` signal, and
//! per unit the `org.freedesktop.systemd1.Unit` properties `LoadState`,
//! `ActiveState`, `SubState` and `UnitFileState`, with `PropertiesChanged`
//! when they change. The bus itself is real: Debian's `dbus-daemon`, on a
//! socket of its own; the agent is pointed at it with
//! `DBUS_SYSTEM_BUS_ADDRESS`.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath};

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";

/// Calls the fake saw, by unit name.
type Loads = Arc<Mutex<HashMap<String, u64>>>;

/// `org.freedesktop.systemd1.Manager`, the methods the agent calls.
struct Manager {
    loads: Loads,
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    async fn subscribe(&self) {}

    async fn load_unit(&self, name: String) -> zbus::fdo::Result<OwnedObjectPath> {
        *self
            .loads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name.clone())
            .or_default() += 1;
        OwnedObjectPath::try_from(unit_path(&name))
            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))
    }

    #[zbus(signal)]
    async fn job_removed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        job: ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

/// `org.freedesktop.systemd1.Unit` of one unit.
struct Unit {
    active_state: String,
    sub_state: String,
}

#[zbus::interface(name = "org.freedesktop.systemd1.Unit")]
impl Unit {
    #[zbus(property)]
    async fn load_state(&self) -> String {
        "loaded".to_owned()
    }

    #[zbus(property)]
    async fn active_state(&self) -> String {
        self.active_state.clone()
    }

    #[zbus(property)]
    async fn sub_state(&self) -> String {
        self.sub_state.clone()
    }

    #[zbus(property)]
    async fn unit_file_state(&self) -> String {
        "enabled".to_owned()
    }
}

/// systemd's object path for a unit: bytes other than ASCII letters and
/// digits (and a leading digit) become `_xx` (sd-bus `bus_label_escape`).
pub fn unit_path(name: &str) -> String {
    let mut path = String::from("/org/freedesktop/systemd1/unit/");
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (b.is_ascii_digit() && i > 0) {
            path.push(char::from(b));
        } else {
            path.push_str(&format!("_{b:02x}"));
        }
    }
    path
}

/// A running `dbus-daemon` on a private socket, with the fake systemd
/// owning `org.freedesktop.systemd1` on it.
pub struct SystemdFake {
    /// What to put in the agent's `DBUS_SYSTEM_BUS_ADDRESS`.
    pub address: String,
    conn: zbus::Connection,
    loads: Loads,
    jobs: std::sync::atomic::AtomicU32,
    daemon: Child,
    _dir: tempfile::TempDir,
}

impl SystemdFake {
    /// Starts the bus and serves `units` (full names, `x.service`), each
    /// `active (running)`.
    pub async fn start(units: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("system_bus_socket");
        let config = dir.path().join("bus.conf");
        std::fs::write(&config, bus_config(&socket)).expect("write bus config");
        let daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon (Debian package dbus-daemon)");
        let address = format!("unix:path={}", socket.display());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "dbus-daemon did not listen");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let loads = Loads::default();
        let mut builder = zbus::connection::Builder::address(address.as_str())
            .expect("bus address")
            .name(SYSTEMD)
            .expect("name")
            .serve_at(
                MANAGER_PATH,
                Manager {
                    loads: Arc::clone(&loads),
                },
            )
            .expect("serve manager");
        for unit in units {
            builder = builder
                .serve_at(
                    unit_path(unit),
                    Unit {
                        active_state: "active".to_owned(),
                        sub_state: "running".to_owned(),
                    },
                )
                .expect("serve unit");
        }
        let conn = builder.build().await.expect("fake systemd on the bus");
        Self {
            address,
            conn,
            loads,
            jobs: std::sync::atomic::AtomicU32::new(0),
            daemon,
            _dir: dir,
        }
    }

    /// How many times the agent loaded `unit` (it does on every read).
    pub fn loads(&self, unit: &str) -> u64 {
        self.loads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(unit)
            .copied()
            .unwrap_or(0)
    }

    /// Stops (`inactive (dead)`) or starts (`active (running)`) `unit` the
    /// way systemd reports it: `PropertiesChanged` on the unit, then
    /// `JobRemoved` for the job that did it.
    pub async fn set_running(&self, unit: &str, running: bool) {
        let iface = self
            .conn
            .object_server()
            .interface::<_, Unit>(unit_path(unit))
            .await
            .expect("served unit");
        {
            let mut u = iface.get_mut().await;
            (u.active_state, u.sub_state) = if running {
                ("active".to_owned(), "running".to_owned())
            } else {
                ("inactive".to_owned(), "dead".to_owned())
            };
        }
        let u = iface.get().await;
        u.active_state_changed(iface.signal_emitter())
            .await
            .expect("emit ActiveState");
        u.sub_state_changed(iface.signal_emitter())
            .await
            .expect("emit SubState");
        let id = self.jobs.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let job = format!("/org/freedesktop/systemd1/job/{id}");
        let emitter = SignalEmitter::new(&self.conn, MANAGER_PATH).expect("emitter");
        Manager::job_removed(
            &emitter,
            id,
            ObjectPath::try_from(job.as_str()).expect("job path"),
            unit,
            "done",
        )
        .await
        .expect("emit JobRemoved");
    }
}

impl Drop for SystemdFake {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// A bus that lets everyone (here: root) own names and send anything.
fn bus_config(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        socket.display()
    )
}

//! A private PostgreSQL server of a test's own, for tests that stop and
//! start their database mid-test (never the shared server of
//! `tests/postgres.sh` the other tests use). It is set up with that
//! script's flags: initdb as the `postgres` user when the test runs as
//! root, trust on loopback and its own socket only, a free loopback port.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::Connection as _;

/// A throwaway PostgreSQL server on a free loopback port, run as the
/// `postgres` user when the test runs as root; stopped (and its files
/// removed) on drop, also when the test fails.
pub struct PostgresServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl PostgresServer {
    /// initdb, trust on loopback and its own socket only, then start.
    pub fn start() -> Self {
        Self::start_listening(&[], &[])
    }

    /// Like [`PostgresServer::start`], also listening on `extra` addresses
    /// (which must exist) and trusting clients from the `allow` networks
    /// (CIDR), e.g. network namespaces of the test's own.
    pub fn start_listening(extra: &[std::net::IpAddr], allow: &[&str]) -> Self {
        let bin = pg_bin();
        let dir = tempfile::Builder::new()
            .prefix("forewarn-pg-private.")
            .tempdir_in("/tmp")
            .expect("temp dir for the PostgreSQL server");
        if is_root() {
            let out = Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .output()
                .expect("run chown");
            assert!(out.status.success(), "chown postgres: {}", text(&out));
        }
        let mut pg = PostgresServer { bin, dir, port: 0 };
        let data = pg.data();
        let out = pg.as_owner("initdb", |c| {
            c.arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"])
                .args(["--no-locale", "--no-sync"]);
        });
        assert!(out.status.success(), "initdb failed: {}", text(&out));
        // Existing files keep their owner when rewritten or appended to.
        let mut hba = "local all all trust\nhost all all 127.0.0.1/32 trust\n".to_string();
        for net in allow {
            hba.push_str(&format!("host all all {net} trust\n"));
        }
        std::fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        let listen: Vec<String> = std::iter::once("127.0.0.1".to_string())
            .chain(extra.iter().map(ToString::to_string))
            .collect();
        append(
            &data.join("postgresql.conf"),
            &format!(
                "\n# forewarn private test server\nlisten_addresses = '{}'\n\
                 unix_socket_directories = '{}'\nmax_connections = 100\nfsync = on\n\
                 timezone = 'UTC'\nlogging_collector = off\n",
                listen.join(","),
                pg.dir.path().display()
            ),
        );
        // A port free now may be taken before the server binds it.
        for attempt in 1..=5 {
            pg.port = free_port();
            append(
                &data.join("postgresql.conf"),
                &format!("port = {}\n", pg.port),
            );
            let out = pg.pg_ctl_start();
            if out.status.success() {
                return pg;
            }
            let log = pg.log();
            if attempt < 5 && log.contains("could not bind") {
                continue;
            }
            panic!("pg_ctl start failed: {}\n{log}", text(&out));
        }
        unreachable!("the loop returns or panics")
    }

    /// `postgres://postgres@127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// `postgres://postgres@<ip>:<port>/<db>`, for a client reaching it at
    /// one of its extra addresses.
    pub fn url_at(&self, ip: std::net::IpAddr, db: &str) -> String {
        format!("postgres://postgres@{ip}:{}/{db}", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Whether the server is up (its postmaster.pid exists).
    pub fn running(&self) -> bool {
        self.data().join("postmaster.pid").exists()
    }

    /// A new database on this server; `name` must be a plain SQL
    /// identifier (it is not quoted).
    pub async fn create_db(&self, name: &str) {
        let mut conn = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("connect to the private PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create database");
        let _ = conn.close().await;
    }

    /// `pg_ctl stop -m <mode>` (`immediate` is a crash), waiting until the
    /// server is gone; panics if pg_ctl fails.
    pub fn stop(&self, mode: &str) {
        let out = self.pg_ctl_stop(mode);
        assert!(out.status.success(), "pg_ctl stop failed: {}", text(&out));
    }

    /// Starts it again (same port, same data dir) after [`Self::stop`].
    pub fn restart(&self) {
        let out = self.pg_ctl_start();
        assert!(
            out.status.success(),
            "pg_ctl start (again) failed: {}\n{}",
            text(&out),
            self.log()
        );
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of the server's programs as its owner, from `/` (the
    /// test's cwd may be unreadable to `postgres`).
    fn as_owner(&self, program: &str, args: impl FnOnce(&mut Command)) -> Output {
        let exe = self.bin.join(program);
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.current_dir("/");
        args(&mut c);
        c.output().unwrap_or_else(|e| panic!("run {program}: {e}"))
    }

    /// Starts the server on its data dir and port; waits until it is ready.
    fn pg_ctl_start(&self) -> Output {
        let (data, log) = (self.data(), self.dir.path().join("server.log"));
        self.as_owner("pg_ctl", |c| {
            c.arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "start"]);
        })
    }

    /// `pg_ctl stop -m <mode>`, waiting until the server is gone.
    fn pg_ctl_stop(&self, mode: &str) -> Output {
        let data = self.data();
        self.as_owner("pg_ctl", |c| {
            c.arg("-D")
                .arg(&data)
                .args(["-m", mode, "-w", "-t", "30", "stop"]);
        })
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if !self.running() {
            return;
        }
        if self.pg_ctl_stop("immediate").status.success() {
            return;
        }
        // Not stopping: kill the postmaster it started, by its pid.
        let pid = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().map(str::to_string));
        if let Some(pid) = pid {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding initdb and pg_ctl.
fn pg_bin() -> PathBuf {
    let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e
                .file_name()
                .to_str()?
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "no /usr/lib/postgresql/*/bin with initdb and pg_ctl: install Debian's postgresql \
             package (tests/run-all.sh does, through tests/postgres.sh)"
        )
    })
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn append(path: &Path, more: &str) {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(more.as_bytes()))
        .unwrap_or_else(|e| panic!("append to {}: {e}", path.display()));
}

/// A command's stdout and stderr, for a failure message.
fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

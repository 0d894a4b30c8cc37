//! The store a collector runs on: [`Backend`] (embedded SQLite or a fresh
//! database of its own on the test PostgreSQL server named by
//! [`POSTGRES_URL_VAR`]), the [`Store`] it ends up with, and
//! [`on_each_backend!`], which runs a test body once per backend.

use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The store backend a collector runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite, the collector's default (`<data_dir>/forewarn.db`).
    Sqlite,
    /// A fresh database of its own on the test PostgreSQL server.
    Postgres,
}

/// Where a collector's store lives; tests read it directly (e.g. the
/// delivery records in [`super::delivery::stored_in`]).
#[derive(Debug, Clone)]
pub enum Store {
    /// The SQLite file.
    Sqlite(PathBuf),
    /// The PostgreSQL database's URL.
    Postgres(String),
}

impl Backend {
    /// The backend a benchmark runs on: `FOREWARN_BENCH_BACKEND` =
    /// `sqlite` (default) or `postgres` (needs the test server, see
    /// [`fresh_postgres_database`]).
    #[allow(dead_code)] // used by the benches only
    pub fn for_bench() -> Self {
        match std::env::var("FOREWARN_BENCH_BACKEND").as_deref() {
            Ok("postgres") => Backend::Postgres,
            Ok("sqlite") | Err(_) => Backend::Sqlite,
            Ok(other) => panic!("FOREWARN_BENCH_BACKEND={other:?}: sqlite or postgres"),
        }
    }

    /// A new, empty store on this backend for a collector whose temp dir is
    /// `dir` (its `data_dir` is `dir/data`, as everywhere in these tests).
    pub fn new_store(self, dir: &Path) -> Store {
        match self {
            Backend::Sqlite => Store::Sqlite(dir.join("data/forewarn.db")),
            Backend::Postgres => {
                let url = fresh_postgres_database();
                eprintln!("collector store: {url}");
                Store::Postgres(url)
            }
        }
    }
}

/// The key-encryption key of every test collector on PostgreSQL (the same
/// for all, as for the replicas of one install).
const TEST_KEK: &str = "5e1f0c4d2b3a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

impl Store {
    /// Collector config `text` with this store selected: unchanged for the
    /// default SQLite file; for PostgreSQL a `[store]` table and the
    /// `[pki] kek_file` it needs (written into `dir`). `text` must have no
    /// `[store]` table.
    pub fn select_in(&self, text: &str, dir: &Path) -> String {
        let Store::Postgres(url) = self else {
            return text.to_string();
        };
        assert!(
            !text.contains("[store]"),
            "the config has a [store] already"
        );
        let kek = dir.join("kek");
        std::fs::write(&kek, TEST_KEK).expect("write kek");
        let kek_line = format!("kek_file = {:?}\n", kek.display().to_string());
        let mut text = match text.split_once("[pki]\n") {
            Some((before, after)) => format!("{before}[pki]\n{kek_line}{after}"),
            None => format!("{text}\n[pki]\n{kek_line}"),
        };
        text.push_str(&format!("\n[store]\nurl = {url:?}\n"));
        text
    }
}

/// The variable naming the test PostgreSQL server (an admin URL; each test
/// creates a database of its own there).
pub const POSTGRES_URL_VAR: &str = "FOREWARN_TEST_POSTGRES_URL";

/// Creates an empty database on the test PostgreSQL server; its URL.
/// Panics, saying how to get a server, when there is none: a PostgreSQL
/// test never passes by skipping.
pub fn fresh_postgres_database() -> String {
    let admin = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VAR} is not set: the PostgreSQL tests need a server. Run \
             ./tests/run-all.sh, or `source tests/postgres.sh` in the shell that runs cargo"
        )
    });
    // 64 random bits and the pid: unique among every test of a run.
    let name = format!(
        "t_{:016x}_{}",
        RandomState::new().hash_one((std::process::id(), Instant::now())),
        std::process::id()
    );
    let (base, _) = admin
        .rsplit_once('/')
        .unwrap_or_else(|| panic!("{POSTGRES_URL_VAR}={admin:?} names no database"));
    let url = format!("{base}/{name}");
    // On a thread of its own with its own runtime, so that starting a
    // collector stays a plain blocking call inside any test runtime.
    std::thread::spawn(move || {
        use sqlx::Connection as _;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL at {admin}: {e}"));
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("CREATE DATABASE {name} at {admin}: {e}"));
            let _ = conn.close().await;
        });
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
    url
}

/// Runs each named `async fn(Backend)` as two tests, `<name>::sqlite` and
/// `<name>::postgres`:
///
/// ```ignore
/// common::on_each_backend!(disk_fill_opens_a_ticket);
/// async fn disk_fill_opens_a_ticket(backend: Backend) {
///     let collector = Collector::start_on(backend, "");
/// }
/// ```
#[allow(unused_macros)] // test files that run on SQLite only
macro_rules! on_each_backend {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await;
            }
        }
    )+};
}
#[allow(unused_imports)] // test files that run on SQLite only
pub(crate) use on_each_backend;

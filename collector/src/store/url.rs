//! Which backend a `[store] url` names, opening it, and the migration guard
//! both backends share.

use std::path::PathBuf;
use std::sync::Arc;

use sqlx::migrate::{MigrateError, Migrator};

use super::Storage;
use crate::{Error, Result};

/// A parsed store url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite://PATH` (or a bare `sqlite_path`).
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`, passed to the driver as given.
    Postgres(String),
}

impl StoreUrl {
    /// Parses `url`; the error names the key and the accepted forms.
    pub fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(Error::Config(
                    "[store] url: sqlite:// needs a path, e.g. sqlite:///var/lib/forewarn/collector.db"
                        .into(),
                ));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_string()));
        }
        Err(Error::Config(format!(
            "[store] url: {:?} is neither sqlite://PATH nor postgres://user@host/db",
            redact(url)
        )))
    }

    /// The url without a password, for logs and errors.
    pub fn display(&self) -> String {
        match self {
            Self::Sqlite(p) => format!("sqlite://{}", p.display()),
            Self::Postgres(u) => redact(u),
        }
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Opens (and migrates) the store `url` names.
pub async fn open(url: &StoreUrl) -> Result<Arc<dyn Storage>> {
    Ok(match url {
        StoreUrl::Sqlite(path) => Arc::new(super::sqlite::SqliteStore::open(path).await?),
        StoreUrl::Postgres(u) => Arc::new(super::postgres::PostgresStore::open(u).await?),
    })
}

/// Applies `migrator`, refusing a database that a newer collector migrated.
pub(super) async fn migrate<'a, A>(migrator: &Migrator, conn: A, backend: &str) -> Result<()>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    match migrator.run(conn).await {
        Ok(()) => Ok(()),
        Err(MigrateError::VersionMissing(v)) => Err(Error::Config(format!(
            "the {backend} database has schema version {v}, newer than this collector knows \
             (up to {known}): it was upgraded by a newer forewarn-collector; run that version \
             or restore a backup taken before the upgrade"
        ))),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_their_backend_and_errors_name_the_key() {
        assert_eq!(
            StoreUrl::parse("sqlite:///var/lib/f.db").expect("sqlite"),
            StoreUrl::Sqlite("/var/lib/f.db".into())
        );
        assert!(matches!(
            StoreUrl::parse("postgresql://u@h/db").expect("pg"),
            StoreUrl::Postgres(_)
        ));
        let e = StoreUrl::parse("mysql://u:pw@h/db")
            .expect_err("unknown")
            .to_string();
        assert!(e.contains("[store] url"), "{e}");
        assert!(!e.contains("pw"), "password leaked: {e}");
        assert_eq!(
            StoreUrl::Postgres("postgres://me:secret@db:5432/f".into()).display(),
            "postgres://me:***@db:5432/f"
        );
    }
}

#[cfg(test)]
mod open_tests {
    use super::*;

    /// A database nobody listens for is a clear error naming host and port.
    #[tokio::test]
    async fn an_unreachable_postgres_names_host_and_port() {
        // Port 1 on loopback: nothing listens there.
        let url = StoreUrl::parse("postgres://forewarn@127.0.0.1:1/forewarn").expect("url");
        let e = open(&url).await.err().expect("unreachable").to_string();
        assert!(e.contains("127.0.0.1:1"), "{e}");
        assert!(e.contains("[store] url"), "{e}");
    }

    /// A database migrated by a newer collector is refused, not altered.
    #[tokio::test]
    async fn a_newer_schema_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let store = super::super::sqlite::SqliteStore::open(&path)
            .await
            .expect("open");
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (9999, 'from the future', 1, x'00', 0)",
        )
        .execute(store.pool())
        .await
        .expect("newer migration row");
        drop(store);
        let e = open(&StoreUrl::Sqlite(path.clone()))
            .await
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("9999") && e.contains("newer"), "{e}");
        // Nothing was changed: the row is still there, the tables too.
        let store = super::super::sqlite::SqliteStore::in_memory()
            .await
            .expect("mem");
        drop(store);
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
            "sqlite://{}",
            path.display()
        ))
        .await
        .expect("reopen");
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = 9999")
                .fetch_one(&mut conn)
                .await
                .expect("count");
        assert_eq!(n, 1);
    }
}

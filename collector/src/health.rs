//! Whether the store still takes writes, for `/healthz`.
//!
//! `SELECT 1` succeeds on a full disk; what fails is the next commit. So the
//! writers that run all the time — applying reports and the once-a-second
//! ticket sweep — record how their last store write ended, and `/healthz`
//! answers 503 with the error while the most recent one failed. One success
//! (space returned) clears it.
//!
//! A store that could not be reached at all (PostgreSQL down: connection
//! refused, pool timed out) is different: any successful round trip proves
//! it is back, so a sweep with nothing to write clears that kind of error
//! too ([`StoreHealth::reached`]). Without that, a collector whose agents
//! are quiet (or kept away by the 503 itself) would stay unhealthy forever.

use std::sync::{LazyLock, Mutex, PoisonError};

use crate::Error;
use crate::metrics::METRICS;

/// The outcome of the most recent store write.
#[derive(Debug, Default)]
pub struct StoreHealth {
    last_error: Mutex<Option<Failure>>,
}

/// A failed write: its message, and whether the store was unreachable
/// rather than refusing the write.
#[derive(Debug)]
struct Failure {
    message: String,
    unreachable: bool,
}

/// The process-wide record.
pub static STORE_HEALTH: LazyLock<StoreHealth> = LazyLock::new(StoreHealth::default);

impl StoreHealth {
    /// Records a write's outcome. Only store errors count: a report refused
    /// for its content says nothing about the store.
    pub fn record<T>(&self, result: &Result<T, Error>) {
        let mut last = self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(_) => {
                if last.take().is_some() {
                    tracing::info!("store writes work again");
                }
                METRICS.store_writable.set(1);
            }
            Err(error @ (Error::Store(_) | Error::Io { .. })) => {
                *last = Some(Failure {
                    message: error.to_string(),
                    unreachable: error.is_unavailable(),
                });
                METRICS.store_writable.set(0);
            }
            Err(_) => {}
        }
    }

    /// Records a store round trip that succeeded without writing (an
    /// empty sweep). That says nothing about writes (an empty commit
    /// succeeds on a full disk), but it does say an unreachable store is
    /// back: clears the error if it was that.
    pub fn reached(&self) {
        let mut last = self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.as_ref().is_some_and(|f| f.unreachable) {
            *last = None;
            tracing::info!("store reachable again");
            METRICS.store_writable.set(1);
        }
    }

    /// The error of the most recent write, if it failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|f| f.message.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_is_remembered_until_one_succeeds() {
        let h = StoreHealth::default();
        assert_eq!(h.last_error(), None);
        h.record::<()>(&Err(Error::InvalidArgument("bad report".into())));
        assert_eq!(h.last_error(), None, "content errors are not store errors");
        h.record::<()>(&Err(Error::Store(sqlx::Error::Protocol(
            "database or disk is full".into(),
        ))));
        assert!(h.last_error().is_some_and(|e| e.contains("disk is full")));
        h.reached();
        assert!(
            h.last_error().is_some(),
            "a read proves nothing about a full disk"
        );
        h.record(&Ok(()));
        assert_eq!(h.last_error(), None);
    }

    #[test]
    fn an_unreachable_store_is_cleared_by_any_round_trip() {
        let h = StoreHealth::default();
        h.record::<()>(&Err(Error::Store(sqlx::Error::PoolTimedOut)));
        assert!(h.last_error().is_some_and(|e| e.contains("timed out")));
        h.reached();
        assert_eq!(h.last_error(), None);
    }
}

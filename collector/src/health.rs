//! Whether the store still takes writes, for `/healthz`.
//!
//! `SELECT 1` succeeds on a full disk; what fails is the next commit. So the
//! writers that run all the time — applying reports and the once-a-second
//! ticket sweep — record how their last store write ended, and `/healthz`
//! answers 503 with the error while the most recent one failed. One success
//! (space returned) clears it.

use std::sync::{LazyLock, Mutex, PoisonError};

use crate::Error;
use crate::metrics::METRICS;

/// The outcome of the most recent store write.
#[derive(Debug, Default)]
pub struct StoreHealth {
    last_error: Mutex<Option<String>>,
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
                *last = Some(error.to_string());
                METRICS.store_writable.set(0);
            }
            Err(_) => {}
        }
    }

    /// The error of the most recent write, if it failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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
        h.record(&Ok(()));
        assert_eq!(h.last_error(), None);
    }
}

//! The last health check of each sink, as the API, the dashboard and the
//! CLI show it: filled by the start-up check and by every test run
//! (`POST /api/v1/sinks/{name}/test`, the dashboard's "Test now").
//!
//! Held in memory, per replica: a health check says whether *this*
//! process reaches the receiver, which is what an operator fixing a
//! delivery needs to know, and it is cheap to run again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::CheckResult;
use crate::domain::{Millis, rfc3339};

/// One health check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// The check passed.
    pub ok: bool,
    /// What was checked (ok) or what is wrong (failed), never a secret.
    pub message: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "rfc3339")]
    pub checked_at: Millis,
}

impl Health {
    /// A check's result at `at`.
    pub fn of(result: CheckResult, at: Millis) -> Self {
        let (ok, message) = match result {
            Ok(m) => (true, m),
            Err(m) => (false, m),
        };
        Self {
            ok,
            message,
            checked_at: at,
        }
    }
}

/// Last result per sink name; cloned handles share it.
#[derive(Debug, Clone, Default)]
pub struct HealthRegistry(Arc<Mutex<HashMap<String, Health>>>);

impl HealthRegistry {
    /// Records `health` as `sink`'s latest.
    pub fn record(&self, sink: &str, health: Health) {
        // A poisoned lock only means a panic elsewhere mid-insert: the map
        // is still a map.
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(sink.to_string(), health);
    }

    /// `sink`'s latest result, if it was checked.
    pub fn get(&self, sink: &str) -> Option<Health> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(sink).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_result_per_sink_wins() {
        let h = HealthRegistry::default();
        assert_eq!(h.get("a"), None);
        h.record(
            "a",
            Health::of(Err("HTTP 401: check the credentials".into()), 1),
        );
        h.clone()
            .record("a", Health::of(Ok("token accepted".into()), 2));
        let got = h.get("a").expect("recorded");
        assert!(got.ok);
        assert_eq!(
            (got.message.as_str(), got.checked_at),
            ("token accepted", 2)
        );
        assert_eq!(h.get("b"), None);
    }
}

//! The open sessions of this collector process, by agent: a revocation
//! closes an agent's streams at once (not only at its next handshake), an
//! agent may not hold more than [`MAX_SESSIONS_PER_AGENT`] streams, and one
//! identity reporting from two running processes at once (a cloned machine)
//! is noticed.
//!
//! Revocations are written to the store (by the API or the CLI, possibly
//! from another process); `serve` polls the store every second for new ones
//! and calls [`Sessions::revoke`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Concurrent streams one agent may hold (one, plus reconnects whose old
/// stream the collector has not noticed dead yet).
pub const MAX_SESSIONS_PER_AGENT: usize = 4;

/// Two sessions of one agent, with different boot ids, both reporting
/// within this span: two processes share one identity.
const CLONE_WINDOW: Duration = Duration::from_secs(30);

struct Entry {
    id: u64,
    kill: watch::Sender<bool>,
    boot_id: Option<String>,
    last_report: Option<Instant>,
    clone_flagged: bool,
}

type Entries = HashMap<String, Vec<Entry>>;

/// Open sessions by agent id.
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<Entries>>,
    next: Arc<AtomicU64>,
}

/// Removes its session from the registry when dropped.
pub struct Registration {
    sessions: Sessions,
    agent_id: String,
    id: u64,
    /// Turns true when the agent is revoked.
    pub revoked: watch::Receiver<bool>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers an open session of `agent_id`; `None` when the agent
    /// already holds [`MAX_SESSIONS_PER_AGENT`] streams.
    pub fn register(&self, agent_id: &str) -> Option<Registration> {
        let (tx, rx) = watch::channel(false);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut map = self.lock();
        let entries = map.entry(agent_id.to_string()).or_default();
        if entries.len() >= MAX_SESSIONS_PER_AGENT {
            crate::metrics::METRICS.session_refused("too_many_sessions");
            crate::metrics::METRICS.rejected("session_limit");
            return None;
        }
        crate::metrics::METRICS.sessions_open.inc();
        entries.push(Entry {
            id,
            kill: tx,
            boot_id: None,
            last_report: None,
            clone_flagged: false,
        });
        Some(Registration {
            sessions: self.clone(),
            agent_id: agent_id.to_string(),
            id,
            revoked: rx,
        })
    }

    /// Closes every open session of `agent_id`; returns how many.
    pub fn revoke(&self, agent_id: &str) -> usize {
        let map = self.lock();
        map.get(agent_id).map_or(0, |v| {
            for e in v {
                e.kill.send_replace(true);
            }
            v.len()
        })
    }

    /// Open sessions right now.
    pub fn len(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// No open session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Registration {
    /// Records the session's boot id (from its hello).
    pub fn set_boot(&self, boot_id: &str) {
        let mut map = self.sessions.lock();
        if let Some(e) = map
            .get_mut(&self.agent_id)
            .and_then(|v| v.iter_mut().find(|e| e.id == self.id))
        {
            e.boot_id = Some(boot_id.to_string());
        }
    }

    /// Records a report at `now`. Returns the other boot id when another
    /// session of the same agent, from another process (boot id), reported
    /// within the clone window — once per pair of sessions.
    pub fn reported(&self, now: Instant) -> Option<String> {
        let mut map = self.sessions.lock();
        let entries = map.get_mut(&self.agent_id)?;
        let mine = entries.iter().position(|e| e.id == self.id)?;
        entries[mine].last_report = Some(now);
        if entries[mine].clone_flagged {
            return None;
        }
        // Compared in place: no allocation on the per-report path.
        let my_boot = &entries[mine].boot_id;
        let other_boot = entries
            .iter()
            .find(|e| {
                e.id != self.id
                    && e.boot_id.is_some()
                    && e.boot_id != *my_boot
                    && e.last_report
                        .is_some_and(|t| now.saturating_duration_since(t) <= CLONE_WINDOW)
            })?
            .boot_id
            .clone();
        entries[mine].clone_flagged = true;
        other_boot
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        crate::metrics::METRICS.sessions_open.dec();
        let mut map = self.sessions.lock();
        if let Some(v) = map.get_mut(&self.agent_id) {
            v.retain(|e| e.id != self.id);
            if v.is_empty() {
                map.remove(&self.agent_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoke_signals_only_that_agents_sessions() {
        let s = Sessions::default();
        let a1 = s.register("a").expect("1");
        let a2 = s.register("a").expect("2");
        let b = s.register("b").expect("b");
        assert_eq!(s.len(), 3);
        assert_eq!(s.revoke("a"), 2);
        assert!(*a1.revoked.borrow() && *a2.revoked.borrow());
        assert!(!*b.revoked.borrow());
        drop(a1);
        drop(a2);
        assert_eq!(s.len(), 1);
        assert_eq!(s.revoke("a"), 0);
    }

    #[test]
    fn sessions_per_agent_are_capped() {
        let s = Sessions::default();
        let held: Vec<_> = (0..MAX_SESSIONS_PER_AGENT)
            .map(|_| s.register("a").expect("within the cap"))
            .collect();
        assert!(s.register("a").is_none());
        assert!(s.register("b").is_some());
        drop(held);
        assert!(s.register("a").is_some());
    }

    #[test]
    fn two_processes_reporting_with_one_identity_are_a_clone() {
        let s = Sessions::default();
        let t0 = Instant::now();
        // A restart: the old stream lingers but no longer reports.
        let old = s.register("a").expect("old");
        old.set_boot("boot-1");
        assert_eq!(old.reported(t0), None);
        let new = s.register("a").expect("new");
        new.set_boot("boot-2");
        let later = t0 + CLONE_WINDOW + Duration::from_secs(1);
        assert_eq!(
            new.reported(later),
            None,
            "a lingering dead stream is no clone"
        );
        // Both keep reporting: a clone, flagged once.
        assert_eq!(old.reported(later), Some("boot-2".into()));
        assert_eq!(old.reported(later), None);
        // The same process reconnecting (same boot id) is no clone.
        let again = s.register("a").expect("again");
        again.set_boot("boot-2");
        assert_eq!(
            again.reported(later),
            Some("boot-1".into()),
            "boot-1 still reports"
        );
    }
}

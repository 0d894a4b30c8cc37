//! The open sessions of this collector process, by agent, so a revocation
//! closes an agent's streams at once (not only at its next handshake).
//!
//! Revocations are written to the store (by the API or the CLI, possibly
//! from another process); `serve` polls the store every second for new ones
//! and calls [`Sessions::revoke`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

/// Per agent: (session id, kill switch) of each open session.
type Switches = HashMap<String, Vec<(u64, watch::Sender<bool>)>>;

/// Kill switches of open sessions, by agent id.
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<Switches>>,
    next: Arc<std::sync::atomic::AtomicU64>,
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
    /// Registers an open session of `agent_id`.
    pub fn register(&self, agent_id: &str) -> Registration {
        let (tx, rx) = watch::channel(false);
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(agent_id.to_string())
            .or_default()
            .push((id, tx));
        Registration {
            sessions: self.clone(),
            agent_id: agent_id.to_string(),
            id,
            revoked: rx,
        }
    }

    /// Closes every open session of `agent_id`; returns how many.
    pub fn revoke(&self, agent_id: &str) -> usize {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(agent_id).map_or(0, |v| {
            for (_, tx) in v {
                tx.send_replace(true);
            }
            v.len()
        })
    }

    /// Open sessions right now.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(Vec::len)
            .sum()
    }

    /// No open session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut map = self
            .sessions
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = map.get_mut(&self.agent_id) {
            v.retain(|(id, _)| *id != self.id);
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
        let a1 = s.register("a");
        let a2 = s.register("a");
        let b = s.register("b");
        assert_eq!(s.len(), 3);
        assert_eq!(s.revoke("a"), 2);
        assert!(*a1.revoked.borrow() && *a2.revoked.borrow());
        assert!(!*b.revoked.borrow());
        drop(a1);
        drop(a2);
        assert_eq!(s.len(), 1);
        assert_eq!(s.revoke("a"), 0);
    }
}

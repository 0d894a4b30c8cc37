//! The change feed behind the dashboard's live updates: "something of
//! tenant T changed (its agents, or its tickets)", from the write paths to
//! every browser connected to any replica (`GET /events`).
//!
//! - **Published after commit.** A write transaction ([`crate::tickets::Desk`])
//!   collects what it changed and hands it to [`Live::publish`] once it has
//!   committed, so a listener never refetches before the change is visible;
//!   a rolled-back transaction publishes nothing.
//! - **Coalesced.** A pump task sends each (tenant, kind) at most once per
//!   [`COALESCE`]: the first change at once, the ones that follow within the
//!   window as one trailing change at its end (never dropped). A burst of
//!   reconnecting agents is two events a second, not thousands.
//! - **Across replicas.** On PostgreSQL the pump sends through the store's
//!   `NOTIFY` and every replica's listener (its own too) relays what it hears
//!   to its local subscribers; on SQLite one process owns the store and the
//!   pump hands changes straight to them ([`crate::store::NotifyStore`]).
//! - **Scoped by the reader.** A change names its tenant; the SSE handler
//!   passes on only those in its caller's scope.
//!
//! What changes is decided by the write paths: every ticket timeline event
//! (`Desk::event`), session starts and ends and state-change reports (the
//! ingest writer), agents going overdue (the sweep). A heartbeat that
//! changes no state publishes nothing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;

use crate::store::Storage;

/// The `LISTEN`/`NOTIFY` channel changes travel on between replicas.
pub const CHANNEL: &str = "forewarn_changes";

/// Each (tenant, kind) is sent at most once per this long.
pub const COALESCE: Duration = Duration::from_millis(500);

/// Changes a slow subscriber may fall behind by before it is told to
/// refetch everything (`RecvError::Lagged`).
const SUBSCRIBER_BUFFER: usize = 1024;

/// How long the listener waits before listening again after a failure.
const RELISTEN: Duration = Duration::from_secs(1);

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An agent's status or check states (fleet, host and NOC pages).
    Agent,
    /// A ticket (queue, host, fleet and NOC pages).
    Ticket,
}

/// One change: its tenant and kind (no more: it is a cue to refetch).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Change {
    pub tenant_id: String,
    pub kind: Kind,
}

/// The feed: cheap to clone, one per [`crate::tickets::Service`].
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Storage>,
    /// What this process's subscribers receive (already coalesced).
    local: broadcast::Sender<Change>,
    /// Changes published and not yet sent.
    pending: Mutex<HashSet<Change>>,
    wake: Notify,
    pump_started: Mutex<bool>,
    listener_started: Mutex<bool>,
    /// Every change published, for tests of what the write paths publish.
    #[cfg(test)]
    published: Mutex<Vec<Change>>,
}

// === impl Live ===

impl Live {
    /// A feed over `store`; its tasks start on first use, inside a runtime.
    pub fn new(store: Arc<dyn Storage>) -> Self {
        let (local, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        Self {
            inner: Arc::new(Inner {
                store,
                local,
                pending: Mutex::new(HashSet::new()),
                wake: Notify::new(),
                pump_started: Mutex::new(false),
                listener_started: Mutex::new(false),
                #[cfg(test)]
                published: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Queues committed changes for sending (never blocks, never fails).
    pub fn publish(&self, changes: impl IntoIterator<Item = Change>) {
        let mut any = false;
        {
            let mut pending = lock(&self.inner.pending);
            for c in changes {
                #[cfg(test)]
                lock(&self.inner.published).push(c.clone());
                any |= pending.insert(c);
            }
        }
        if any {
            self.start_once(&self.inner.pump_started, |inner| {
                tokio::spawn(pump(inner));
            });
            self.inner.wake.notify_one();
        }
    }

    /// The changes published since the last call (tests).
    #[cfg(test)]
    pub fn take_published(&self) -> Vec<Change> {
        std::mem::take(&mut *lock(&self.inner.published))
    }

    /// Every change from now on, of every tenant (the reader filters by
    /// its scope).
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        let rx = self.inner.local.subscribe();
        if self.inner.store.shares_notifications() {
            self.start_once(&self.inner.listener_started, |inner| {
                tokio::spawn(listen(inner));
            });
        }
        rx
    }

    /// Runs `start` once, and only inside a runtime (a flag set outside one
    /// would keep the task from ever starting).
    fn start_once(&self, flag: &Mutex<bool>, start: impl FnOnce(Arc<Inner>)) {
        let mut started = lock(flag);
        if !*started && tokio::runtime::Handle::try_current().is_ok() {
            *started = true;
            start(self.inner.clone());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sends pending changes, each (tenant, kind) at most once per [`COALESCE`].
async fn pump(inner: Arc<Inner>) {
    let mut sent: HashMap<Change, Instant> = HashMap::new();
    loop {
        let now = Instant::now();
        sent.retain(|_, at| now.duration_since(*at) < COALESCE);
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        lock(&inner.pending).retain(|c| match sent.get(c) {
            Some(at) => {
                let ready = *at + COALESCE;
                next = Some(next.map_or(ready, |n| n.min(ready)));
                true
            }
            None => {
                due.push(c.clone());
                false
            }
        });
        for c in due {
            send(&inner, &c).await;
            sent.insert(c, now);
        }
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = inner.wake.notified() => {}
                }
            }
            None => inner.wake.notified().await,
        }
    }
}

async fn send(inner: &Inner, c: &Change) {
    if !inner.store.shares_notifications() {
        let _ = inner.local.send(c.clone());
        return;
    }
    let payload = match serde_json::to_string(c) {
        Ok(p) => p,
        Err(error) => return tracing::error!(%error, "change not encodable"),
    };
    if let Err(error) = inner.store.notify(CHANNEL, &payload).await {
        tracing::warn!(%error, tenant_id = %c.tenant_id, "change notification not sent");
    }
}

/// Relays the store's notifications (every replica's changes, this one's
/// included) to this process's subscribers.
async fn listen(inner: Arc<Inner>) {
    loop {
        match inner.store.listen(CHANNEL).await {
            Ok(Some(mut notifications)) => loop {
                match notifications.recv().await {
                    Ok(payload) => match serde_json::from_str::<Change>(&payload) {
                        Ok(c) => {
                            let _ = inner.local.send(c);
                        }
                        Err(error) => tracing::warn!(%error, payload, "unreadable change"),
                    },
                    Err(error) => {
                        tracing::warn!(%error, "change listener lost its connection");
                        tokio::time::sleep(RELISTEN).await;
                    }
                }
            },
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for changes; retrying");
                tokio::time::sleep(RELISTEN).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(t: &str) -> Change {
        Change {
            tenant_id: t.into(),
            kind: Kind::Agent,
        }
    }

    async fn sqlite_live() -> (Live, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        (Live::new(Arc::new(store)), dir)
    }

    #[tokio::test]
    async fn a_burst_is_one_change_now_and_one_at_the_end_of_the_window() {
        let (live, _dir) = sqlite_live().await;
        let mut rx = live.subscribe();
        let start = Instant::now();
        live.publish([change("a")]);
        assert_eq!(rx.recv().await.expect("first"), change("a"));
        for _ in 0..100 {
            live.publish([change("a")]);
            tokio::task::yield_now().await;
        }
        // Another tenant's change is not held up by a's window.
        live.publish([change("b")]);
        let mut next = vec![
            rx.recv().await.expect("next"),
            rx.recv().await.expect("next"),
        ];
        let trailing_at = start.elapsed();
        next.sort_by(|x, y| x.tenant_id.cmp(&y.tenant_id));
        assert_eq!(next, [change("a"), change("b")], "a's hundred are one");
        assert!(
            trailing_at >= COALESCE,
            "a waited for its window: {trailing_at:?}"
        );
    }
}

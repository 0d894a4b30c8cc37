//! File watches for event-driven probes (`backup`, `log`): filesystem
//! events under a directory become [`Probe::wake`](super::Probe::wake)
//! signals, so a backup that lands or a line that is logged is judged at
//! once instead of at the next interval.
//!
//! One notify watcher (one inotify instance and one thread on Linux) is
//! shared by every watch in the process and dropped with the last one;
//! directories watched by several probes are watched once (reference
//! counted). The notify thread only routes: it `try_send`s into a channel of
//! capacity 1 per subscriber, so an event storm coalesces into one pending
//! wake-up. A small task per subscriber then paces the wake-ups (wait for
//! the file to settle, but not forever) before signalling the probe.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};
use tracing::{debug, warn};

/// Which entries of a watched directory matter.
#[derive(Debug, Clone)]
pub enum Filter {
    /// Exactly this file name.
    Name(OsString),
    /// File names matching this pattern.
    Glob(glob::Pattern),
}

/// A directory and the entries in it that wake the subscriber. Events on
/// the directory itself (deleted, moved away) always do.
#[derive(Debug, Clone)]
pub struct Target {
    pub dir: PathBuf,
    pub filter: Filter,
}

impl Target {
    /// One file: its directory is watched, so a file that is replaced,
    /// rotated or created later is seen too.
    pub fn file(path: &Path) -> Option<Self> {
        Some(Self {
            dir: path.parent()?.to_path_buf(),
            filter: Filter::Name(path.file_name()?.to_os_string()),
        })
    }

    fn matches(&self, path: &Path) -> bool {
        if path == self.dir {
            return true;
        }
        if path.parent() != Some(self.dir.as_path()) {
            return false;
        }
        path.file_name().is_some_and(|name| match &self.filter {
            Filter::Name(wanted) => name == wanted,
            Filter::Glob(pattern) => name.to_str().is_some_and(|n| pattern.matches(n)),
        })
    }
}

/// How raw events become wake-ups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Wake only once no event has come for this long (a file still being
    /// written is judged when it is complete).
    pub settle: Duration,
    /// Wake at the latest this long after the first event of a burst, even
    /// if events keep coming; `None`: wait for quiet (the probe's periodic
    /// run still happens).
    pub max_delay: Option<Duration>,
}

/// A live subscription: while it exists, events under its targets wake
/// its receiver. Dropping it removes the subscription (and the directory
/// watches nobody else needs).
pub struct Watch {
    hub: Arc<Hub>,
    id: u64,
    dirs: Vec<PathBuf>,
    /// The raw channel, for [`Watch::poke`].
    raw: mpsc::Sender<()>,
}

impl Watch {
    /// Subscribes to `targets` and returns the subscription and the paced
    /// wake-up receiver. `None` (logged) when there is no tokio runtime or
    /// the platform watcher cannot be created: the probe then relies on
    /// its periodic run alone. A directory that cannot be watched yet (it
    /// does not exist) is retried by [`Watch::ensure`].
    pub fn start(targets: Vec<Target>, pacing: Pacing) -> Option<(Self, mpsc::Receiver<()>)> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let hub = match Hub::shared() {
            Ok(hub) => hub,
            Err(error) => {
                warn!(%error, "file watcher unavailable, falling back to periodic checks");
                return None;
            }
        };
        let (raw_tx, raw_rx) = mpsc::channel(1);
        let (wake_tx, wake_rx) = mpsc::channel(1);
        let mut dirs: Vec<PathBuf> = targets.iter().map(|t| t.dir.clone()).collect();
        dirs.sort();
        dirs.dedup();
        let id = hub.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&hub.routes).routes.push(Route {
            id,
            targets,
            raw: raw_tx.clone(),
        });
        hub.add_dirs(&dirs);
        runtime.spawn(pace(raw_rx, wake_tx, pacing));
        Some((
            Self {
                hub,
                id,
                dirs,
                raw: raw_tx,
            },
            wake_rx,
        ))
    }

    /// Re-adds directory watches that are missing: a directory created
    /// after the start, or deleted and created again. Cheap when nothing
    /// is missing; blocking (call it off the async runtime).
    pub fn ensure(&self) {
        self.hub.ensure_dirs();
    }

    /// Asks for another wake-up soon, as if an event had come (a probe
    /// that left work for its next run).
    pub fn poke(&self) {
        let _ = self.raw.try_send(());
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        lock(&self.hub.routes).routes.retain(|r| r.id != self.id);
        self.hub.remove_dirs(&self.dirs);
    }
}

/// Turns raw events into paced wake-ups until either side goes away.
async fn pace(mut raw: mpsc::Receiver<()>, wake: mpsc::Sender<()>, pacing: Pacing) {
    while raw.recv().await.is_some() {
        let first = Instant::now();
        loop {
            let mut until = Instant::now() + pacing.settle;
            if let Some(max) = pacing.max_delay {
                until = until.min(first + max);
            }
            match timeout_at(until, raw.recv()).await {
                Ok(Some(())) => {}
                Ok(None) => return,
                Err(_) => break,
            }
        }
        // Full means a wake-up is already pending: this one coalesces.
        if let Err(mpsc::error::TrySendError::Closed(())) = wake.try_send(()) {
            return;
        }
    }
}

// === impl Hub ===

/// The process-wide watcher, alive while any [`Watch`] is.
static HUB: Mutex<Weak<Hub>> = Mutex::new(Weak::new());

struct Hub {
    /// Locked by subscribers only, never by the notify thread: notify's
    /// `watch()` waits for its own thread, which may be routing an event.
    watcher: Mutex<Dirs>,
    /// Locked briefly by the notify thread to route an event.
    routes: Arc<Mutex<Routes>>,
    next_id: AtomicU64,
}

struct Dirs {
    watcher: RecommendedWatcher,
    /// Directory → (subscribers, watch in place).
    dirs: HashMap<PathBuf, (usize, bool)>,
}

#[derive(Default)]
struct Routes {
    routes: Vec<Route>,
    /// Watched directories that were deleted or moved: their watch is gone.
    lost: Vec<PathBuf>,
}

struct Route {
    id: u64,
    targets: Vec<Target>,
    raw: mpsc::Sender<()>,
}

impl Hub {
    fn shared() -> notify::Result<Arc<Self>> {
        let mut slot = lock(&HUB);
        if let Some(hub) = slot.upgrade() {
            return Ok(hub);
        }
        let routes = Arc::new(Mutex::new(Routes::default()));
        let for_events = Arc::clone(&routes);
        let watcher = notify::recommended_watcher(move |event| route(&for_events, event))?;
        let hub = Arc::new(Self {
            watcher: Mutex::new(Dirs {
                watcher,
                dirs: HashMap::new(),
            }),
            routes,
            next_id: AtomicU64::new(0),
        });
        *slot = Arc::downgrade(&hub);
        Ok(hub)
    }

    fn add_dirs(&self, dirs: &[PathBuf]) {
        let mut d = lock(&self.watcher);
        for dir in dirs {
            let entry = d.dirs.entry(dir.clone()).or_insert((0, false));
            entry.0 += 1;
        }
        d.watch_missing();
    }

    fn remove_dirs(&self, dirs: &[PathBuf]) {
        let mut d = lock(&self.watcher);
        for dir in dirs {
            let Some(entry) = d.dirs.get_mut(dir) else {
                continue;
            };
            entry.0 = entry.0.saturating_sub(1);
            if entry.0 == 0 {
                let active = entry.1;
                d.dirs.remove(dir);
                if active {
                    // Fails harmlessly when the directory (and so its
                    // watch) is already gone.
                    let _ = d.watcher.unwatch(dir);
                }
            }
        }
    }

    fn ensure_dirs(&self) {
        let lost = std::mem::take(&mut lock(&self.routes).lost);
        let mut d = lock(&self.watcher);
        for dir in lost {
            if let Some(entry) = d.dirs.get_mut(&dir) {
                entry.1 = false;
            }
        }
        d.watch_missing();
    }
}

impl Dirs {
    fn watch_missing(&mut self) {
        for (dir, (_, active)) in self.dirs.iter_mut().filter(|(_, (_, a))| !a) {
            match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    *active = true;
                    debug!(dir = %dir.display(), "watching directory");
                }
                Err(error) => {
                    debug!(dir = %dir.display(), %error, "cannot watch directory yet");
                }
            }
        }
    }
}

/// On the notify thread: wake every subscriber the event concerns.
fn route(routes: &Mutex<Routes>, event: notify::Result<Event>) {
    let mut routes = lock(routes);
    let event = match event {
        Ok(event) if !event.need_rescan() => event,
        other => {
            // Lost events (queue overflow) or a watcher error: everyone
            // looks again.
            if let Err(error) = &other {
                debug!(%error, "file watch error");
            }
            for r in &routes.routes {
                let _ = r.raw.try_send(());
            }
            return;
        }
    };
    if !wakes(&event.kind) {
        return;
    }
    if matches!(
        event.kind,
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
    ) {
        let Routes { routes: all, lost } = &mut *routes;
        for path in &event.paths {
            let watched = all.iter().any(|r| r.targets.iter().any(|t| t.dir == *path));
            if watched && !lost.contains(path) {
                lost.push(path.clone());
            }
        }
    }
    for r in &routes.routes {
        let concerned = event
            .paths
            .iter()
            .any(|p| r.targets.iter().any(|t| t.matches(p)));
        if concerned {
            let _ = r.raw.try_send(());
        }
    }
}

/// Whether an event can change what a probe sees. Opening and reading are
/// not (the probes' own reads would wake them forever); a finished write is.
fn wakes(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob_target(dir: &str, pattern: &str) -> Target {
        Target {
            dir: PathBuf::from(dir),
            filter: Filter::Glob(glob::Pattern::new(pattern).expect("pattern")),
        }
    }

    #[test]
    fn targets_match_their_entries_and_their_directory() {
        let t = glob_target("/srv/backup", "*.tar.zst");
        assert!(t.matches(Path::new("/srv/backup/db-1.tar.zst")));
        assert!(t.matches(Path::new("/srv/backup")));
        assert!(!t.matches(Path::new("/srv/backup/db-1.tar.zst.part")));
        assert!(!t.matches(Path::new("/srv/backup/sub/db-1.tar.zst")));
        assert!(!t.matches(Path::new("/srv/other/db-1.tar.zst")));
        let f = Target::file(Path::new("/var/log/app.log")).expect("file target");
        assert_eq!(f.dir, Path::new("/var/log"));
        assert!(f.matches(Path::new("/var/log/app.log")));
        assert!(!f.matches(Path::new("/var/log/app.log.1")));
    }

    #[test]
    fn own_reads_do_not_wake() {
        assert!(!wakes(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!wakes(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(wakes(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(wakes(&EventKind::Modify(ModifyKind::Any)));
    }

    async fn woken(rx: &mut mpsc::Receiver<()>) -> bool {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .is_ok_and(|v| v.is_some())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_in_the_directory_wakes_the_subscriber_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pacing = Pacing {
            settle: Duration::from_millis(50),
            max_delay: None,
        };
        let (watch, mut rx) = Watch::start(
            vec![Target::file(&dir.path().join("app.log")).expect("target")],
            pacing,
        )
        .expect("watch");
        // Unrelated files in the directory do not wake it.
        std::fs::write(dir.path().join("other.log"), "x\n").expect("write");
        // A burst of writes to the file wakes it once.
        for i in 0..20 {
            std::fs::write(dir.path().join("app.log"), format!("{i}\n")).expect("write");
        }
        assert!(woken(&mut rx).await, "no wake-up");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(rx.try_recv().is_err(), "the burst woke it twice");
        watch.poke();
        assert!(woken(&mut rx).await, "poke did not wake");
        drop(watch);
        assert!(
            tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .is_ok_and(|v| v.is_none()),
            "dropping the watch ends the wake-ups"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_directory_created_later_is_watched_once_ensured() {
        let parent = tempfile::tempdir().expect("tempdir");
        let dir = parent.path().join("later");
        let pacing = Pacing {
            settle: Duration::from_millis(10),
            max_delay: None,
        };
        let (watch, mut rx) = Watch::start(
            vec![Target {
                dir: dir.clone(),
                filter: Filter::Glob(glob::Pattern::new("*").expect("pattern")),
            }],
            pacing,
        )
        .expect("watch");
        std::fs::create_dir(&dir).expect("mkdir");
        watch.ensure();
        std::fs::write(dir.join("b.tar"), "x").expect("write");
        assert!(woken(&mut rx).await, "no wake-up after ensure");
    }
}

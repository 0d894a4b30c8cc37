//! Process exits as events: on Linux 5.3 and later every process a
//! `[[checks.process]]` probe counted gets a pidfd, which becomes readable
//! the moment the process exits. The exit wakes the probe at once (its next
//! count is then fresh, not the shared table's last one), so a dead process
//! is on the collector within milliseconds instead of at the next
//! `interval_secs`. A new matching process has no pidfd yet: it is found by
//! the periodic count, as before.
//!
//! Where pidfds are not available (older kernels, other platforms, no tokio
//! runtime) nothing is watched, said once in the log, and the probe relies
//! on its interval alone.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

use super::ProcessTable;

/// Most processes one probe follows by pidfd; more are still counted by
/// the periodic run (a pattern matching hundreds of workers does not need
/// hundreds of descriptors to be noticed).
pub const MAX_WATCHED: usize = 64;

/// Whether "pidfd unavailable" has been logged in this process.
static UNAVAILABLE_LOGGED: AtomicBool = AtomicBool::new(false);

/// The exit watches of one probe.
pub struct Exits {
    /// Wakes the probe; closed when the probe's loop is gone.
    wake: mpsc::Sender<()>,
    /// Pids with a live watch (a watch removes its pid when it ends).
    watched: Arc<Mutex<HashSet<u32>>>,
    /// Refreshed on an exit so that the woken run does not reuse a count
    /// taken before the process died.
    table: ProcessTable,
}

impl Exits {
    /// Exit watches that wake `wake`.
    pub fn new(wake: mpsc::Sender<()>, table: ProcessTable) -> Self {
        Self {
            wake,
            watched: Arc::new(Mutex::new(HashSet::new())),
            table,
        }
    }

    /// How many processes are watched now.
    #[cfg(all(test, target_os = "linux"))]
    pub fn len(&self) -> usize {
        self.watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Watches every pid of `pids` not watched yet (up to [`MAX_WATCHED`]).
    /// Must run inside a tokio runtime with I/O enabled.
    pub fn follow(&self, pids: &[u32]) {
        let mut watched = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
        for &pid in pids {
            if watched.len() >= MAX_WATCHED {
                break;
            }
            if watched.contains(&pid) {
                continue;
            }
            match platform::watch(pid) {
                Ok(Some(exit)) => {
                    watched.insert(pid);
                    let (wake, set, table) = (
                        self.wake.clone(),
                        Arc::clone(&self.watched),
                        self.table.clone(),
                    );
                    tokio::spawn(async move {
                        tokio::select! {
                            exited = exit => {
                                if exited {
                                    table.invalidate();
                                    let _ = wake.try_send(());
                                }
                            }
                            () = wake.closed() => {}
                        }
                        set.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&pid);
                    });
                }
                // Gone between the count and now: the next run counts it out.
                Ok(None) => {}
                Err(error) => {
                    if !UNAVAILABLE_LOGGED.swap(true, Ordering::Relaxed) {
                        tracing::info!(
                            %error,
                            "process exits cannot be followed (no pidfd): process checks see them at their next interval"
                        );
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod platform {
    use std::future::Future;
    use std::io;

    use rustix::io::Errno;
    use rustix::process::{Pid, PidfdFlags, pidfd_open};
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    /// A future that ends (true) when `pid` exits; `None` when there is no
    /// such process any more; an error when pidfds cannot be used here.
    pub fn watch(pid: u32) -> io::Result<Option<impl Future<Output = bool> + Send + 'static>> {
        let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
            return Ok(None);
        };
        let fd = match pidfd_open(pid, PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(Errno::SRCH) => return Ok(None),
            Err(errno) => return Err(errno.into()),
        };
        // A pidfd polls readable once its process has exited.
        // `with_interest` is deprecated in favour of an `unsafe` register
        // whose contract is that the descriptor stays open and the same
        // while registered; an `OwnedFd` moved into the `AsyncFd` and never
        // touched again meets it, and `unsafe` is forbidden in this crate.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(fd, Interest::READABLE)?;
        Ok(Some(async move { fd.readable().await.is_ok() }))
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    use std::io;

    /// No pidfds here: exits are seen by the periodic count.
    pub fn watch(_pid: u32) -> io::Result<Option<std::future::Ready<bool>>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "pidfd is Linux-only",
        ))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A real child exits: its pidfd wakes the probe's channel, with no
    /// polling involved (the receiver is only awaited).
    #[tokio::test(flavor = "current_thread")]
    async fn a_watched_exit_wakes_the_probe() {
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("600")
            .spawn()
            .expect("spawn sleep");
        let (tx, mut rx) = mpsc::channel(1);
        let exits = Exits::new(tx, ProcessTable::new(false));
        exits.follow(&[child.id()]);
        assert_eq!(exits.len(), 1);
        // Following the same pid again adds nothing.
        exits.follow(&[child.id()]);
        assert_eq!(exits.len(), 1);
        assert!(rx.try_recv().is_err(), "no wake-up while it runs");
        child.kill().expect("kill");
        child.wait().expect("reap");
        tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("a wake-up after the exit")
            .expect("channel open");
        // The watch ended and forgot its pid.
        for _ in 0..100 {
            if exits.len() == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(exits.len(), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_pid_that_is_gone_is_not_watched() {
        let mut child = std::process::Command::new("/bin/true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("reap");
        let (tx, _rx) = mpsc::channel(1);
        let exits = Exits::new(tx, ProcessTable::new(false));
        exits.follow(&[pid]);
        assert_eq!(exits.len(), 0);
    }
}

//! Stop and reload requests from the operating system, one shape per
//! platform so [`run`](crate::run) and [`reload`](crate::reload) stay
//! platform-free.
//!
//! | request | Unix            | Windows                                        |
//! |---------|-----------------|------------------------------------------------|
//! | stop    | SIGTERM, SIGINT | SCM stop/shutdown/preshutdown, Ctrl-C, Ctrl-Break, console close |
//! | reload  | SIGHUP          | none: a change of the config file still reloads |
//!
//! Under the Windows service manager the service control handler
//! ([`crate::platform::windows::service`]) turns the SCM's controls into
//! [`request_stop`].

use std::io;

/// The stop requests, installed at once so none is lost during startup.
#[cfg(unix)]
pub struct Stop {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Stop {
    pub fn install() -> io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next request; returns its name for the log.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// A stop asked for by the service control handler (a permit is kept when
/// nobody waits yet, so a stop during startup is not lost).
#[cfg(windows)]
static SERVICE_STOP: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Asks the running agent to stop, as the SCM's stop, shutdown and
/// preshutdown controls do. Callable from any thread.
#[cfg(windows)]
pub fn request_stop() {
    SERVICE_STOP.notify_one();
}

/// The stop requests, installed at once so none is lost during startup.
#[cfg(windows)]
pub struct Stop {
    ctrl_c: tokio::signal::windows::CtrlC,
    ctrl_break: tokio::signal::windows::CtrlBreak,
    close: tokio::signal::windows::CtrlClose,
    shutdown: tokio::signal::windows::CtrlShutdown,
}

#[cfg(windows)]
impl Stop {
    pub fn install() -> io::Result<Self> {
        use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close, ctrl_shutdown};
        Ok(Self {
            ctrl_c: ctrl_c()?,
            ctrl_break: ctrl_break()?,
            close: ctrl_close()?,
            shutdown: ctrl_shutdown()?,
        })
    }

    /// Waits for the next request; returns its name for the log.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            () = SERVICE_STOP.notified() => "SERVICE_STOP",
            _ = self.ctrl_c.recv() => "CTRL_C",
            _ = self.ctrl_break.recv() => "CTRL_BREAK",
            _ = self.close.recv() => "CTRL_CLOSE",
            _ = self.shutdown.recv() => "CTRL_SHUTDOWN",
        }
    }
}

/// Reload requests (SIGHUP).
#[cfg(unix)]
pub struct Hangup(tokio::signal::unix::Signal);

#[cfg(unix)]
impl Hangup {
    pub fn install() -> io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::hangup()).map(Self)
    }

    /// Waits for the next request; `None` when no more can come.
    pub async fn recv(&mut self) -> Option<()> {
        self.0.recv().await
    }
}

/// Reload requests: Windows has no SIGHUP, so there never is one.
#[cfg(windows)]
pub struct Hangup(());

#[cfg(windows)]
impl Hangup {
    pub fn install() -> io::Result<Self> {
        Ok(Self(()))
    }

    /// Never returns.
    pub async fn recv(&mut self) -> Option<()> {
        std::future::pending().await
    }
}

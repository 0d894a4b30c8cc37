//! Stop and reload requests from the operating system, one shape per
//! platform so [`run`](crate::run) and [`reload`](crate::reload) stay
//! platform-free.
//!
//! | request | Unix            | Windows                                        |
//! |---------|-----------------|------------------------------------------------|
//! | stop    | SIGTERM, SIGINT | Ctrl-C, Ctrl-Break, console close, shutdown    |
//! | reload  | SIGHUP          | none: a change of the config file still reloads |
//!
//! Running under the Windows service manager (SCM) needs a service control
//! handler, which is not here yet; until then a Windows service host has to
//! run the agent as a console process.

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

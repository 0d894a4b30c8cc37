//! The service entry point: `StartServiceCtrlDispatcherW` through
//! `windows-service`, whose `define_windows_service!` writes the
//! `extern "system"` function the SCM calls (it holds the crate's only
//! unsafe block for it, parsing the argument vector the SCM passes).

#![allow(unsafe_code)]

use std::ffi::OsString;
use std::sync::OnceLock;

/// The agent's service main, set once before the dispatcher starts.
static SERVICE_MAIN: OnceLock<fn(Vec<OsString>)> = OnceLock::new();

windows_service::define_windows_service!(ffi_service_main, service_main);

fn service_main(arguments: Vec<OsString>) {
    if let Some(main) = SERVICE_MAIN.get() {
        main(arguments);
    }
}

/// Connects this process to the SCM as service `name` and blocks until
/// the service has stopped; the SCM calls `main` on a thread of its own.
/// Fails at once (error 1063) when the process was not started by the SCM.
pub fn run_service_dispatcher(name: &str, main: fn(Vec<OsString>)) -> windows_service::Result<()> {
    let _ = SERVICE_MAIN.set(main);
    windows_service::service_dispatcher::start(name, ffi_service_main)
}

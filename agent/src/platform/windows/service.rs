//! The agent under the Service Control Manager (`forewarn-agent service
//! run`, the command line `service install` registers). The SCM calls the
//! service main on a thread of its own; it reports START_PENDING, runs the
//! same run loop as `forewarn-agent run` (the job `main` hands over), and
//! turns the stop, shutdown and preshutdown controls into the stop request
//! the run loop already waits for ([`crate::signals::request_stop`]).
//! Pause is not accepted.

use std::ffi::OsString;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tracing::{error, info};
use windows_service::service::{
    ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};

use crate::platform::service::SERVICE_NAME;

/// What the service runs: the agent's run loop, returning when it stopped.
pub type Job = Box<dyn FnOnce() -> anyhow::Result<()> + Send>;

/// The job, handed from `main` to the service main the SCM calls.
static JOB: Mutex<Option<Job>> = Mutex::new(None);

/// Exit code reported to the SCM when the run loop failed: the SCM then
/// applies the recovery actions (restart).
const SERVICE_FAILED: u32 = 1;

/// Connects to the SCM and runs `job` as the service; blocks until the
/// service has stopped. Fails at once when this process was not started
/// by the SCM (run it with `forewarn-agent run` from a console instead).
pub fn run(job: Job) -> anyhow::Result<()> {
    *JOB.lock().unwrap_or_else(PoisonError::into_inner) = Some(job);
    forewarn_winffi::run_service_dispatcher(SERVICE_NAME, service_main).map_err(|e| {
        anyhow::anyhow!(
            "cannot connect to the service manager ({}); `service run` is what the service \
             manager starts: from a console use `forewarn-agent run`",
            crate::error::chain(&e)
        )
    })
}

fn status(state: ServiceState, exit: u32, wait_hint: Duration) -> ServiceStatus {
    let controls_accepted = if state == ServiceState::Running {
        ServiceControlAccept::STOP
            | ServiceControlAccept::SHUTDOWN
            | ServiceControlAccept::PRESHUTDOWN
    } else {
        ServiceControlAccept::empty()
    };
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted,
        exit_code: if exit == 0 {
            ServiceExitCode::Win32(0)
        } else {
            ServiceExitCode::ServiceSpecific(exit)
        },
        checkpoint: 0,
        wait_hint,
        process_id: None,
    }
}

fn service_main(_arguments: Vec<OsString>) {
    let handler = |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown | ServiceControl::Preshutdown => {
            crate::signals::request_stop();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let handle = match service_control_handler::register(SERVICE_NAME, handler) {
        Ok(handle) => handle,
        Err(e) => {
            error!(error = %e, "cannot register the service control handler");
            return;
        }
    };
    let set = |state, exit, hint| {
        if let Err(e) = handle.set_service_status(status(state, exit, hint)) {
            error!(error = %e, ?state, "cannot report the service status");
        }
    };
    // The run loop reports to the collector from its first seconds; the
    // SCM counts the service as started once the job is under way.
    set(ServiceState::StartPending, 0, Duration::from_secs(10));
    let job = JOB.lock().unwrap_or_else(PoisonError::into_inner).take();
    set(ServiceState::Running, 0, Duration::ZERO);
    let exit = match job.map(|job| job()) {
        Some(Ok(())) => {
            info!("service stopped");
            0
        }
        Some(Err(e)) => {
            error!("service failed: {}", crate::error::chain(&*e));
            SERVICE_FAILED
        }
        None => SERVICE_FAILED,
    };
    set(ServiceState::StopPending, exit, Duration::from_secs(5));
    set(ServiceState::Stopped, exit, Duration::ZERO);
}

//! The Windows-only calls: the service (SCM handler and registration), log
//! destinations, volumes sysinfo misses, and registry reads. Each module is
//! thin; what can be decided without Windows is in the parent module and
//! tested on every OS.

pub mod disks;
pub mod install;
pub mod logging;
pub mod registry;
pub mod service;

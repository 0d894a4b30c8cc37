//! Contract fakes of the SaaS receivers, one file per vendor, each
//! implementing [`super::fake::Vendor`] after the vendor's documentation
//! (named in its file and in `docs/sinks/`).

pub mod autotask;
pub mod connectwise;
pub mod halopsa;
pub mod pagerduty;
pub mod slack;
pub mod teams;

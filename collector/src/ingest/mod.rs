//! Agent-facing gRPC: enrollment (TLS) and the report session (mTLS).
//!
//! `convert` is the only module that sees wire types; it validates every
//! field at the edge so the store never receives unchecked data.

pub mod convert;
mod enroll;
mod enroll_limit;
mod rate;
mod renew;
mod session;
mod sessions;
mod update;

pub use enroll::EnrollmentService;
pub use enroll_limit::FailureLimiter;
pub use rate::{Rate, RateLimits};
pub use session::IngestService;
pub use sessions::Sessions;

//! Metric history: what the Host page charts (CPU, memory, load, disk per
//! mount with its time-to-full projection).
//!
//! - **Writing** ([`sample`]): a heartbeat carries a host snapshot; the
//!   collector keeps at most one of them per agent per
//!   `[retention] metric_sample_secs`, in aligned windows (with 60 s, the
//!   first heartbeat of each minute), decided from `agents.last_sample_at`,
//!   which the report reads with the agent's row anyway. A kept sample is
//!   one INSERT in the report's own transaction; `touch_agent`, which the
//!   report runs anyway, moves `last_sample_at`. A report that samples
//!   nothing costs nothing more.
//! - **Reading** ([`series`]): one agent's samples in a range, shaped into
//!   aligned arrays a chart draws directly, bucketed to at most
//!   [`series::MAX_POINTS`] points.
//! - **Forgetting**: `[retention] metrics_days`, by `crate::retention`.

mod sample;
pub mod series;

pub(crate) use sample::sample;
pub use sample::{MountSample, sample_time, window_due};
pub use series::{MAX_POINTS, MetricSeries, MountSeries, Projection};

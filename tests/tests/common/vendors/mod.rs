//! Contract fakes of the SaaS receivers, one module per vendor (see
//! [`super::fake`] for the harness they plug into).

pub mod autotask;
pub mod halopsa;

//! Contract fakes of the SaaS receivers, one module per vendor (see
//! `super::fake` for the harness).

pub mod connectwise;

//! What the operator sees of a running server: metrics, log lines and
//! traces.

pub mod logging;
pub mod metrics;
pub mod traces;

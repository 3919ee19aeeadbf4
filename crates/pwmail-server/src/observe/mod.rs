//! What the operator sees of a running server: metrics and log lines.

pub mod logging;
pub mod metrics;

//! What runs a service process: settings from the environment ([`config`]), logging
//! ([`telemetry`]), the shutdown signal ([`shutdown`]) and the supervision of a service's tasks
//! ([`supervise`]).

pub mod config;
pub mod shutdown;
pub mod supervise;
pub mod telemetry;

//! What runs a service process: settings from the environment ([`config`]), logging
//! ([`telemetry`]) and the shutdown signal ([`shutdown`]).

pub mod config;
pub mod shutdown;
pub mod telemetry;

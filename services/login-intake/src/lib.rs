//! login-intake: the front door. Client backends send logins here (HTTP, or SSO requests over
//! Kafka); it checks the password, publishes `LoginAttempted`, and answers with the risk
//! decision once the risk worker made it.

pub mod admin;
pub mod config;
pub mod decisions;
pub mod error;
pub mod feedback;
pub mod housekeeping;
pub mod ingress;
pub mod intake;
pub mod logins;
pub mod metrics;
pub mod openapi;
pub mod password;
pub mod rate_limit;
pub mod risk_policy;
pub mod startup;
pub mod store;
pub mod user_export;
pub mod user_logins;

//! verifier: checks the code the user typed against the challenge and closes the loop with
//! `MfaSucceeded` and the final `LoginApproved`, or `MfaFailed`.

pub mod challenges;
pub mod config;
pub mod error;
pub mod feedback;
pub mod housekeeping;
pub mod judge;
pub mod metrics;
pub mod openapi;
pub mod startup;
pub mod verify;

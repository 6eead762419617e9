//! code-worker: for each `MfaRequired`, stores the challenge (the code's keyed hash, never the
//! code) and emails the 6-digit code; invalidates or deletes challenges on `AccountChanged`;
//! emails "someone has your password" when a password login's code goes unused (`notices`).

pub mod challenges;
pub mod config;
pub mod consumer;
pub mod email;
pub mod housekeeping;
pub mod metrics;
pub mod notice_email;
pub mod notices;
pub mod sender;
pub mod startup;

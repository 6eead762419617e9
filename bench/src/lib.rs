//! `mfa-bench`: the load generator of issue 12. [`argon2_rate`] measures the ceiling (raw
//! argon2id verifications a second, with login-intake's own parameters), [`load`] drives
//! logins through the real services and reports their rate and latency, [`inbox`] reads the
//! code emails back from the SMTP server.

pub mod argon2_rate;
pub mod inbox;
pub mod load;

//! `mfa-bench`: the load generator of issue 12. [`argon2_rate`] measures the ceiling (raw
//! argon2id verifications a second, with login-intake's own parameters), [`load`] drives
//! logins through the real services and reports their rate and latency, [`inbox`] reads the
//! code emails back from the SMTP server. [`suite`] is the whole benchmark (`scripts/bench`):
//! it starts the release services itself ([`system`], [`process`]), measures the risk worker
//! alone ([`risk_worker`]), each service's memory ([`rss`]) and idle CPU ([`cpu`]), draws [`chart`] and prints the
//! [`headline`], and where the time goes ([`hops`]). [`growth`] measures how the cost grows
//! with users and their history, generated straight into the database.

pub mod argon2_rate;
pub mod chart;
pub mod cpu;
pub mod growth;
pub mod headline;
pub mod hops;
pub mod inbox;
pub mod load;
pub mod process;
pub mod risk_worker;
pub mod rss;
pub mod suite;
pub mod system;

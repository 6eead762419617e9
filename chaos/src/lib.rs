//! The chaos harness (issue 5): the four services run as real processes, from the binaries
//! `cargo build --bins` leaves in the target folder, against a Tansu broker on PostgreSQL
//! storage, a PostgreSQL cluster of their own and a maildev SMTP server, all started here
//! for this run. A steady stream of logins goes through login-intake (codes read from the
//! SMTP server and verified) while a scenario kills and restarts things; afterwards the
//! audit reads the whole event log, the mail that arrived and the services' tables, and
//! checks that nothing was lost, doubled, or approved without its cause.
//!
//! - [`system`]: the processes and servers of one run, and the faults they can be given.
//! - [`load`]: the logins; [`mailbox`]: the emails; [`audit`]: the checks and the counts.
//! - [`scenario`]: what each scenario does, in order.

pub mod audit;
pub mod broker;
pub mod error;
pub mod load;
pub mod mailbox;
pub mod postgres;
pub mod process;
pub mod scenario;
pub mod system;
pub mod tools;

pub use error::HarnessError;

//! The code worker's integration tests, one binary, a module by concern:
//!
//! - [`process`]: the binary as a process, its command line.
//! - [`challenges`]: the challenges table as the consumer and the sender use it.

mod challenges;
mod process;

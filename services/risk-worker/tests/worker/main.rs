//! The risk worker's integration tests, one binary, a module by concern:
//!
//! - [`process`]: the binary as a process, its command line and its supervision.
//! - [`replay`]: `risk-worker replay` (determinism, the line protocol, the GeoIP data).
//! - [`live`]: the live worker in process on the stack, counted in its `/metrics`.

mod live;
mod process;
mod replay;

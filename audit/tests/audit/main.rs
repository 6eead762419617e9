//! The `mfa-audit` binary end to end: on constructed exports (`cli`, `stories`), against the
//! stack's real broker (`kafka`), and with the data keys of the stack's PostgreSQL
//! (`erasure`).

mod cli;
mod erasure;
mod kafka;
mod stories;
mod support;

//! The `mfa-audit` binary end to end: on constructed exports (`cli`), and against the
//! stack's real broker (`kafka`).

mod cli;
mod kafka;
mod stories;
mod support;

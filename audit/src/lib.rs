//! `mfa-audit`: the auditor's tool for the event log of adaptive-mfa.
//!
//! - [`record`]: one record of the log, and its line in an export file.
//! - [`source`]: the one way every command reads a log ([`source::RecordSource`]), from
//!   Kafka ([`kafka_source`]) or from an export ([`export_source`]).
//! - [`export`]: writes an export.
//! - [`verify`]: checks the seals, checkpoints, schemas, offsets and login flows.
//! - [`synth`]: builds realistic signed logs, for the benchmark and the tests.
//! - [`bench`]: `bench-verify`, verification's throughput and memory on a generated log.
//! - [`envelopes`]: the log's events, each once, for the questions below.
//! - [`timeline`], [`report`], [`recheck`]: a login's story, the figures of a range of days,
//!   and what other risk settings would have decided.
//! - [`deployment_keys`]: the deployment's data keys, which open the log's personal fields
//!   for `timeline` and `recheck` when given.

pub mod bench;
pub mod deployment_keys;
pub mod envelopes;
pub mod export;
pub mod export_source;
pub mod kafka_source;
pub mod recheck;
pub mod record;
pub mod report;
pub mod source;
pub mod synth;
pub mod timeline;
pub mod verify;

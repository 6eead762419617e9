//! What the tests share: a generated log, its key file, running the binary.

// Test set-up: a step that fails is the test failing, and says where.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Output;

use mfa_audit::record::LogRecord;
use mfa_audit::synth::{Synth, SynthConfig, SynthKeys};

pub struct Log {
    pub records: Vec<LogRecord>,
    pub keys: SynthKeys,
    pub dir: tempfile::TempDir,
}

impl Log {
    /// About `events` events in namespace `namespace`, starting `start`.
    pub fn generate(events: u64, namespace: &str, start: chrono::DateTime<chrono::Utc>) -> Self {
        let keys = SynthKeys::generate();
        let mut config = SynthConfig::new(events);
        config.namespace = namespace.to_owned();
        config.start = start;
        config.checkpoint_every = 20;
        config.logins_per_sec = 4.0;
        let records = Synth::new(config, &keys).collect();
        Self {
            records,
            keys,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn key_file(&self) -> PathBuf {
        let path = self.dir.path().join("keys.json");
        std::fs::write(&path, serde_json::to_vec(&self.keys.key_file()).unwrap()).unwrap();
        path
    }

    /// Writes `records` as an export, with `extra` lines inserted before the line numbers
    /// given (1-based).
    pub fn write_export(
        &self,
        name: &str,
        records: &[LogRecord],
        extra: &[(usize, &str)],
    ) -> PathBuf {
        let mut lines: Vec<Vec<u8>> = records
            .iter()
            .map(|record| {
                let mut line = Vec::new();
                record.encode_line(&mut line);
                line
            })
            .collect();
        for (before, text) in extra.iter().rev() {
            lines.insert(before - 1, format!("{text}\n").into_bytes());
        }
        let path = self.dir.path().join(name);
        std::fs::write(&path, lines.concat()).unwrap();
        path
    }
}

pub fn audit(args: &[&str]) -> Output {
    audit_with(args, &[])
}

/// The binary with `settings` in its environment, and none of the stack's own: no broker,
/// and no data keys unless given (a test's log is not the stack's).
pub fn audit_with(args: &[&str], settings: &[(&str, &str)]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-audit"));
    command.args(args);
    for name in [
        "MFA_KAFKA_BROKERS",
        "MFA_TOPIC_NAMESPACE",
        "MFA_MASTER_KEYS",
        "MFA_DATABASE_URL",
        "MFA_PSEUDONYM_KEY",
    ] {
        command.env_remove(name);
    }
    command.envs(settings.iter().copied()).output().unwrap()
}

pub fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

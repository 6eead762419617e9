//! Signing keys for the four producing services of a test system, generated per test
//! (`shared::audit::AuditSigner::generate`), and the auditor's key file with their public
//! halves, which a test writes where its verifier reads it.

use shared::audit::{AuditSigner, KeyFile};

/// The producers that sign what they publish, by the names their events carry.
pub const PRODUCERS: [&str; 4] = ["login-intake", "risk-worker", "code-worker", "verifier"];

/// One key pair per producer.
#[derive(Debug, Clone)]
pub struct AuditKeys {
    /// `(producer, MFA_AUDIT_SIGNING_KEY value, signer)`.
    keys: Vec<(&'static str, String, AuditSigner)>,
}

impl AuditKeys {
    /// Fresh keys, each with a key id of its own (`<producer>-<random>`).
    pub fn generate() -> Self {
        let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let keys = PRODUCERS
            .iter()
            .map(|producer| {
                let (configured, signer) =
                    AuditSigner::generate(producer, &format!("{producer}-{run}"));
                (*producer, configured, signer)
            })
            .collect();
        Self { keys }
    }

    /// `producer`'s signer, for a service built in process. Panics for a producer not in
    /// [`PRODUCERS`]: a test set-up mistake.
    pub fn signer(&self, producer: &str) -> AuditSigner {
        self.entry(producer).2.clone()
    }

    /// `producer`'s `MFA_AUDIT_SIGNING_KEY`, for a service run as a process.
    pub fn configured(&self, producer: &str) -> String {
        self.entry(producer).1.clone()
    }

    /// The auditor's key file: the four public keys.
    pub fn key_file(&self) -> KeyFile {
        KeyFile {
            keys: self
                .keys
                .iter()
                .map(|(_, _, signer)| signer.public_key())
                .collect(),
        }
    }

    /// The key file as JSON, as `mfa-audit verify --keys` reads it.
    pub fn key_file_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.key_file()).unwrap_or_default()
    }

    #[expect(
        clippy::panic,
        reason = "test set-up: asking for a producer that signs nothing is the test's mistake"
    )]
    fn entry(&self, producer: &str) -> &(&'static str, String, AuditSigner) {
        self.keys
            .iter()
            .find(|(name, _, _)| *name == producer)
            .unwrap_or_else(|| panic!("{producer} is not a producer with an audit key"))
    }
}

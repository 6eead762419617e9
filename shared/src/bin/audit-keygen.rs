//! Generates development signing keys for the producing services and the auditor's key file.

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use shared::audit::{AuditSigner, KeyFile};

/// The services that sign what they publish.
const PRODUCERS: [&str; 4] = ["login-intake", "risk-worker", "code-worker", "verifier"];

/// Generates one Ed25519 signing key per producing service (login-intake, risk-worker,
/// code-worker, verifier). Prints one shell assignment per service to standard output,
/// MFA_AUDIT_SIGNING_KEY_<SERVICE>='<key id>:<base64 seed>' (give each service its own as
/// MFA_AUDIT_SIGNING_KEY), and writes the auditor's key file (the public keys, JSON) to
/// --public-keys. Development and test keys: production keys belong in a secret store.
#[derive(Parser)]
#[command(
    name = "audit-keygen",
    version,
    after_help = "Reads no MFA_* variable. AUDIT.md tells what the keys sign."
)]
struct Cli {
    /// Where to write the public key file (`{"keys": [...]}`, as `mfa-audit verify --keys`
    /// reads it).
    #[arg(long, value_name = "FILE")]
    public_keys: PathBuf,
    /// Appended to each key id (`<service>-<suffix>`); default: the date and a random part.
    #[arg(long)]
    key_id_suffix: Option<String>,
}

fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    let suffix = cli.key_id_suffix.unwrap_or_else(|| {
        let random: u32 = rand::random();
        format!("{}-{random:08x}", chrono::Utc::now().format("%Y%m%d"))
    });
    let mut keys = Vec::new();
    let mut out = std::io::stdout().lock();
    for producer in PRODUCERS {
        let (configured, signer) = AuditSigner::generate(producer, &format!("{producer}-{suffix}"));
        let variable = producer.replace('-', "_").to_uppercase();
        writeln!(out, "MFA_AUDIT_SIGNING_KEY_{variable}='{configured}'")?;
        keys.push(signer.public_key());
    }
    let file = serde_json::to_vec_pretty(&KeyFile { keys }).map_err(std::io::Error::other)?;
    std::fs::write(&cli.public_keys, [file, b"\n".to_vec()].concat())?;
    Ok(())
}
